--[[
  exposureExpire: releases ONE exposure reservation whose permit expired, only while its plan is not being sent
  and not finished (its dedupe value starts neither with `sending|` nor with `done|`), in one atomic step with
  that check. The apply layer moves a plan to `sending` only while its reservation exists (applyBegin-13.lua),
  so a reservation is either released before its entry can be sent (the send is then refused) or counted
  until the entry's result is final: never both an order and no reservation.

  Input:
    KEYS[1] reservations hash  quantum:governor:reservations          (plan_id -> "<SYM>|<usd>|<expires_ms>")
    KEYS[2] version counter    quantum:governor:reservations:version  (string integer; absent = 0)
    KEYS[3] dedupe key         quantum:apply:dedupe:<plan_id>         (read only)

    ARGV[1] plan id

  Output:
    1  released (version incremented)
    0  kept: the plan is being sent or is finished (the release by result applies then), or nothing to release
]]
local stage = redis.call('GET', KEYS[3])
if stage and (string.sub(stage, 1, 8) == 'sending|' or string.sub(stage, 1, 5) == 'done|') then
  return 0
end
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('INCR', KEYS[2])
return 1
