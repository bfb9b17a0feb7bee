--[[
  reconcileRead: every input of one symbol the reconcile engine decides from, in one call (read only).

  The engine reads all its symbols in ONE MULTI (one consistent view of every symbol and of the result
  stream, src/services/reconcile-engine/store.ts): one call of this script per symbol inside that MULTI
  replaces ten commands per symbol, which at 10,000 symbols was most of a sweep's cost on the client
  (100,000 commands and as many QUEUED replies; docs/performance.md). It reads exactly what the ten
  commands read and reports a key of the wrong type as that item's error, as the commands did.

  Input:
    KEYS[1]  snapshot hash      quantum:position:snapshot:<SYM>
    KEYS[2]  ledger hash        quantum:position:ledger:<SYM>
    KEYS[3]  legacy ledger hash quantum:position:<SYM>
    KEYS[4]  hold               quantum:reconcile:hold:<SYM>
    KEYS[5]  hold reason        quantum:reconcile:hold_reason:<SYM>
    KEYS[6]  hold signature     quantum:reconcile:hold_sig:<SYM>
    KEYS[7]  in-flight hash     quantum:apply:inflight:<SYM>
    KEYS[8]  state hash         quantum:reconcile:state:<SYM>
    KEYS[9]  newest fill        quantum:apply:last_fill_ms:<SYM>
    KEYS[10] trading state      quantum:governor:trading_state:<SYM>

  Output: a 10-element array, item i answering KEYS[i] as its command would:
    items 1, 2, 3, 7, 10: HGETALL, a flat field/value array (empty when the key does not exist)
    items 4, 5, 6, 9: GET, the value, or nil
    item 8: HGET state last_fix_ts_ms, the value, or nil
  An item whose key has the wrong type is that command's error (WRONGTYPE ...), never the whole reply's.
]]
local function read(...)
  local r = redis.pcall(...)
  if r == nil then return false end
  return r
end

return {
  read('HGETALL', KEYS[1]),
  read('HGETALL', KEYS[2]),
  read('HGETALL', KEYS[3]),
  read('GET', KEYS[4]),
  read('GET', KEYS[5]),
  read('GET', KEYS[6]),
  read('HGETALL', KEYS[7]),
  read('HGET', KEYS[8], 'last_fix_ts_ms'),
  read('GET', KEYS[9]),
  read('HGETALL', KEYS[10]),
}
