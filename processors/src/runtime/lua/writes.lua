-- Runs the writes encoded in ARGV from index i: a count, then (op, key, a, b) per write.
-- Returns the index after them. Prepended to the scripts that write a projection's effects.
local function apply_writes(i)
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
  return i
end

-- Stores the per-user states encoded in ARGV from index i into the hash `key`: a count, then
-- (user, json) per state. Returns the index after them.
local function store_states(key, i)
  local n_states = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, n_states do
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  return i
end
