--[[
  exchangeBackoff: raises the shared exchange back-off, never lowers it (every service honours Retry-After).
  Called by the gateway decorator (src/adapters/exchange/backoff.ts) when the exchange answered HTTP 429 (rate
  limited) or 418 (IP banned).

  Clocks: the back-off is kept on THIS server's clock only. The caller gives a duration; its end is this server's
  TIME plus that duration (at most ARGV[4]), and the keys expire with it (PXAT end + retention), so readers take
  what is left from PTTL, never by comparing an absolute time with their own clock. A host whose clock jumped
  can therefore neither set a back-off far in the future nor be blocked by one it misreads; the longest possible
  back-off is ARGV[4] (Binance's IP bans last from 2 minutes to 3 days), and an operator lifts one with
  `p3 exchange-backoff clear`.

  Input:
    KEYS[1] until key   quantum:exchange:backoff_until   (string, epoch ms on this server's clock)
    KEYS[2] reason key  quantum:exchange:backoff_reason  (string, rate_limited | banned)

    ARGV[1] duration, ms (integer >= 0)
    ARGV[2] reason (rate_limited | banned)
    ARGV[3] extra retention after the end, ms (keys expire at end + this; integer >= 1)
    ARGV[4] longest back-off, ms (integer >= 1)

  Output:
    the time left of the back-off in force after the call, ms (integer): ARGV[1] (capped) when it was raised,
    else what is left of the longer one already stored. An unparseable stored value is replaced.
]]
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dur = math.min(tonumber(ARGV[1]), tonumber(ARGV[4]))
if dur < 0 then dur = 0 end
local retention = tonumber(ARGV[3])
local cur = tonumber(redis.call('GET', KEYS[1]) or '')
local pttl = redis.call('PTTL', KEYS[1])
local left = pttl - retention
-- a back-off set by hand without expiry (PTTL -1) lasts until its stored time: never shortened by a shorter one
if pttl == -1 and cur ~= nil then left = cur - nowMs end
if cur ~= nil and left >= dur then
  return left
end
local want = nowMs + dur
redis.call('SET', KEYS[1], tostring(want), 'PXAT', want + retention)
redis.call('SET', KEYS[2], ARGV[2], 'PXAT', want + retention)
return dur
