--[[
  permitWrite: writes a permit hash once (write-once), with its TTL, in one atomic step, and publishes
  the permit's key on the channel `quantum:notify:permit` (CHANNELS.permitWritten in keys.ts; a test
  checks the two agree) in the same step, so an apply layer waiting for it wakes at once.
  The message is only a wake-up: the apply layer re-reads and verifies the permit; a lost message costs
  one fallback re-read interval, never a wrong decision.

  A redelivered plan entry (consumer restart, XAUTOCLAIM) must never flip a decision already made:
  when the permit exists nothing is written (and nothing published).

  Input:
    KEYS[1] permit hash   quantum:permit:governor:<plan_id> | quantum:permit:p33:<plan_id>

    ARGV[1] TTL, seconds (integer > 0)
    ARGV[2..] field, value, field, value, ... (decision, reason, context, ts_ms, symbol, side, qty, ...)

  Output:
    1  written (and published)
    0  a permit already exists for this plan (nothing written)
]]
--- @include "includes/writePermit"

if permitExists(KEYS[1]) then
  return 0
end
local fv = {}
for i = 2, #ARGV do
  fv[#fv + 1] = ARGV[i]
end
writePermit(KEYS[1], tonumber(ARGV[1]), fv)
return 1
