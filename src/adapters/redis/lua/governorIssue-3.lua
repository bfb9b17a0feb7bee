--[[
  governorIssue: the governor's ALLOW in one atomic step (one script call per decision instead
  of tokenBucket-2 then permitWrite-1): unless the plan already has a governor permit, takes one token
  from the global and the symbol bucket (both or neither, tokenBucket-2.lua's rules) and, only when they
  were taken, writes the signed ALLOW permit once with its TTL and publishes its key on
  `quantum:notify:permit` (permitWrite-1.lua's rules). A refused token writes nothing: the governor then
  writes its signed DENY (rate_limited_*) with permitWrite-1.lua.

  Input:
    KEYS[1] permit hash     quantum:permit:governor:<plan_id>
    KEYS[2] global bucket   quantum:governor:rate:global
    KEYS[3] symbol bucket   quantum:governor:rate:<SYM>

    ARGV[1] permit TTL, seconds (integer > 0)
    ARGV[2] global rate, tokens per minute (> 0)
    ARGV[3] global burst (>= 1)
    ARGV[4] symbol rate, tokens per minute (> 0)
    ARGV[5] symbol burst (>= 1)
    ARGV[6..] permit field, value, field, value, ... (the signed ALLOW)

  Output: { code, global_tokens, symbol_tokens } (token counts as strings; '' when not read)
    code  1  tokens taken, permit written (and published)
    code  0  a permit already exists for this plan (nothing taken, nothing written)
    code -1  global bucket empty (nothing taken, nothing written)
    code -2  symbol bucket empty (nothing taken, nothing written)
]]
--- @include "includes/takeTokens"
--- @include "includes/writePermit"

if permitExists(KEYS[1]) then
  return { 0, '', '' }
end
local code, g, s = takeTokens(KEYS[2], KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]))
if code ~= 1 then
  return { code, g, s }
end
local fv = {}
for i = 6, #ARGV do
  fv[#fv + 1] = ARGV[i]
end
writePermit(KEYS[1], tonumber(ARGV[1]), fv)
return { 1, g, s }
