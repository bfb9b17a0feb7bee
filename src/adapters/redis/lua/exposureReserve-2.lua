--[[
  exposureReserve: the governor's exposure reservations (docs/architecture.md#risk-limits-and-trading-states), compare-and-set on a version counter
  so that concurrent entries, across any number of governors, can never together exceed a limit that each
  alone would fit. The caller reads the reservations, the version and the snapshots in one MULTI, decides
  with exact decimals, then calls this script: if anyone reserved or released since (the version moved),
  nothing is written and the caller reads and decides again.

  Input:
    KEYS[1] reservations hash  quantum:governor:reservations          (plan_id -> "<SYM>|<usd>|<expires_ms>")
    KEYS[2] version counter    quantum:governor:reservations:version  (string integer; absent = 0)

    ARGV[1] expected version (as read)
    ARGV[2] plan id to reserve for ('' = release only)
    ARGV[3] its value "<SYM>|<usd>|<expires_ms>"
    ARGV[4..] plan ids whose reservations are released (final result seen, or expired)

  Output:
    1  written (reservation added and/or released; version incremented)
    0  version moved since the read: nothing written, read and decide again
]]
local v = redis.call('GET', KEYS[2]) or '0'
if v ~= ARGV[1] then
  return 0
end
for i = 4, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
end
redis.call('INCR', KEYS[2])
return 1
