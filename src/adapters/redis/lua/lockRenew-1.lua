--[[
  lockRenew: extends a lock's lease only while it still holds the caller's token (a lock that expired
  and was taken by someone else is never extended by the old owner). A holder renews while it works, so
  a killed holder's lock expires within one lease instead of a long fixed TTL.

  Input:
    KEYS[1] lock key (e.g. quantum:apply:close_lock:<SYM>)
    ARGV[1] owner token
    ARGV[2] new lease, milliseconds

  Output:
    1  renewed
    0  not the owner (nothing changed)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0
