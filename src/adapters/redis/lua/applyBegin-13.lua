--[[
  applyBegin: moves a plan from stage `claimed` to `sending` and records the order in flight, in one
  atomic step, just before the order is sent. Only the owner of the claim (exact dedupe value) can do it,
  so two consumers can never both send the order of one plan.
  - EXECUTE plans (ARGV[8] = 'execute'): refused while the symbol is on hold: the permits were issued
    before, but a hold set since (the reconcile engine saw a drift) must stop the order at the last
    moment (fail closed).
  - RECONCILE_CLOSE plans (ARGV[8] = 'close'): the hold must stand with hold_sig == the plan's drift_sig,
    and at most ONE close order is ever sent per (symbol, drift signature): the marker KEYS[7] is taken
    with SET NX here. Two close plans of one drift (two cooldown buckets, a backlog) can otherwise both
    pass `qty <= |position|` when the first does not flatten the position, and reduce it twice. The
    caller deletes the marker when the close is recorded as not executed, so a later bucket can retry.
  - The kill switch (docs/architecture.md#risk-limits-and-trading-states): EXECUTE and RECONCILE_CLOSE plans are refused while the global or the
    symbol's trading state is HALTED, or unreadable (a state that is not ACTIVE/REDUCING/HALTED, or a key
    of the wrong type: fail closed). Checked here, at the last moment, because a halt may have been set
    after the permits or the close plan were issued.
  - FLATTEN plans (ARGV[8] = 'flatten', an operator's signed plan): neither hold nor trading state stops
    them; they are what an operator sends while the kill switch is on.
  - Entries (ARGV[11] = the sign the position must still have: '0' for OPEN, '1'/'-1' for INCREASE on a
    long/short): refused when the symbol's snapshot (KEYS[10]) now shows another sign, or cannot be read
    (docs/architecture.md#plans: no entry ever flips a position; the permits were sized on an older snapshot).
  - Every plan, whatever its mode (the send-time gate; src/domain/send-gate.ts is the same rule
    in TypeScript, test/apply/send-gate.property.test.ts checks they agree): refused when another order
    of the symbol is in flight (KEYS[2] has a field other than ARGV[3]), when the order's snapshot time
    ARGV[12] is not a positive integer, or when it is <= the symbol's newest recorded fill KEYS[11] (the
    position it was sized on may predate that fill). Checked after the kill-switch, entry-sign and hold
    rules and before the close marker is taken, then the order is marked in flight in this same step: of
    two orders sized on one view, at most one is ever sent.

  - Entries additionally: refused while the global or the symbol's trading state is REDUCING (-9): the
    governor denies entries under REDUCING, but the state may have changed since the permit.
  - EXECUTE and RECONCILE_CLOSE: refused while the symbol's circuit breaker (KEYS[12]) stands (-11): a tripped
    breaker halts the symbol as HALTED does, closes included; FLATTEN passes.
  - An entry whose governor permit says it reserved exposure (ARGV[13] = '1'): refused (-10) unless the
    reservation of plan ARGV[14] still exists in KEYS[13]. The governor releases an expired reservation only while
    the plan is not `sending` (exposureExpire-3.lua, atomic with its own check), and this step moves the plan to
    `sending` only while the reservation exists, atomically: so an entry is either sent under its reservation,
    which then counts until the plan's result is final, or not sent at all. Without this, an entry sent after its
    permit's 60 s no longer counted, and a second entry could take the same headroom.
  - A fill time in the future (a writer whose clock jumped ahead) is read as this server's time (TIME): any
    snapshot requested after now includes that fill, so the gate stays safe and does not block the symbol
    until the wrong time has passed.

  Input:
    KEYS[1] dedupe key        quantum:apply:dedupe:<plan_id>
    KEYS[2] in-flight hash    quantum:apply:inflight:<SYM>   (field client_order_id -> ts_ms; read by the
                              reconcile engine's grace rule)
    KEYS[3] pending zset      quantum:apply:pending          (client_order_id scored by ts_ms; in-flight sweep)
    KEYS[4] order hash        quantum:apply:order:<client_order_id>
    KEYS[5] hold key          quantum:reconcile:hold:<SYM>
    KEYS[6] hold sig key      quantum:reconcile:hold_sig:<SYM>
    KEYS[7] close marker      quantum:apply:close_sent:<SYM>:<drift_sig>
    KEYS[8] trading state     quantum:governor:trading_state        (hash, field state)
    KEYS[9] symbol state      quantum:governor:trading_state:<SYM>  (hash, field state)
    KEYS[10] snapshot         quantum:position:snapshot:<SYM>       (position_amt, side)
    KEYS[11] last fill time   quantum:apply:last_fill_ms:<SYM>      (epoch ms, written by applyRecord-8.lua)
    KEYS[12] breaker          quantum:governor:breaker:<SYM>        (exists = tripped, read only)
    KEYS[13] reservations     quantum:governor:reservations         (hash plan_id -> reservation, read only)

    ARGV[1] expected dedupe value (claimed|<entry>|<token>)
    ARGV[2] new dedupe value      (sending|<entry>|<token>)
    ARGV[3] client order id
    ARGV[4] ts_ms (epoch ms, now)
    ARGV[5] in-flight hash TTL, seconds
    ARGV[6] order info: JSON object of string fields for KEYS[4]
    ARGV[7] order hash TTL, seconds
    ARGV[8] 'execute' | 'close' | 'flatten' (see above)
    ARGV[9] drift_sig of a close plan ('' for EXECUTE)
    ARGV[10] close marker TTL, seconds
    ARGV[11] entries: the position sign required at send time ('0', '1', '-1'); '' = no check
    ARGV[12] snapshot_ts_ms: when the position this order was sized from was requested (epoch ms)
    ARGV[13] '1' = the governor reserved exposure for this entry: its reservation must still exist; '' = no check
    ARGV[14] plan id (the reservation's field)

  Output:
    1  recorded; the caller may send
    0  not the owner (value differs); nothing written, the caller must NOT send
   -1  EXECUTE: the symbol is on hold; nothing written, the caller must NOT send
   -2  close: no hold, or hold_sig differs from drift_sig; nothing written, must NOT send
   -3  close: a close order was already sent for this drift signature; nothing written, must NOT send
   -4  execute/close: trading is HALTED (or its state unreadable); nothing written, must NOT send
   -5  entry: the position's sign is no longer the one the permits were sized on; nothing written, must NOT send
   -6  order_in_flight: another order of the symbol is in flight; nothing written, must NOT send
   -7  snapshot_superseded: ARGV[12] <= the symbol's newest fill; nothing written, must NOT send
   -8  snapshot_unknown: ARGV[12] is not a positive integer; nothing written, must NOT send
   -9  entry: trading state REDUCING; nothing written, must NOT send
  -10  entry: its exposure reservation is gone (the permit expired before the send); nothing written, must NOT send
  -11  execute/close: the symbol's circuit breaker is open; nothing written, must NOT send
]]
--- @include "includes/appendPairs"
local function gate()
  local snap = tonumber(ARGV[12])
  if not snap or snap <= 0 or snap ~= math.floor(snap) then
    return -8
  end
  local others = redis.call('HLEN', KEYS[2]) - redis.call('HEXISTS', KEYS[2], ARGV[3])
  if others > 0 then
    return -6
  end
  local last = tonumber(redis.call('GET', KEYS[11]) or '')
  if last then
    local t = redis.call('TIME')
    local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    if last > nowMs then last = nowMs end
  end
  if last and snap <= last then
    return -7
  end
  return 1
end
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local function halted(key)
  local r = redis.pcall('HGET', key, 'state')
  if type(r) == 'table' and r.err then return true end
  if not r then return redis.call('EXISTS', key) == 1 end -- a hash without `state` is unreadable: halted
  local st = string.upper(string.gsub(r, '^%s*(.-)%s*$', '%1'))
  return st ~= 'ACTIVE' and st ~= 'REDUCING'
end
if ARGV[8] ~= 'flatten' and (halted(KEYS[8]) or halted(KEYS[9])) then
  return -4
end
if ARGV[8] ~= 'flatten' and redis.call('EXISTS', KEYS[12]) == 1 then
  return -11
end
local function reducing(key)
  local r = redis.pcall('HGET', key, 'state')
  if type(r) ~= 'string' then return false end -- unreadable states were refused as halted above
  return string.upper(string.gsub(r, '^%s*(.-)%s*$', '%1')) == 'REDUCING'
end
if ARGV[11] ~= nil and ARGV[11] ~= '' and (reducing(KEYS[8]) or reducing(KEYS[9])) then
  return -9
end
if ARGV[13] == '1' and redis.call('HEXISTS', KEYS[13], ARGV[14]) == 0 then
  return -10
end
if ARGV[11] ~= nil and ARGV[11] ~= '' then
  local snap = redis.pcall('HMGET', KEYS[10], 'position_amt', 'side')
  if type(snap) ~= 'table' or snap.err or not snap[1] then return -5 end
  local amt = string.gsub(snap[1], '^%s*(.-)%s*$', '%1')
  local side = string.upper(snap[2] or '')
  local sign
  if not string.match(amt, '^%-?%d+%.?%d*$') then return -5 end
  if string.match(amt, '^%-?0*%.?0*$') then sign = '0'
  elseif string.sub(amt, 1, 1) == '-' then sign = '-1'
  else sign = '1' end
  if side == 'FLAT' and sign ~= '0' then return -5 end
  if (side == 'SHORT' and sign == '1') or (side == 'LONG' and sign == '-1') then return -5 end
  if sign ~= ARGV[11] then return -5 end
end
if ARGV[8] == 'flatten' then
  -- an operator's FLATTEN: no hold or trading-state check (see above)
elseif ARGV[8] == 'close' then
  if redis.call('EXISTS', KEYS[5]) == 0 or redis.call('GET', KEYS[6]) ~= ARGV[9] then
    return -2
  end
elseif redis.call('EXISTS', KEYS[5]) == 1 then
  return -1
end
local g = gate()
if g ~= 1 then
  return g
end
if ARGV[8] == 'close' and not redis.call('SET', KEYS[7], ARGV[3], 'NX', 'EX', tonumber(ARGV[10])) then
  return -3
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[5]))
redis.call('ZADD', KEYS[3], tonumber(ARGV[4]), ARGV[3])
local flat = appendPairs({}, cjson.decode(ARGV[6]))
redis.call('DEL', KEYS[4])
redis.call('HSET', KEYS[4], unpack(flat))
redis.call('EXPIRE', KEYS[4], tonumber(ARGV[7]))
return 1
