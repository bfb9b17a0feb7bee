--[[
  fillThrottle: trips a symbol's repeated-execution throttle exactly once: records the trip time, sets the
  symbol's trading state REDUCING (never looser: a HALTED or unreadable state is left as it is) and adds a
  FILL_THROTTLE_TRIPPED event, unless another governor tripped it since the caller read the last trip
  (docs/risk-controls.md#repeated-execution-throttle). Only an operator re-arms the symbol.

  Input:
    KEYS[1] risk hash           quantum:governor:risk                     (field throttle_tripped_ms:<SYM>)
    KEYS[2] trading state       quantum:governor:trading_state:<SYM>      (hash {state, reason, ts_ms, by})
    KEYS[3] events stream       quantum:stream:governor.events

    ARGV[1] symbol
    ARGV[2] trip time, epoch ms
    ARGV[3] the last trip the caller counted from ('' = none)
    ARGV[4] reason stored with the trading state (text)
    ARGV[5] event: JSON array [field, value, ...] (strings) to XADD to KEYS[3]
    ARGV[6] events MAXLEN (approximate trim)

  Output:
    2  tripped and the symbol's trading state set to REDUCING
    1  tripped, the symbol's state already REDUCING or stricter (left as it is)
    0  tripped by someone else since the caller's read (nothing written)
]]
local field = 'throttle_tripped_ms:' .. ARGV[1]
local last = redis.call('HMGET', KEYS[1], field)[1]
if (last or '') ~= ARGV[3] then
  return 0
end
redis.call('HSET', KEYS[1], field, ARGV[2])
local flat = cjson.decode(ARGV[5])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', unpack(flat))
local st = redis.call('HMGET', KEYS[2], 'state')[1]
if st == false or st == 'ACTIVE' then
  redis.call('HSET', KEYS[2], 'state', 'REDUCING', 'reason', ARGV[4], 'ts_ms', ARGV[2], 'by', 'governor:fill_throttle')
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*', 'event', 'TRADING_STATE_SET', 'scope', ARGV[1], 'symbol', ARGV[1], 'state', 'REDUCING', 'reason', ARGV[4], 'by', 'governor:fill_throttle', 'ts_ms', ARGV[2])
  return 2
end
return 1
