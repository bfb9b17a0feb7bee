--[[
  applyRecord: records the outcome of a plan exactly once: the apply.result entry, the end of the
  in-flight record and the dedupe stage `done`, and for an EXECUTE fill the ledger update, all in ONE
  atomic step (docs/architecture.md#exactly-once-execution).

  Fence: when the dedupe value already starts with `done|` (or is not a claimed/sending value of this
  system), nothing is written: another consumer recorded this plan first. When ARGV[12] is given, the
  dedupe value must be exactly it (the caller's own claimed|/sending| value with its owner token): a
  consumer whose claim was taken over can never record over the new owner's outcome.

  Ledger (ARGV[4] = '1'): the compare-and-set of ledgerWrite-4.lua, from the same fragment
  (includes/ledgerCas.lua: the fingerprint
    version|ledger_amt|ledger_side|last_known_amt|last_side|<legacy ledger_amount>
  computed by ledgerFingerprint() in src/domain/position.ts, legacy layouts migrated with a
  LEDGER_MIGRATED event). ledgerWrite-4.lua cannot be used directly because the fence and the in-flight
  removal must be in the same step as the ledger write.

  Input:
    KEYS[1] dedupe key         quantum:apply:dedupe:<plan_id>
    KEYS[2] in-flight hash     quantum:apply:inflight:<SYM>
    KEYS[3] pending zset       quantum:apply:pending
    KEYS[4] result stream      quantum:stream:apply.result
    KEYS[5] ledger hash        quantum:position:ledger:<SYM>
    KEYS[6] legacy ledger hash quantum:position:<SYM>
    KEYS[7] events stream      quantum:stream:reconcile.events
    KEYS[8] last fill time     quantum:apply:last_fill_ms:<SYM>  (epoch ms of the symbol's newest EXECUTED
                               result, only ever raised; read by the reconcile engine and the brain so a
                               snapshot older than a fill is never acted on, however many results followed)

    ARGV[1] client order id ('' = no order was sent)
    ARGV[2] result: JSON object of string fields (XADD to KEYS[4], MAXLEN ~ 100000)
    ARGV[3] dedupe value to set (done|<entry>|<status>), TTL kept
    ARGV[4] '1' = write the ledger, '0' = result only
    ARGV[5] expected ledger fingerprint
    ARGV[6] new ledger_amt (signed decimal string)
    ARGV[7] new ledger_side (LONG|SHORT|FLAT)
    ARGV[8] ts_epoch (epoch seconds, decimal string)
    ARGV[9] events MAXLEN (approximate)
    ARGV[10] symbol
    ARGV[11] ts_ms
    ARGV[12] expected current dedupe value ('' = any claimed|/sending| value)

  Output:
    n >= 1  recorded; n = new ledger version when the ledger was written, else 1
    0       ledger fingerprint conflict: nothing written (re-read and retry)
    -1      fenced: the plan was already recorded; nothing written
]]
--- @include "includes/appendPairs"
local cur = redis.call('GET', KEYS[1])
if cur then
  local stage = string.match(cur, '^([a-z]+)|')
  if stage ~= 'claimed' and stage ~= 'sending' then
    return -1
  end
end
if ARGV[12] and ARGV[12] ~= '' and cur ~= ARGV[12] then
  return -1
end

--- @include "includes/ledgerCas"
local version = 1
if ARGV[4] == '1' then
  version = ledgerCas({ ledger = KEYS[5], legacy = KEYS[6], events = KEYS[7], expected = ARGV[5], amt = ARGV[6],
    side = ARGV[7], tsEpoch = ARGV[8], source = 'apply', maxlen = ARGV[9], symbol = ARGV[10], tsMs = ARGV[11] })
  if version == 0 then
    return 0
  end
end

local t = cjson.decode(ARGV[2])
local flat = appendPairs({}, t)
redis.call('XADD', KEYS[4], 'MAXLEN', '~', '100000', '*', unpack(flat))
if t.status == 'EXECUTED' and t.executed == 'true' then
  local fillTs = tonumber(t.ts_ms)
  -- a fill time ahead of this server's clock (the writer's clock jumped) is recorded as now: a future value
  -- would make every snapshot look older than the fill, blocking the symbol until that time
  local now = redis.call('TIME')
  local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
  if fillTs and fillTs > nowMs then fillTs = nowMs end
  local last = tonumber(redis.call('GET', KEYS[8]))
  if fillTs and (not last or fillTs > last) then
    redis.call('SET', KEYS[8], tostring(fillTs), 'EX', 86400)
  end
end
if ARGV[1] ~= '' then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
if cur then
  redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[3], 'EX', 86400)
end
return version
