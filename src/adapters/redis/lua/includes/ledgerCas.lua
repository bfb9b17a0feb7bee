--[[
  Fragment (included with `--- @include "includes/ledgerCas"`, see scripts/loader.ts): the ledger
  compare-and-set shared by ledgerWrite-4 and applyRecord-8 (the one rule of a ledger write, whoever writes).

  ledgerCas(w): writes a symbol's ledger only if nobody changed it since it was read.
    w.ledger    ledger hash        quantum:position:ledger:<SYM>
    w.legacy    legacy ledger hash quantum:position:<SYM>
    w.events    events stream      quantum:stream:reconcile.events  (LEDGER_MIGRATED)
    w.expected  expected fingerprint version|ledger_amt|ledger_side|last_known_amt|last_side|<legacy ledger_amount>
                (ledgerFingerprint() in src/domain/position.ts)
    w.amt, w.side  new ledger_amt (signed decimal string), ledger_side (LONG|SHORT|FLAT)
    w.tsEpoch   epoch seconds of the write (decimal string); ts_epoch never goes backwards
    w.source    the writer (source field)
    w.maxlen    events MAXLEN (approximate)
    w.symbol, w.tsMs  fields of the LEDGER_MIGRATED event
  Returns the new version (>= 1), or 0 on a fingerprint conflict (nothing written). Legacy layouts (the
  last_known_amt/last_side fields, the legacy hash's ledger_amount) are migrated in the same step, with one
  LEDGER_MIGRATED event.
]]
local function ledgerCas(w)
  local function s(v) if v then return v else return '' end end
  local h = redis.call('HMGET', w.ledger, 'version', 'ledger_amt', 'ledger_side', 'last_known_amt', 'last_side')
  local legacyAmt = redis.call('HGET', w.legacy, 'ledger_amount')
  local fp = s(h[1]) .. '|' .. s(h[2]) .. '|' .. s(h[3]) .. '|' .. s(h[4]) .. '|' .. s(h[5]) .. '|' .. s(legacyAmt)
  if fp ~= w.expected then
    return 0
  end
  local version = (tonumber(h[1]) or 0) + 1

  -- Migrate legacy layouts: canonical fields replace them in this same step.
  local migrated = false
  if h[4] or h[5] then
    redis.call('HDEL', w.ledger, 'last_known_amt', 'last_side', 'last_executed_qty', 'updated_at')
    migrated = true
  end
  if legacyAmt then
    redis.call('HDEL', w.legacy, 'ledger_amount')
    migrated = true
  end

  -- ts_epoch never goes backwards (fills newer than it are the reconcile engine's evidence; two fills
  -- recorded out of order must not re-expose the older one as evidence newer than the ledger)
  local tsEpoch = w.tsEpoch
  local prevTs = tonumber(redis.call('HGET', w.ledger, 'ts_epoch'))
  if prevTs and prevTs > (tonumber(tsEpoch) or 0) then tsEpoch = tostring(redis.call('HGET', w.ledger, 'ts_epoch')) end
  redis.call('HSET', w.ledger, 'ledger_amt', w.amt, 'ledger_side', w.side, 'ts_epoch', tsEpoch,
    'source', w.source, 'version', tostring(version))

  if migrated then
    redis.call('XADD', w.events, 'MAXLEN', '~', w.maxlen, '*', 'event', 'LEDGER_MIGRATED', 'symbol', w.symbol,
      'old_fingerprint', w.expected, 'ledger_amt', w.amt, 'ledger_version', tostring(version), 'ts_ms', w.tsMs)
  end
  return version
end
