--[[
  snapshotWrite: replaces a symbol's exchange position snapshot and adds its notification entry in one
  atomic step (position-state-brain's snapshot publisher).

  Several publishers may run at once: a snapshot never moves back in time. When the stored snapshot has
  a newer ts_ms (a later poll of another instance already landed) nothing is written, unless the stored
  ts_ms lies more than ARGV[4] ms in the future of ARGV[3] (a hand-edited or corrupt value must not
  freeze the snapshot forever).

  Input:
    KEYS[1] snapshot hash        quantum:position:snapshot:<SYM>
    KEYS[2] notification stream  quantum:stream:position.snapshot

    ARGV[1] ts_ms of the snapshot (epoch ms, integer: when the positions request was sent)
    ARGV[2] stream MAXLEN (approximate trim)
    ARGV[3] now, epoch ms (integer)
    ARGV[4] future tolerance, ms (integer)
    ARGV[5] symbol (for the notification entry)
    ARGV[6..] field, value, field, value, ... of the new hash (must include ts_ms)

  Output:
    stream entry id   written
    0                 a newer snapshot is already stored, nothing written
]]
local ts = tonumber(ARGV[1])
local cur = tonumber(redis.call('HGET', KEYS[1], 'ts_ms') or '')
if cur ~= nil and cur > ts and cur <= tonumber(ARGV[3]) + tonumber(ARGV[4]) then
  return 0
end
local fv = {}
for i = 6, #ARGV do
  fv[#fv + 1] = ARGV[i]
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(fv))
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'symbol', ARGV[5], 'ts_ms', ARGV[1])
