--[[
  planStreamGroupReset: sets one consumer group of a stream to a new position with its read counter
  (`XGROUP SETID ... ENTRIESREAD`), only if the group is still where the caller saw it (its last delivered id):
  a group that read on meanwhile (a plan added and delivered since) is left alone, so a reset never makes a
  group read a plan again (a second delivery would be answered DROPPED_DUPLICATE while the first is executing,
  and its group-wide XACK would drop the first consumer's pending entry). Also acknowledges the group's pending
  entries below ARGV[4] (they no longer exist), in the same step.

  Input:
    KEYS[1] stream             quantum:stream:apply.plan

    ARGV[1] group name
    ARGV[2] expected last delivered id (as read)
    ARGV[3] new last delivered id
    ARGV[4] first remaining entry id ('' = the stream is empty: every pending entry is gone)
    ARGV[5] entries read to set (integer)

  Output:
    1  reset
    0  the group moved on (or is gone): nothing changed, read the stream again
]]
local ld = nil
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, last = nil, nil
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if name == ARGV[1] then ld = last end
end
if ld == nil or ld ~= ARGV[2] then
  return 0
end
local upto = ARGV[4] ~= '' and ('(' .. ARGV[4]) or '+'
while true do
  local gone = redis.call('XPENDING', KEYS[1], ARGV[1], '-', upto, 1000)
  if #gone == 0 then break end
  local ids = {}
  for _, p in ipairs(gone) do table.insert(ids, p[1]) end
  redis.call('XACK', KEYS[1], ARGV[1], unpack(ids))
end
redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], ARGV[3], 'ENTRIESREAD', ARGV[5])
return 1
