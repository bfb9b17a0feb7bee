--[[
  tokenBucket: takes one token from a global and a per-symbol token bucket, both or neither, so any
  number of governors share one plan-rate budget. Time comes from the Redis server (TIME), never from
  the callers' clocks.

  Each bucket is a hash {tokens, ts_ms}; a missing bucket is full. A bucket that exists but cannot be
  read (an operator's bad edit) is EMPTY (fail closed) and is reset to {0, now} so it refills normally.
  Buckets refill continuously at rate_per_min / 60000 tokens per ms up to burst, and expire once they
  would be full again.

  Input:
    KEYS[1] global bucket   quantum:governor:rate:global
    KEYS[2] symbol bucket   quantum:governor:rate:<SYM>

    ARGV[1] global rate, tokens per minute (> 0)
    ARGV[2] global burst (capacity, >= 1)
    ARGV[3] symbol rate, tokens per minute (> 0)
    ARGV[4] symbol burst (capacity, >= 1)

  Output: { code, global_tokens_left, symbol_tokens_left } (token counts as strings, before refusal)
    code  1  token taken from both buckets
    code -1  global bucket empty (nothing taken)
    code -2  symbol bucket empty (nothing taken)
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function level(key, ratePerMin, burst)
  local h = redis.call('HMGET', key, 'tokens', 'ts_ms')
  local tokens = tonumber(h[1])
  local ts = tonumber(h[2])
  if h[1] == false and h[2] == false and redis.call('EXISTS', key) == 0 then
    return burst
  end
  if tokens == nil or ts == nil or tokens ~= tokens then
    redis.call('DEL', key)
    redis.call('HSET', key, 'tokens', '0', 'ts_ms', tostring(now))
    redis.call('PEXPIRE', key, math.ceil(burst * 60000 / ratePerMin) + 1000)
    return 0
  end
  local elapsed = now - ts
  if elapsed < 0 then elapsed = 0 end
  local v = tokens + elapsed * ratePerMin / 60000
  if v > burst then v = burst end
  return v
end

local gRate, gBurst = tonumber(ARGV[1]), tonumber(ARGV[2])
local sRate, sBurst = tonumber(ARGV[3]), tonumber(ARGV[4])
local g = level(KEYS[1], gRate, gBurst)
local s = level(KEYS[2], sRate, sBurst)
if g < 1 then
  return { -1, tostring(g), tostring(s) }
end
if s < 1 then
  return { -2, tostring(g), tostring(s) }
end

local function store(key, v, ratePerMin, burst)
  redis.call('HSET', key, 'tokens', tostring(v), 'ts_ms', tostring(now))
  local refillMs = math.ceil((burst - v) * 60000 / ratePerMin) + 1000
  redis.call('PEXPIRE', key, refillMs)
end
store(KEYS[1], g - 1, gRate, gBurst)
store(KEYS[2], s - 1, sRate, sBurst)
return { 1, tostring(g - 1), tostring(s - 1) }
