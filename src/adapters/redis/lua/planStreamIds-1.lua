--[[
  planStreamIds: removes planted ids from a stream in one atomic step, so `XADD *` works again after an
  `XADD` with an explicit id far ahead of the clock (the largest id makes every later `XADD *` fail).
  Entries at or above ARGV[1] are planted (a real `XADD *` id is Redis's clock). Only when it loses
  nothing: every group has read every entry (its last delivered id is the stream's last id) and no group
  has such an entry pending; else nothing changes.
  Steps: XDEL the planted entries; XSETID the stream to its newest remaining entry (ARGV[2] when none
  remains), with max-deleted-entry-id at most that; every group: XACK the planted entries, XGROUP SETID to
  the new last id with ENTRIESREAD = entries added (every entry added counts as read: nothing is lost).
  Ids are compared as decimal strings (Lua numbers cannot hold 64-bit ids).

  Input:
    KEYS[1] stream             quantum:stream:apply.plan

    ARGV[1] limit id           <now + tolerance + 1 ms>-0
    ARGV[2] fallback last id   <now>-0

  Output:
    {1, new last id, {planted entry ids deleted}}
    {0, reason}  nothing changed: 'no_stream', 'no_planted_id', 'groups_behind:<group,...>'
]]
local function cmpnum(a, b)
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  if a == b then
    return 0
  end
  return a < b and -1 or 1
end
local function cmpid(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  local c = cmpnum(am, bm)
  if c ~= 0 then
    return c
  end
  return cmpnum(as, bs)
end
local function fields(arr)
  local f = {}
  for i = 1, #arr, 2 do
    f[arr[i]] = arr[i + 1]
  end
  return f
end

if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 'no_stream'}
end
local info = fields(redis.call('XINFO', 'STREAM', KEYS[1]))
local last = info['last-generated-id']
if cmpid(last, ARGV[1]) < 0 then
  return {0, 'no_planted_id'}
end
local names, behind = {}, {}
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local gf = fields(g)
  table.insert(names, gf['name'])
  local pend = redis.call('XPENDING', KEYS[1], gf['name'])
  if gf['last-delivered-id'] ~= last or (tonumber(pend[1]) > 0 and cmpid(pend[3], ARGV[1]) >= 0) then
    table.insert(behind, gf['name'])
  end
end
if #behind > 0 then
  return {0, 'groups_behind:' .. table.concat(behind, ',')}
end
local ids = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], ARGV[1], '+')) do
  table.insert(ids, e[1])
end
if #ids > 0 then
  redis.call('XDEL', KEYS[1], unpack(ids))
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local newLast = newest[1] and newest[1][1] or ARGV[2]
local maxDel = info['max-deleted-entry-id']
if cmpid(maxDel, newLast) > 0 then
  maxDel = newLast
end
redis.call('XSETID', KEYS[1], newLast, 'MAXDELETEDID', maxDel)
for _, name in ipairs(names) do
  if #ids > 0 then
    redis.call('XACK', KEYS[1], name, unpack(ids))
  end
  redis.call('XGROUP', 'SETID', KEYS[1], name, newLast, 'ENTRIESREAD', info['entries-added'])
end
return {1, newLast, ids}
