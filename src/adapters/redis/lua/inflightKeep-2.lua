--[[
  inflightKeep: keeps an order that is still unresolved in the symbol's in-flight hash, so the send-time gate and
  the reconcile engine's grace rule keep seeing it for as long as its outcome is unknown (the hash has a TTL, set
  when an order is marked in flight, and an order can stay unresolved longer: an exchange unreachable for
  minutes). Only while the plan is still `sending` under the same claim (exact dedupe value): a plan recorded
  meanwhile is never put back in flight. The TTL is only ever extended (EXPIRE ... GT, or set when none).

  Input:
    KEYS[1] dedupe key      quantum:apply:dedupe:<plan_id>
    KEYS[2] in-flight hash  quantum:apply:inflight:<SYM>

    ARGV[1] expected dedupe value (sending|<entry>|<token>)
    ARGV[2] client order id
    ARGV[3] ts_ms the order was marked in flight (epoch ms)
    ARGV[4] TTL of the in-flight hash, seconds

  Output:
    1  kept (field present, TTL at least ARGV[4])
    0  the plan is no longer sending under that claim: nothing written
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
if redis.call('TTL', KEYS[2]) < tonumber(ARGV[4]) then
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[4]))
end
return 1
