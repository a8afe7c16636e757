-- Makes version ARGV[3] of a Redis projection active in place of ARGV[2], atomically, if the new
-- version has applied at least what the old one has on every partition of the topic, and ends
-- the old version's freeze lease either way (freeze.lua set it).
-- KEYS[1] old positions, KEYS[2] old generations, KEYS[3] new positions, KEYS[4] versions hash,
-- KEYS[5] the old version's freeze lease.
-- ARGV: field prefix "<topic>:", old version, new version, now (unix ms).
-- Returns {'OK'}, {'STATE', reason} or {'BEHIND', field, old next, new next, ...}.
redis.call('DEL', KEYS[5])
local old = redis.call('HGET', KEYS[4], ARGV[2])
local new = redis.call('HGET', KEYS[4], ARGV[3])
if not old or not new then return {'STATE', 'a version is not registered'} end
old = cjson.decode(old)
new = cjson.decode(new)
if old['state'] ~= 'active' then return {'STATE', 'v' .. ARGV[2] .. ' is ' .. old['state'] .. ', not active'} end
if new['state'] ~= 'building' then return {'STATE', 'v' .. ARGV[3] .. ' is ' .. new['state'] .. ', not building'} end
local prefix = ARGV[1]
local behind = {'BEHIND'}
local positions = redis.call('HGETALL', KEYS[1])
for i = 1, #positions, 2 do
  local field = positions[i]
  if string.sub(field, 1, #prefix) == prefix then
    local old_next = tonumber(positions[i + 1])
    local new_next = tonumber(redis.call('HGET', KEYS[3], field) or '0')
    if new_next < old_next then
      table.insert(behind, field)
      table.insert(behind, old_next)
      table.insert(behind, new_next)
    end
  end
end
if #behind > 1 then return behind end
-- Fence the old version's processors: their next batch finds the generation moved.
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  if string.sub(field, 1, #prefix) == prefix then redis.call('HINCRBY', KEYS[2], field, 1) end
end
old['state'] = 'retired'
new['state'] = 'active'
new['switched_at_ms'] = tonumber(ARGV[4])
redis.call('HSET', KEYS[4], ARGV[2], cjson.encode(old), ARGV[3], cjson.encode(new))
return {'OK'}
