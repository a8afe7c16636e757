-- Applies one partition batch of a Redis projection atomically.
-- KEYS[1] positions hash, KEYS[2] generations hash, KEYS[3] per-user state hash, KEYS[4] the
-- version's freeze lease (set while a rebuilt version takes over from this one).
-- ARGV: field, generation, expected offset, next offset, seen TTL secs,
--       n seen keys, seen keys..., n writes, writes as (op, key, a, b)..., n states, (user, json)...
-- Every check runs before the first write: Redis does not roll back a script that fails midway.
local field = ARGV[1]
if redis.call('HGET', KEYS[2], field) ~= ARGV[2] then return 'FENCED' end
if redis.call('EXISTS', KEYS[4]) == 1 then return 'FROZEN' end
if (redis.call('HGET', KEYS[1], field) or '0') ~= ARGV[3] then return 'MOVED' end
local i = 6
local n_seen = tonumber(ARGV[i])
i = i + 1
for j = 0, n_seen - 1 do
  if redis.call('EXISTS', ARGV[i + j]) == 1 then return 'SEEN' end
end
for j = 0, n_seen - 1 do
  redis.call('SET', ARGV[i + j], '1', 'EX', ARGV[5])
end
i = i + n_seen
local n_writes = tonumber(ARGV[i])
i = i + 1
for _ = 1, n_writes do
  local op, key, a, b = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  i = i + 4
  if op == 'Z' then redis.call('ZINCRBY', key, a, b)
  elseif op == 'L' then redis.call('LPUSH', key, a)
  elseif op == 'T' then redis.call('LTRIM', key, a, b)
  elseif op == 'E' then redis.call('EXPIREAT', key, a)
  elseif op == 'H' then redis.call('HSET', key, a, b)
  end
end
local n_states = tonumber(ARGV[i])
i = i + 1
for _ = 1, n_states do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('HSET', KEYS[1], field, ARGV[4])
return 'OK'
