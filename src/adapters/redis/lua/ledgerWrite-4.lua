--[[
  ledgerWrite: writes a symbol's ledger as compare-and-set on its fingerprint, migrating legacy layouts,
  and adds an event and/or an apply result in the same atomic step.

  The fingerprint is the one computed by ledgerFingerprint() in src/domain/position.ts:
    version|ledger_amt|ledger_side|last_known_amt|last_side|<legacy ledger_amount>
  with '' for every missing field. A mismatch means someone (apply layer, reconcile engine, operator)
  wrote the ledger since the caller read it: nothing is written and the caller re-reads.

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
local function s(v) if v then return v else return '' end end

local h = redis.call('HMGET', KEYS[1], 'version', 'ledger_amt', 'ledger_side', 'last_known_amt', 'last_side')
local legacyAmt = redis.call('HGET', KEYS[2], 'ledger_amount')
local fp = s(h[1]) .. '|' .. s(h[2]) .. '|' .. s(h[3]) .. '|' .. s(h[4]) .. '|' .. s(h[5]) .. '|' .. s(legacyAmt)
if fp ~= ARGV[1] then
  return 0
end

local version = tonumber(h[1]) or 0
version = version + 1

local function xaddJson(stream, json, maxlen, extra)
  local flat = appendPairs(appendPairs({}, cjson.decode(json)), extra)
  if maxlen then
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(flat))
  else
    redis.call('XADD', stream, '*', unpack(flat))
  end
end

-- Migrate legacy layouts: canonical fields replace them in this same step.
local migrated = false
if h[4] or h[5] then
  redis.call('HDEL', KEYS[1], 'last_known_amt', 'last_side', 'last_executed_qty', 'updated_at')
  migrated = true
end
if legacyAmt then
  redis.call('HDEL', KEYS[2], 'ledger_amount')
  migrated = true
end

-- ts_epoch never goes backwards (fills newer than it are the reconcile engine's evidence)
local tsEpoch = ARGV[4]
local prevTs = tonumber(redis.call('HGET', KEYS[1], 'ts_epoch'))
if prevTs and prevTs > (tonumber(tsEpoch) or 0) then tsEpoch = tostring(redis.call('HGET', KEYS[1], 'ts_epoch')) end
redis.call('HSET', KEYS[1], 'ledger_amt', ARGV[2], 'ledger_side', ARGV[3], 'ts_epoch', tsEpoch,
  'source', ARGV[5], 'version', tostring(version))

if migrated then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[8], '*', 'event', 'LEDGER_MIGRATED', 'symbol', ARGV[9],
    'old_fingerprint', ARGV[1], 'ledger_amt', ARGV[2], 'ledger_version', tostring(version), 'ts_ms', ARGV[10])
end
if ARGV[6] ~= '' then
  xaddJson(KEYS[3], ARGV[6], ARGV[8], { ledger_version = tostring(version) })
end
if ARGV[7] ~= '' then
  xaddJson(KEYS[4], ARGV[7], '100000', {})
end
return version
