--[[
  holdRenew: renews a reconcile hold's lease (hold, hold_reason, hold_sig share one TTL) only while the
  hold stands and its signature is the RECONCILE_CLOSE plan's drift_sig (seed 002: "Apply Layer renews
  lease before execution"; docs/architecture.md#reconcile_close-invariants).

  Input:
    KEYS[1] quantum:reconcile:hold:<SYM>
    KEYS[2] quantum:reconcile:hold_reason:<SYM>
    KEYS[3] quantum:reconcile:hold_sig:<SYM>
    ARGV[1] expected hold_sig (the plan's drift_sig)
    ARGV[2] lease, seconds

  Output:
    1   renewed
    -1  no hold (nothing written)
    -2  hold_sig differs, or the hold was rewritten by an operator (its TTL no longer the one it shares
        with hold_sig, see reconcileApply-11.lua): nothing written
]]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
if redis.call('GET', KEYS[3]) ~= ARGV[1] then
  return -2
end
local holdTtl = redis.call('PTTL', KEYS[1])
if holdTtl < 0 or math.abs(holdTtl - redis.call('PTTL', KEYS[3])) > 1500 then
  return -2
end
local ttl = tonumber(ARGV[2])
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
redis.call('EXPIRE', KEYS[3], ttl)
return 1
