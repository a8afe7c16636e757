-- One user's write rate across every write-API instance: GCRA, on Redis's own clock.
-- KEYS[1] the user's theoretical arrival time (microseconds); ARGV[1] the emission interval
-- (microseconds per write at the sustained rate), ARGV[2] the burst.
-- Returns 0 when the write is allowed (and counted), else the microseconds until it would be.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now)
local allowed_at = tat - (burst - 1) * interval
if now < allowed_at then
  return allowed_at - now
end
local next_tat = tat + interval
-- Kept as long as it holds anything back: an expired key is a full burst.
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000))
return 0
