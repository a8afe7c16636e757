-- Reserves one send slot of a bot, for one chat, if Telegram's limits allow it.
-- KEYS[1] the bot's pause (set on a 429 for retry_after), KEYS[2] the pace of this kind of
-- message (free or paid broadcasting): the time of its next free slot, KEYS[3] the chat's
-- last send.
-- ARGV[1] the pace's interval in microseconds, ARGV[2] the chat's interval in milliseconds,
-- ARGV[3] how far ahead a slot may be reserved, in microseconds.
-- Returns {0, microseconds until the reserved slot} when a slot is reserved, else {reason,
-- milliseconds to wait}: 1 paused, 2 the chat was messaged too recently, 3 the pace is booked
-- further ahead than ARGV[3].
-- The pace is a GCRA without burst: slots one interval apart, never two at once, booked on the
-- server's own clock (TIME) so every sender of the bot shares them and no two clocks disagree.
-- A sender sleeps until its slot, so the round trips between slots do not slow the pace.
local t = redis.call('TIME')
local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
local paused = redis.call('PTTL', KEYS[1])
if paused > 0 then
  return {1, paused}
end
local chat = redis.call('PTTL', KEYS[3])
if chat > 0 then
  return {2, chat}
end
local slot_us = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), now_us)
local ahead_us = slot_us - now_us
if ahead_us > tonumber(ARGV[3]) then
  return {3, math.ceil((ahead_us - tonumber(ARGV[3])) / 1000)}
end
redis.call('SET', KEYS[2], tostring(slot_us + tonumber(ARGV[1])), 'PX', 60000)
redis.call('SET', KEYS[3], '1', 'PX', math.ceil(ahead_us / 1000) + tonumber(ARGV[2]))
return {0, ahead_us}
