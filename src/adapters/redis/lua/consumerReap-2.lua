--[[
  consumerReap: deletes a consumer that is gone from a stream's consumer group, only when deleting it
  loses nothing: its liveness lease is absent, it owns no pending entry, and it has been idle at least
  ARGV[3] ms. XGROUP DELCONSUMER drops the consumer's pending entries with it, so the pending check and
  the delete must be one atomic step (a consumer that read an entry in between would lose it).

  Input:
    KEYS[1] stream             e.g. quantum:stream:reconcile.close
    KEYS[2] liveness lease     quantum:consumer:lease:<stream>:<group>:<consumer>

    ARGV[1] group
    ARGV[2] consumer name
    ARGV[3] minimum idle time, milliseconds

  Output:
    1  deleted
    0  kept (lease present, entries pending, not idle long enough, or no such consumer)
]]
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local consumers = redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])
for _, c in ipairs(consumers) do
  local f = {}
  for i = 1, #c, 2 do
    f[c[i]] = c[i + 1]
  end
  if f['name'] == ARGV[2] then
    if tonumber(f['pending']) ~= 0 or tonumber(f['idle']) < tonumber(ARGV[3]) then
      return 0
    end
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
    return 1
  end
end
return 0
