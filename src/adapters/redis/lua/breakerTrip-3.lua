--[[
  breakerTrip: trips a symbol's circuit breaker exactly once: sets the breaker key with its cooldown,
  records the trip time and adds one event, unless the breaker is already open or another governor
  tripped it after the failures the caller counted.

  Input:
    KEYS[1] breaker key      quantum:governor:breaker:<SYM>            (string JSON, TTL = cooldown)
    KEYS[2] last-trip key    quantum:governor:breaker_last_trip:<SYM>  (epoch ms of the last trip)
    KEYS[3] events stream    quantum:stream:governor.events

    ARGV[1] cooldown, seconds (integer > 0)
    ARGV[2] trip time, epoch ms
    ARGV[3] breaker value (JSON text stored in KEYS[1])
    ARGV[4] event: JSON array [field, value, field, value, ...] (strings) to XADD to KEYS[3], in order
    ARGV[5] events MAXLEN (approximate trim)
    ARGV[6] last trip the caller counted from, epoch ms ('0' = none)
    ARGV[7] TTL of the last-trip key, seconds

  Output:
    1  tripped (breaker set, event added)
    0  already open, or tripped by someone else since the caller's read (nothing written)
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if last > tonumber(ARGV[6]) then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3], 'EX', tonumber(ARGV[1]))
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[7]))
local flat = cjson.decode(ARGV[4])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(flat))
return 1
