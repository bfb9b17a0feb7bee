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
--- @include "includes/takeTokens"

local code, g, s = takeTokens(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]))
return { code, g, s }
