--[[
  Fragment (included with `--- @include "includes/writePermit"`, see scripts/loader.ts): the write-once permit
  write of permitWrite-1.lua, shared with governorIssue-3.lua.

  permitExists(key): true when a permit hash exists (a decision already made: never flipped).
  writePermit(key, ttlSec, fv): HSET of the field/value list `fv`, EXPIRE `ttlSec`, and PUBLISH of the key on
  `quantum:notify:permit` (CHANNELS.permitWritten in keys.ts), all in the calling script's one step.
]]
local function permitExists(key)
  return redis.call('EXISTS', key) == 1
end

local function writePermit(key, ttlSec, fv)
  redis.call('HSET', key, unpack(fv))
  redis.call('EXPIRE', key, ttlSec)
  redis.call('PUBLISH', 'quantum:notify:permit', key)
end
