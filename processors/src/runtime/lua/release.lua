-- Releases the first parked event of one user of a Redis projection version (see
-- `runtime/parking.rs`).
-- Every key is in the user's partition's key space (one hash slot):
-- KEYS[1] parked users hash, KEYS[2] the user's parked list, KEYS[3] parking epochs hash,
-- KEYS[4] per-user state hash, KEYS[5] the partition's freeze lease, KEYS[6..9] the partition's
-- seen-id sets of the last days (KEYS[8] today's, see `redis_seen.rs`).
-- ARGV: partition field, expected parking epoch, user, mode, the head's event id (16 bytes;
--       '' unless mode 'apply'), when today's seen set expires, the head's JSON with its new
--       reason (mode 'reason'), then for mode 'apply':
--       n writes, writes as (op, key, a, b)..., n states, (user, json)...
-- Like apply.lua, it stays with the runtime (it applies a projection's writes); its freeze lease
-- key comes from `RedisPositions` (surge_projections::naming).
-- Modes: 'apply' writes the head's effects (unless its id was seen) and removes it; 'drop'
-- removes it; 'reason' keeps it first with a new reason. When a batch or another release of
-- the partition ran since the head was read ('MOVED') or the version is frozen ('FROZEN'),
-- nothing is written.
local field = ARGV[1]
if (redis.call('HGET', KEYS[3], field) or '0') ~= ARGV[2] then return 'MOVED' end
if redis.call('EXISTS', KEYS[5]) == 1 then return 'FROZEN' end
local mode = ARGV[4]
if mode == 'reason' then
  redis.call('LSET', KEYS[2], 0, ARGV[7])
  return 'OK'
end
if mode == 'apply' then
  local id = ARGV[5]
  local seen = false
  for k = 6, 9 do
    if redis.call('SISMEMBER', KEYS[k], id) == 1 then seen = true end
  end
  if not seen then
    redis.call('SADD', KEYS[8], id)
    redis.call('EXPIREAT', KEYS[8], ARGV[6])
    local i = apply_writes(8)
    store_states(KEYS[4], i)
  end
end
redis.call('LPOP', KEYS[2])
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('HDEL', KEYS[1], ARGV[3]) end
redis.call('HINCRBY', KEYS[3], field, 1)
return 'OK'
