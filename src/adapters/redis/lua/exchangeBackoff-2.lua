--[[
  exchangeBackoff: raises the shared exchange back-off, never lowers it (DESIGN §7: every service
  honours Retry-After). Called by the gateway decorator (src/adapters/exchange/backoff.ts) when the
  exchange answered HTTP 429 (rate limited) or 418 (IP banned).

  Input:
    KEYS[1] until key   quantum:exchange:backoff_until   (string, epoch ms)
    KEYS[2] reason key  quantum:exchange:backoff_reason  (string, rate_limited | banned)

    ARGV[1] until, epoch ms (integer)
    ARGV[2] reason (rate_limited | banned)
    ARGV[3] extra retention after `until`, ms (keys expire at until + this; integer >= 1)

  Output:
    the back-off in force after the call, epoch ms (integer): ARGV[1] when it was raised, else the
    larger value already stored. An unparseable stored value is replaced (the caller raises, never lowers
    what it can read).
]]
local want = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '')
if cur ~= nil and cur >= want then
  return cur
end
local expireAt = want + tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', expireAt)
redis.call('SET', KEYS[2], ARGV[2], 'PXAT', expireAt)
return want
