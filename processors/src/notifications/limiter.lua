-- Takes one send slot of a bot, for one chat, if Telegram's limits allow it now.
-- KEYS[1] the bot's pause (set on a 429 for retry_after), KEYS[2] the pace of this kind of
-- message (free or paid broadcasting), KEYS[3] the chat's last send.
-- ARGV[1] the pace's interval in microseconds, ARGV[2] the chat's interval in milliseconds.
-- Returns {0, 0} when the slot is taken, else {reason, milliseconds to wait}: 1 paused, 2 the
-- chat was messaged too recently, 3 the pace.
-- The pace is a GCRA without burst: one slot per interval, never two at once, shared by every
-- sender of the bot through the server's own clock (TIME), so no two senders' clocks disagree.
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
local next_us = tonumber(redis.call('GET', KEYS[2]) or '0')
if next_us > now_us then
  return {3, math.ceil((next_us - now_us) / 1000)}
end
redis.call('SET', KEYS[2], tostring(now_us + tonumber(ARGV[1])), 'PX', 60000)
redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])
return {0, 0}
