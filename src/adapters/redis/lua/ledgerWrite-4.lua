--[[
  ledgerWrite: writes a symbol's ledger as compare-and-set on its fingerprint, migrating legacy layouts,
  and adds an event and/or an apply result in the same atomic step.

  The fingerprint is the one computed by ledgerFingerprint() in src/domain/position.ts:
    version|ledger_amt|ledger_side|last_known_amt|last_side|<legacy ledger_amount>
  with '' for every missing field. A mismatch means someone (apply layer, reconcile engine, operator)
  wrote the ledger since the caller read it: nothing is written and the caller re-reads.
  The compare-and-set and the migration are includes/ledgerCas.lua, shared with applyRecord-8.lua.

  Input:
    KEYS[1] ledger hash        quantum:position:ledger:<SYM>
    KEYS[2] legacy ledger hash quantum:position:<SYM>            (seed 004, field ledger_amount)
    KEYS[3] events stream      quantum:stream:reconcile.events
    KEYS[4] result stream      quantum:stream:apply.result

    ARGV[1] expected fingerprint
    ARGV[2] new ledger_amt (signed decimal string)
    ARGV[3] new ledger_side (LONG|SHORT|FLAT)
    ARGV[4] ts_epoch (epoch seconds, decimal string)
    ARGV[5] source (apply|p34_auto|p34_adopt|p34_manual|init|operator)
    ARGV[6] event: JSON object of string fields to XADD to KEYS[3] ('' = no event);
            the script adds ledger_version = the new version
    ARGV[7] result: JSON object of string fields to XADD to KEYS[4] ('' = no result)
    ARGV[8] events MAXLEN (approximate trim)
    ARGV[9] symbol (for the LEDGER_MIGRATED event)
    ARGV[10] ts_ms of the write (for the LEDGER_MIGRATED event)

  Output:
    n >= 1  written; n is the new version
    0       fingerprint conflict, nothing written
]]
--- @include "includes/appendPairs"
--- @include "includes/ledgerCas"

local function xaddJson(stream, json, maxlen, extra)
  local flat = appendPairs(appendPairs({}, cjson.decode(json)), extra)
  if maxlen then
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(flat))
  else
    redis.call('XADD', stream, '*', unpack(flat))
  end
end

local version = ledgerCas({ ledger = KEYS[1], legacy = KEYS[2], events = KEYS[3], expected = ARGV[1], amt = ARGV[2],
  side = ARGV[3], tsEpoch = ARGV[4], source = ARGV[5], maxlen = ARGV[8], symbol = ARGV[9], tsMs = ARGV[10] })
if version == 0 then
  return 0
end
if ARGV[6] ~= '' then
  xaddJson(KEYS[3], ARGV[6], ARGV[8], { ledger_version = tostring(version) })
end
if ARGV[7] ~= '' then
  xaddJson(KEYS[4], ARGV[7], '100000', {})
end
return version
