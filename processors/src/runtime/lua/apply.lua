-- Applies one partition batch of a Redis projection atomically.
-- Every key is in the partition's key space (one hash slot, see `KeySpace::partition`):
-- KEYS[1] positions hash, KEYS[2] generations hash (their field: the partition's), KEYS[3]
-- per-user state hash, KEYS[4] the partition's freeze lease (set while a rebuilt version takes
-- over from this one), KEYS[5] the parking epochs hash (its field: the partition's), KEYS[6]
-- the parked users hash, KEYS[7..10] the partition's seen-id sets of the last days (KEYS[9]
-- today's), KEYS[11] the set that aged out (see `redis_seen.rs`); the writes' keys too.
-- ARGV: field, generation, expected offset, next offset, when today's seen set expires,
--       expected parking epoch, n ids, ids (16 bytes each)..., n writes,
--       writes as (op, key, a, b)..., n states, (user, json)..., n parked,
--       (list key, user, json)...
-- It stays with the runtime rather than in surge_projections::positions because it checks and
-- moves the position in one step with the projection's writes; the position, generation and
-- freeze lease keys come from `RedisPositions` (surge_projections::naming).
-- Every check runs before the first write: Redis does not roll back a script that fails midway.
local field = ARGV[1]
local generation = redis.call('HGET', KEYS[2], field)
if generation ~= ARGV[2] then
  -- Below our claim, or gone (a Redis restarted empty): the store lost the claim's write, and
  -- nobody claimed since.
  if not generation or tonumber(generation) < tonumber(ARGV[2]) then
    return 'CLAIM_LOST ' .. (generation or '0')
  end
  return 'FENCED'
end
if redis.call('EXISTS', KEYS[4]) == 1 then return 'FROZEN' end
if (redis.call('HGET', KEYS[1], field) or '0') ~= ARGV[3] then return 'MOVED' end
-- A release (`surge dlq`) changed who is parked since the batch was split: split it again.
if (redis.call('HGET', KEYS[5], field) or '0') ~= ARGV[6] then return 'MOVED' end
local i = 7
local n_seen = tonumber(ARGV[i])
i = i + 1
-- The ids in slices of at most 1,000: Lua's unpack stops at about 8,000 values.
local slices = {}
for from = i, i + n_seen - 1, 1000 do
  slices[#slices + 1] = {from, math.min(from + 999, i + n_seen - 1)}
end
for k = 7, 10 do
  for _, slice in ipairs(slices) do
    for _, found in ipairs(redis.call('SMISMEMBER', KEYS[k], unpack(ARGV, slice[1], slice[2]))) do
      if found == 1 then return 'SEEN' end
    end
  end
end
for _, slice in ipairs(slices) do
  redis.call('SADD', KEYS[9], unpack(ARGV, slice[1], slice[2]))
end
if n_seen > 0 then redis.call('EXPIREAT', KEYS[9], ARGV[5]) end
redis.call('UNLINK', KEYS[11])
i = i + n_seen
i = apply_writes(i)
i = store_states(KEYS[3], i)
local n_parked = tonumber(ARGV[i])
i = i + 1
for _ = 1, n_parked do
  redis.call('RPUSH', ARGV[i], ARGV[i + 2])
  redis.call('HSET', KEYS[6], ARGV[i + 1], field)
  i = i + 3
end
if n_parked > 0 then redis.call('HINCRBY', KEYS[5], field, 1) end
redis.call('HSET', KEYS[1], field, ARGV[4])
return 'OK'
