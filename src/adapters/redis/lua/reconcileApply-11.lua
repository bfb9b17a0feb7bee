--[[
  reconcileApply: applies one reconcile decision for one symbol atomically: input check, hold
  (set/renew/clear with ONE TTL for hold, hold_reason, hold_sig), state hash and transition events.

  Several engines may run against one Redis: each applies its decision only if the snapshot and the
  ledger are still exactly what it read (compare-and-set on both fingerprints), and an event is emitted
  only when the state actually changes (previous status|reason|drift_sig differs, or a hold is really
  set/cleared), so each change produces one event whichever engine sees it first.

  Episodes: ARGV[6] is the verdict's drift SHAPE (symbol|reason|amounts hashed). A `set` whose
  shape equals the standing engine hold's (`hold_shape` in the state hash) renews it and keeps its
  hold_sig: one drift seen by several engines and passes stays one signature. Otherwise a NEW hold is set
  with hold_sig = ARGV[13] (an episode signature: shape + the time it was first set), so the same amounts
  at another time are another drift, with their own close plan ids, cooldown keys and close marker.
  An episode whose close order was SENT (its one-close marker KEYS[9] exists: taken at send, released only
  when the close did not execute or filled partly) is over: the same shape seen again on a snapshot the
  engine trusts (newer than that close's fill) is a new drift (the same manual trade made again before any
  pass saw the healed state) and gets a new signature, never the healed episode's cooldown or marker.

  Beyond snapshot and ledger, the decision is also conditional on the apply layer's activity it was made
  without: a fill recorded since the read (KEYS[11] last_fill_ms moved) or, for `set`, a change of the
  orders in flight (KEYS[10]'s fields differ from those read; an old leftover record the decision already
  judged too old to count does not block a hold) makes it stale: an order sent between the read and this call (a close of this
  very drift, say) must never turn into a "new" episode of the same shape.

  Snapshot fingerprint: position_amt|side|ts_ms|ts_epoch ('' for missing fields).
  Ledger fingerprint: version|ledger_amt|ledger_side|last_known_amt|last_side|<legacy ledger_amount>,
  identical to ledgerFingerprint() in src/domain/position.ts and ledgerWrite-4.lua.
  Either is 'WRONGTYPE' when one of its keys is not a hash.

  An operator hold is a hold key without hold_sig: never set, renewed or cleared here. hold_reason /
  hold_sig left behind by a hold key deleted by hand (redis-cli DEL) are removed, so a later operator
  hold is never mistaken for an engine hold. The engine (and the apply layer's lease renewal) always
  give hold, hold_reason and hold_sig one TTL: a hold whose TTL differs from its hold_sig's by more than
  1.5 s was rewritten by someone else (seed 001's `redis-cli SETEX quantum:reconcile:hold:<SYM> 300 1` on
  top of an engine hold) and becomes an operator hold: its hold_sig and hold_reason are removed, so no
  close is published for it and the engine never clears it. An operator hold appearing or going away
  (however it was set) is recorded once as HOLD_SET / HOLD_CLEARED with owner=operator.

  Input:
    KEYS[1] snapshot hash      quantum:position:snapshot:<SYM>
    KEYS[2] ledger hash        quantum:position:ledger:<SYM>
    KEYS[3] legacy ledger hash quantum:position:<SYM>
    KEYS[4] state hash         quantum:reconcile:state:<SYM>
    KEYS[5] hold               quantum:reconcile:hold:<SYM>
    KEYS[6] hold reason        quantum:reconcile:hold_reason:<SYM>
    KEYS[7] hold signature     quantum:reconcile:hold_sig:<SYM>
    KEYS[8] events stream      quantum:stream:reconcile.events
    KEYS[9] close marker       quantum:apply:close_sent:<SYM>:<hold_sig as read by the caller>
    KEYS[10] in-flight hash    quantum:apply:inflight:<SYM>
    KEYS[11] newest fill       quantum:apply:last_fill_ms:<SYM>

    ARGV[1] expected snapshot fingerprint
    ARGV[2] expected ledger fingerprint
    ARGV[3] status (OK|DRIFT|HOLD|REPAIRED|MANUAL_REQUIRED)
    ARGV[4] reason
    ARGV[5] hold action: set | clear | keep
    ARGV[6] drift shape of the verdict ('' when none); written to the state's drift_sig
    ARGV[7] hold TTL, seconds
    ARGV[8] state fields: JSON object of strings (exchange_amt, ledger_amt, diff_amt, diff_pct, ...)
    ARGV[9] event fields: JSON object of strings added to every event (symbol, amounts, ts_ms, ...)
    ARGV[10] events MAXLEN (approximate)
    ARGV[11] now, epoch milliseconds
    ARGV[12] manual required: 1 when no automatic close will heal this hold (state field manual_required,
             event MANUAL_REQUIRED on a transition), else 0
    ARGV[13] episode signature for a NEW engine hold (hold_sig when `set` does not renew)
    ARGV[14] the hold_sig the caller read ('' when none): KEYS[9] was built from it; a different current
             hold_sig means the hold changed since the read: nothing written ('stale'), decide again
    ARGV[15] last_fill_ms as read ('' when none): a different value means a fill was recorded since
    ARGV[16] the client order ids in flight as read (KEYS[10]'s fields, sorted, comma-joined; '' when none):
             for `set`, any other set of fields means an order was sent (or recorded) since the read

  Output: { applied, transitioned, hold, hold_sig }
    applied       1 written; 0 inputs changed since read (nothing written: re-read and decide again)
    transitioned  1 when status|reason|drift_sig differs from the previous state
    hold          'set' | 'renewed' | 'cleared' | 'kept' | 'operator' | 'none'  (the hold after this call:
                  set/renewed/kept = engine hold stands, operator = operator hold stands, cleared/none = no hold)
    hold_sig      the engine hold's episode signature after this call ('' when no engine hold stands)
]]
--- @include "includes/appendPairs"
local function s(v) if v then return v else return '' end end

-- A key of the wrong type (a corrupt hash) reads as the fingerprint 'WRONGTYPE' instead of failing, so
-- the engine can still record HOLD invalid_* for that symbol.
local function safe(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then return nil end
  return r
end

local sn = safe('HMGET', KEYS[1], 'position_amt', 'side', 'ts_ms', 'ts_epoch')
local snFp = 'WRONGTYPE'
if sn then snFp = s(sn[1]) .. '|' .. s(sn[2]) .. '|' .. s(sn[3]) .. '|' .. s(sn[4]) end
if snFp ~= ARGV[1] then
  return { 0, 0, 'stale' }
end
local h = safe('HMGET', KEYS[2], 'version', 'ledger_amt', 'ledger_side', 'last_known_amt', 'last_side')
local legacy = safe('HMGET', KEYS[3], 'ledger_amount')
local ledFp = 'WRONGTYPE'
if h and legacy then
  ledFp = s(h[1]) .. '|' .. s(h[2]) .. '|' .. s(h[3]) .. '|' .. s(h[4]) .. '|' .. s(h[5]) .. '|' .. s(legacy[1])
end
if ledFp ~= ARGV[2] then
  return { 0, 0, 'stale' }
end

local status, reason, action, sig, ttl = ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local lastFill = safe('GET', KEYS[11])
if (lastFill or '') ~= ARGV[15] then
  return { 0, 0, 'stale' }
end
if action == 'set' then
  -- the orders in flight must be exactly those the decision saw (it ignores records too old to count; a new
  -- one sent since the read makes the decision stale)
  local inflight = safe('HKEYS', KEYS[10])
  if inflight == nil then
    return { 0, 0, 'stale' }
  end
  table.sort(inflight)
  if table.concat(inflight, ',') ~= ARGV[16] then
    return { 0, 0, 'stale' }
  end
end
local maxlen = ARGV[10]

local function event(name, extra)
  local flat = appendPairs(appendPairs({ 'event', name }, cjson.decode(ARGV[9])), extra)
  redis.call('XADD', KEYS[8], 'MAXLEN', '~', maxlen, '*', unpack(flat))
end

-- A hold key of the wrong type counts as an operator hold (present, no signature): never touched.
local hold = safe('GET', KEYS[5])
if hold == nil then hold = 'WRONGTYPE' end
local curSig = safe('GET', KEYS[7]) or false
local curReason = safe('GET', KEYS[6]) or false
if not hold then
  if curSig or curReason then redis.call('DEL', KEYS[6], KEYS[7]) end
  curSig = false
  curReason = false
end
if hold and curSig and hold ~= 'WRONGTYPE' then
  local holdTtl = redis.call('PTTL', KEYS[5])
  local sigTtl = redis.call('PTTL', KEYS[7])
  if holdTtl < 0 or math.abs(holdTtl - sigTtl) > 1500 then
    redis.call('DEL', KEYS[6], KEYS[7])
    curSig = false
    curReason = false
  end
end
local engineHold = hold and curSig
local operatorHold = hold and not curSig
if engineHold and curSig ~= ARGV[14] then
  return { 0, 0, 'stale' }
end

local holdShape = redis.call('HGET', KEYS[4], 'hold_shape')
local holdResult = 'none'
local newSig = ARGV[13]
if operatorHold then
  holdResult = 'operator'
elseif action == 'set' then
  -- same episode: the standing engine hold has this shape (or, from before episodes, this signature) and
  -- its close has not been sent (a sent close ends the episode, see the header)
  if engineHold and (holdShape == sig or curSig == sig) and redis.call('EXISTS', KEYS[9]) == 0 then
    redis.call('EXPIRE', KEYS[5], ttl)
    redis.call('EXPIRE', KEYS[6], ttl)
    redis.call('EXPIRE', KEYS[7], ttl)
    holdResult = 'renewed'
  else
    redis.call('SET', KEYS[5], '1', 'EX', ttl)
    redis.call('SET', KEYS[6], reason, 'EX', ttl)
    redis.call('SET', KEYS[7], newSig, 'EX', ttl)
    holdResult = 'set'
    event('HOLD_SET', { reason = reason, hold_sig = newSig, drift_shape = sig, previous_hold_sig = s(curSig),
      previous_reason = s(curReason), ttl_sec = ttl, status = status })
  end
elseif action == 'clear' then
  if engineHold then
    redis.call('DEL', KEYS[5], KEYS[6], KEYS[7])
    holdResult = 'cleared'
    event('HOLD_CLEARED', { reason = reason, previous_reason = s(curReason), previous_hold_sig = s(curSig), status = status })
  end
elseif engineHold then
  holdResult = 'kept'
end

local prev = redis.call('HMGET', KEYS[4], 'status', 'reason', 'drift_sig', 'hold_owner')
local transitioned = 0
if (s(prev[1]) .. '|' .. s(prev[2]) .. '|' .. s(prev[3])) ~= (status .. '|' .. reason .. '|' .. sig) then
  transitioned = 1
end

local fields = { 'status', status, 'reason', reason, 'drift_sig', sig }
for k, v in pairs(cjson.decode(ARGV[8])) do
  fields[#fields + 1] = tostring(k)
  fields[#fields + 1] = tostring(v)
end
local holdSigNow = ''
local holdOwner = 'none'
local shapeNow = ''
if holdResult == 'set' then
  holdSigNow = newSig
  holdOwner = 'engine'
  shapeNow = sig
elseif holdResult == 'renewed' then
  holdSigNow = curSig
  holdOwner = 'engine'
  shapeNow = sig
elseif holdResult == 'kept' then
  shapeNow = s(holdShape)
  holdSigNow = curSig
  holdOwner = 'engine'
elseif holdResult == 'operator' then
  holdOwner = 'operator'
end
fields[#fields + 1] = 'hold_sig'
fields[#fields + 1] = holdSigNow
fields[#fields + 1] = 'hold_owner'
fields[#fields + 1] = holdOwner
fields[#fields + 1] = 'hold_shape'
fields[#fields + 1] = shapeNow
-- An operator hold set or lifted with redis-cli leaves no trace of its own: record when the engine first
-- sees it appear or go (the audit trail `p3 events` shows), once per change.
if holdOwner == 'operator' and prev[4] ~= 'operator' then
  event('HOLD_SET', { reason = 'operator', owner = 'operator', observed_by = 'engine', status = status })
elseif prev[4] == 'operator' and holdOwner ~= 'operator' and not hold then
  event('HOLD_CLEARED', { reason = 'operator', owner = 'operator', observed_by = 'engine', status = status })
end
if transitioned == 1 then
  fields[#fields + 1] = 'since_ts_ms'
  fields[#fields + 1] = ARGV[11]
end
if status == 'REPAIRED' then
  fields[#fields + 1] = 'last_fix_ts_ms'
  fields[#fields + 1] = ARGV[11]
end
fields[#fields + 1] = 'manual_required'
fields[#fields + 1] = ARGV[12]
redis.call('HSET', KEYS[4], unpack(fields))

if transitioned == 1 and ARGV[12] == '1' then
  event('MANUAL_REQUIRED', { reason = reason, drift_sig = sig, hold_sig = holdSigNow, status = status })
end
return { 1, transitioned, holdResult, holdSigNow }
