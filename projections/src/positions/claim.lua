-- Claims partitions: bumps each generation, returns {generation, next offset} per field.
-- KEYS[1] positions hash, KEYS[2] generations hash; ARGV the fields. Whether the version may
-- still be claimed was read from its versions hash just before (`RedisPositions::claim`).
local out = {}
for i = 1, #ARGV do
  local field = ARGV[i]
  local generation = redis.call('HINCRBY', KEYS[2], field, 1)
  local offset = redis.call('HGET', KEYS[1], field) or '0'
  table.insert(out, generation)
  table.insert(out, tonumber(offset))
end
return out
