--[[
  planStreamIds: removes planted ids from a stream in one atomic step, so `XADD *` works again after an
  `XADD` with an explicit id far ahead of the clock (the largest id makes every later `XADD *` fail).
  Entries at or above the limit (this server's TIME + ARGV[1] ms) are planted (a real `XADD *` id is Redis's
  clock; the limit is taken from this server's clock, never a client's). Only when it loses nothing: no group
  has a real entry (below the limit) left to read after its last delivered id, and no group has a planted
  entry pending; else nothing changes. (A group is NOT behind merely because its last delivered id differs
  from the stream's last id: after `XADD MAXLEN 0 <largest id>` that id no longer exists and can never be read.)
  Steps: XDEL the planted entries; XSETID the stream to its newest remaining entry (`<now>-0` when none
  remains), with max-deleted-entry-id at most that; every group: XACK the planted entries, XGROUP SETID to
  the new last id with ENTRIESREAD = entries added (every entry added counts as read: nothing is lost).
  Ids are compared as decimal strings (Lua numbers cannot hold 64-bit ids).

  Input:
    KEYS[1] stream             quantum:stream:apply.plan

    ARGV[1] tolerance, ms: ids more than this ahead of this server's clock are planted

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
local t = redis.call('TIME')
local nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = string.format('%d-0', nowMs + tonumber(ARGV[1]) + 1)
local fallback = string.format('%d-0', nowMs)
local info = fields(redis.call('XINFO', 'STREAM', KEYS[1]))
local last = info['last-generated-id']
if cmpid(last, limit) < 0 then
  return {0, 'no_planted_id'}
end
local names, behind = {}, {}
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local gf = fields(g)
  table.insert(names, gf['name'])
  local pend = redis.call('XPENDING', KEYS[1], gf['name'])
  local unread = {}
  if gf['last-delivered-id'] ~= '18446744073709551615-18446744073709551615' then -- nothing can lie after the largest id
    unread = redis.call('XRANGE', KEYS[1], '(' .. gf['last-delivered-id'], '(' .. limit, 'COUNT', 1)
  end
  if #unread > 0 or (tonumber(pend[1]) > 0 and cmpid(pend[3], limit) >= 0) then
    table.insert(behind, gf['name'])
  end
end
if #behind > 0 then
  return {0, 'groups_behind:' .. table.concat(behind, ',')}
end
local ids = {}
for _, e in ipairs(redis.call('XRANGE', KEYS[1], limit, '+')) do
  table.insert(ids, e[1])
end
if #ids > 0 then
  redis.call('XDEL', KEYS[1], unpack(ids))
end
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local newLast = newest[1] and newest[1][1] or fallback
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
