-- Moves the `active` mark of a Redis projection from version ARGV[1] to ARGV[2] in its versions
-- hash (KEYS[1]), if ARGV[1] is still active and ARGV[2] still being built; ARGV[3] is now
-- (unix ms). Returns 'OK', or the reason it did not.
local old = redis.call('HGET', KEYS[1], ARGV[1])
local new = redis.call('HGET', KEYS[1], ARGV[2])
if not old or not new then return 'a version is not registered' end
old = cjson.decode(old)
new = cjson.decode(new)
if old['state'] ~= 'active' then return 'v' .. ARGV[1] .. ' is ' .. old['state'] .. ', not active' end
if new['state'] ~= 'building' then return 'v' .. ARGV[2] .. ' is ' .. new['state'] .. ', not building' end
old['state'] = 'retired'
new['state'] = 'active'
new['switched_at_ms'] = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(old), ARGV[2], cjson.encode(new))
return 'OK'
