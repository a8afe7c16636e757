-- A paid energy refill: fills the user's bar (a full bar is no key) once per payment.
-- KEYS[1]: the user's energy hash; KEYS[2]: the payment's refill marker.
-- ARGV[1]: how long the marker is kept (seconds), past any redelivery of the payment.
-- Returns 1 when this call filled the bar, 0 when the payment's refill was already given.
if redis.call('SET', KEYS[2], 1, 'NX', 'EX', ARGV[1]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
