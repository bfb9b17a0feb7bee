--[[
  operatorHold: sets or clears an operator's hold (`p3 hold set|clear`), with its event, atomically.

  An operator hold is the hold key and hold_reason WITHOUT hold_sig, both with the same TTL: the reconcile
  engine respects it and never renews or clears it (seed 001's `redis-cli SETEX ... 300 1` makes the same
  kind of hold). Clearing deletes the hold, hold_reason and hold_sig whoever set them (seed 001's
  `redis-cli DEL`); if an engine drift is still there, the engine sets its own hold again on its next pass.

  Input:
    KEYS[1] hold            quantum:reconcile:hold:<SYM>
    KEYS[2] hold reason     quantum:reconcile:hold_reason:<SYM>
    KEYS[3] hold signature  quantum:reconcile:hold_sig:<SYM>
    KEYS[4] events stream   quantum:stream:reconcile.events
    KEYS[5] state hash      quantum:reconcile:state:<SYM>  (hold_owner recorded, so the engine does not
                            report the same operator hold again as observed)

    ARGV[1] action: set | clear
    ARGV[2] TTL seconds (set)
    ARGV[3] reason (set)
    ARGV[4] event fields: JSON object of strings (event HOLD_SET / HOLD_CLEARED is added)
    ARGV[5] events MAXLEN (approximate)

  Output:
    1  done (set: hold set; clear: a hold existed and was deleted)
    0  clear: there was no hold (nothing written, no event)
]]
--- @include "includes/appendPairs"
local function event(name, extra)
  local flat = appendPairs(appendPairs({ 'event', name }, cjson.decode(ARGV[4])), extra)
  redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[5], '*', unpack(flat))
end

if ARGV[1] == 'set' then
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[2])
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[2])
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[5], 'hold_owner', 'operator')
  event('HOLD_SET', { reason = ARGV[3], ttl_sec = ARGV[2], hold_owner = 'operator' })
  return 1
end
local existed = redis.call('GET', KEYS[1])
local prevReason = redis.call('GET', KEYS[2]) or ''
local prevSig = redis.call('GET', KEYS[3]) or ''
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if not existed then return 0 end
if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('HSET', KEYS[5], 'hold_owner', 'none') end
event('HOLD_CLEARED', { previous_reason = prevReason, previous_hold_sig = prevSig, hold_owner = 'operator' })
return 1
