--[[
  Fragment (included with `--- @include "includes/takeTokens"`, see scripts/loader.ts): the governor's token
  buckets (tokenBucket-2.lua's rules, shared with governorIssue-3.lua).

  takeTokens(gKey, sKey, gRate, gBurst, sRate, sBurst) takes one token from the global bucket `gKey` and
  the symbol bucket `sKey`, both or neither. Time comes from the Redis server (TIME). Each bucket is a hash
  {tokens, ts_ms}; a missing bucket is full; a bucket that exists but cannot be read is EMPTY (fail
  closed) and reset to {0, now}. Buckets refill at rate_per_min / 60000 tokens per ms up to burst, and
  expire once they would be full again.
  Returns code, global tokens, symbol tokens (strings, before a refusal):
    1 taken from both; -1 global bucket empty; -2 symbol bucket empty (nothing taken)
]]
local function takeTokens(gKey, sKey, gRate, gBurst, sRate, sBurst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

  local function level(key, ratePerMin, burst)
    local h = redis.call('HMGET', key, 'tokens', 'ts_ms')
    local tokens = tonumber(h[1])
    local ts = tonumber(h[2])
    if h[1] == false and h[2] == false and redis.call('EXISTS', key) == 0 then
      return burst
    end
    -- unreadable, NaN or infinite (an `inf` would read as a full bucket): empty, fail closed
    if tokens == nil or ts == nil or tokens ~= tokens or ts ~= ts or math.abs(tokens) == math.huge or math.abs(ts) == math.huge then
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

  local g = level(gKey, gRate, gBurst)
  local s = level(sKey, sRate, sBurst)
  if g < 1 then
    return -1, tostring(g), tostring(s)
  end
  if s < 1 then
    return -2, tostring(g), tostring(s)
  end

  local function store(key, v, ratePerMin, burst)
    redis.call('HSET', key, 'tokens', tostring(v), 'ts_ms', tostring(now))
    local refillMs = math.ceil((burst - v) * 60000 / ratePerMin) + 1000
    redis.call('PEXPIRE', key, refillMs)
  end
  store(gKey, g - 1, gRate, gBurst)
  store(sKey, s - 1, sRate, sBurst)
  return 1, tostring(g - 1), tostring(s - 1)
end
