--[[
  permitWrite: writes a permit hash once (write-once), with its TTL, in one atomic step.

  A redelivered plan entry (consumer restart, XAUTOCLAIM) must never flip a decision already made:
  when the permit exists nothing is written.

  Input:
    KEYS[1] permit hash   quantum:permit:governor:<plan_id> | quantum:permit:p33:<plan_id>

    ARGV[1] TTL, seconds (integer > 0)
    ARGV[2..] field, value, field, value, ... (decision, reason, context, ts_ms, symbol, side, qty, ...)

  Output:
    1  written
    0  a permit already exists for this plan (nothing written)
]]
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local fv = {}
for i = 2, #ARGV do
  fv[#fv + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(fv))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
