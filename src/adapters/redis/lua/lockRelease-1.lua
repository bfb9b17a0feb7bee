--[[
  lockRelease: deletes a lock key only when it still holds the caller's token (a lock that expired and
  was taken by someone else is never released by the old owner).

  Input:
    KEYS[1] lock key (e.g. quantum:apply:close_lock:<SYM>)
    ARGV[1] owner token

  Output:
    1  released
    0  not the owner (nothing deleted)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
