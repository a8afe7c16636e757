-- Tap energy of one user: spends ARGV[3] taps (a negative cost refunds) if the energy
-- refilled since the last call covers them, else changes nothing.
-- KEYS[1]: the user's energy hash {e = energy at t, t = unix ms of Redis's clock}.
-- ARGV: capacity, refill per second, cost.
-- Returns {granted (1 or 0), energy left (whole taps), ms until the cost would be covered}.
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
-- Redis's own clock: every write-API instance sees the same time.
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local stored = redis.call('HMGET', KEYS[1], 'e', 't')
local energy = capacity
if stored[1] and stored[2] then
  local elapsed = math.max(0, now - tonumber(stored[2]))
  energy = math.min(capacity, tonumber(stored[1]) + elapsed * refill / 1000)
end
if cost > energy then
  return {0, math.floor(energy), math.ceil((cost - energy) * 1000 / refill)}
end
energy = math.min(capacity, energy - cost)
redis.call('HSET', KEYS[1], 'e', string.format('%.3f', energy), 't', now)
-- A full bar is the same as no key: let it expire once refilled.
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - energy) * 1000 / refill) + 1000)
return {1, math.floor(energy), 0}
