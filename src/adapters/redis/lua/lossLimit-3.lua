--[[
  lossLimit: records the governor's latest loss-limit measurement and, when the caller's evaluation says
  so, trips the loss limit exactly once per threshold: the global trading state becomes REDUCING (never
  looser: a HALTED or unreadable state is left as it is) and a LOSS_LIMIT_TRIPPED event is added, unless
  another governor moved the latch since the caller read it (docs/risk-controls.md#loss-limit).

  Input:
    KEYS[1] risk hash           quantum:governor:risk                 (latch: day_start_ms, next_trip_usd; measurement fields)
    KEYS[2] trading state       quantum:governor:trading_state        (hash {state, reason, ts_ms, by})
    KEYS[3] events stream       quantum:stream:governor.events

    ARGV[1] measurement: JSON object {field: string value} written to KEYS[1] (every call)
    ARGV[2] '1' to trip, '0' to record only
    ARGV[3] day start the caller evaluated, epoch ms (string)
    ARGV[4] the latch's next_trip_usd the caller read for that day ('' = none)
    ARGV[5] next_trip_usd after this trip (decimal string)
    ARGV[6] trip time, epoch ms
    ARGV[7] reason stored with the trading state (text)
    ARGV[8] event: JSON array [field, value, ...] (strings) to XADD to KEYS[3]
    ARGV[9] events MAXLEN (approximate trim)

  Output:
    2  tripped and the trading state set to REDUCING
    1  tripped (latch and event), the trading state already REDUCING or stricter (left as it is)
    0  recorded only (no trip asked, or the latch moved since the caller's read)
]]
local m = cjson.decode(ARGV[1])
for k, v in pairs(m) do
  redis.call('HSET', KEYS[1], k, v)
end
if ARGV[2] ~= '1' then
  return 0
end
local latch = redis.call('HMGET', KEYS[1], 'day_start_ms', 'next_trip_usd')
local nt = ''
if latch[1] == ARGV[3] and latch[2] then
  nt = latch[2]
end
if nt ~= ARGV[4] then
  return 0
end
redis.call('HSET', KEYS[1], 'day_start_ms', ARGV[3], 'next_trip_usd', ARGV[5], 'tripped_ts_ms', ARGV[6])
local flat = cjson.decode(ARGV[8])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', unpack(flat))
local st = redis.call('HMGET', KEYS[2], 'state')[1]
if st == false or st == 'ACTIVE' then
  redis.call('HSET', KEYS[2], 'state', 'REDUCING', 'reason', ARGV[7], 'ts_ms', ARGV[6], 'by', 'governor:loss_limit')
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*', 'event', 'TRADING_STATE_SET', 'scope', 'global', 'symbol', '', 'state', 'REDUCING', 'reason', ARGV[7], 'by', 'governor:loss_limit', 'ts_ms', ARGV[6])
  return 2
end
return 1
