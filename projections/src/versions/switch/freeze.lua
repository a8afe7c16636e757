-- Freezes version ARGV[2] of a Redis projection for a switch to ARGV[3]: its batches wait
-- (apply.lua answers FROZEN) until the lease expires or the switch ends it.
-- KEYS[1] old positions hash, KEYS[2] versions hash, KEYS[3] the old version's freeze lease.
-- ARGV: field prefix "<topic>:", old version, new version, lease (ms).
-- Returns {'STATE', reason} or {'FROZEN', field, next, field, next, ...} (the old positions).
local old = redis.call('HGET', KEYS[2], ARGV[2])
local new = redis.call('HGET', KEYS[2], ARGV[3])
if not old or not new then return {'STATE', 'a version is not registered'} end
old = cjson.decode(old)['state']
new = cjson.decode(new)['state']
if old ~= 'active' then return {'STATE', 'v' .. ARGV[2] .. ' is ' .. old .. ', not active'} end
if new ~= 'building' then return {'STATE', 'v' .. ARGV[3] .. ' is ' .. new .. ', not building'} end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
local out = {'FROZEN'}
local positions = redis.call('HGETALL', KEYS[1])
for i = 1, #positions, 2 do
  if string.sub(positions[i], 1, #ARGV[1]) == ARGV[1] then
    table.insert(out, positions[i])
    table.insert(out, positions[i + 1])
  end
end
return out
