--[[
  Fragment (included with `--- @include "includes/appendPairs"`, see scripts/loader.ts): the field/value list of a
  stream entry or hash built from a table, shared by every script that writes an event, result or record
  from a JSON argument (applyBegin-13, applyRecord-8, closePublish-5, ledgerWrite-4, operatorHold-5,
  reconcileApply-11).

  appendPairs(flat, t): appends each key and value of table `t` to the array `flat` (both as strings, in
  the table's iteration order) and returns `flat`.
]]
local function appendPairs(flat, t)
  for k, v in pairs(t) do
    flat[#flat + 1] = tostring(k)
    flat[#flat + 1] = tostring(v)
  end
  return flat
end
