--[[
  venueFillRecord: records one fill of the account in the venue journal exactly once (by trade id), in one
  atomic step (position-state-brain's venue journal; docs/architecture.md#venue-journal).

  The set of trade ids seen keeps the newest ARGV[2] ids of the symbol (scored by the trade id, which
  Binance assigns increasing per symbol); a fill whose id is already in it, or that is older than every
  id the set still holds while the set is full, is not recorded again (a REST verifier re-reading a page
  the stream already delivered, a duplicated stream message).

  Input:
    KEYS[1] trade ids seen (zset)   quantum:venue:trades:<SYM>
    KEYS[2] journal stream          quantum:stream:exchange.fills
    KEYS[3] journal cursor (hash)   quantum:venue:cursor:<SYM>
    KEYS[4] our order record (hash) quantum:apply:order:<client_order_id>  (read only: field decision)

    ARGV[1] trade id (integer string)
    ARGV[2] retention: trade ids kept per symbol (integer)
    ARGV[3] journal MAXLEN (approximate trim)
    ARGV[4] local_ts_ms of the fill (epoch ms)
    ARGV[5..] field, value, ... of the journal entry (the script adds plan_decision)

  Output:
    stream entry id   recorded (the cursor's last_trade_id / last_local_ms raised when newer)
    0                 already recorded (or older than the retained window): nothing written
]]
local tid = tonumber(ARGV[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local keep = tonumber(ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= keep then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if oldest[2] and tid < tonumber(oldest[2]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], tid, ARGV[1])
local n = redis.call('ZCARD', KEYS[1])
if n > keep then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - keep - 1)
end
local decision = redis.call('HGET', KEYS[4], 'decision') or ''
local fv = {}
for i = 5, #ARGV do
  fv[#fv + 1] = ARGV[i]
end
fv[#fv + 1] = 'plan_decision'
fv[#fv + 1] = decision
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(fv))
local last = tonumber(redis.call('HGET', KEYS[3], 'last_trade_id') or '')
if last == nil or tid > last then
  redis.call('HSET', KEYS[3], 'last_trade_id', ARGV[1], 'last_local_ms', ARGV[4])
end
return id
