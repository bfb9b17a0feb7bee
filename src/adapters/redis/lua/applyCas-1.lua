--[[
  applyCas: compare-and-swap of an apply-layer dedupe value, keeping its TTL (takeover of an
  interrupted plan by the consumer that got its entry redelivered).

  Input:
    KEYS[1] dedupe key   quantum:apply:dedupe:<plan_id>
    ARGV[1] expected value
    ARGV[2] new value

  Output:
    1  swapped
    0  the value is not ARGV[1] (someone else owns or finished the plan), nothing written
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
