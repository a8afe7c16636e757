-- Claims one partition: bumps its generation, returns {generation, next offset}.
-- KEYS[1] the partition's positions hash, KEYS[2] its generations hash; ARGV[1] its field.
-- Whether the version may still be claimed was read from its versions hash just before
-- (`RedisPositions::claim`).
local generation = redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
local offset = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
return {generation, tonumber(offset)}
