--[[
  snapshotMark: refreshes the market-price fields of an existing exchange position snapshot between two
  position polls (position-state-brain's snapshot publisher, while the polls are slower than the mark
  refresh): `mark_price`, `mark_ts_ms` and `index_price`. The position fields and `ts_ms` are left as
  they are (they still say when the position was read). Never moves the mark back in time, never creates
  a snapshot.

  Input:
    KEYS[1] snapshot hash        quantum:position:snapshot:<SYM>

    ARGV[1] mark price (decimal string, > 0)
    ARGV[2] mark time, epoch ms (integer: when the premiumIndex request was sent)
    ARGV[3] index price (decimal string; '' = unknown, stored empty)

  Output:
    1  written
    0  no snapshot, or its mark is as new or newer (nothing written)
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local cur = tonumber(redis.call('HGET', KEYS[1], 'mark_ts_ms') or '')
if cur ~= nil and cur >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'mark_price', ARGV[1], 'mark_ts_ms', ARGV[2], 'index_price', ARGV[3])
return 1
