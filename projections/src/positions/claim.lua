-- Claims partitions: bumps each generation, returns {generation, next offset} per field.
-- KEYS[1] positions hash, KEYS[2] generations hash, KEYS[3] the projection's versions hash;
-- ARGV[1] this version, then the fields. A version that no longer serves (retired by a switch,
-- or dropped) is never claimed again: the answer is empty.
local info = redis.call('HGET', KEYS[3], ARGV[1])
if info then
  local state = cjson.decode(info)['state']
  if state == 'retired' or state == 'dropped' then return {} end
end
local out = {}
for i = 2, #ARGV do
  local field = ARGV[i]
  local generation = redis.call('HINCRBY', KEYS[2], field, 1)
  local offset = redis.call('HGET', KEYS[1], field) or '0'
  table.insert(out, generation)
  table.insert(out, tonumber(offset))
end
return out
