--[[
  venueGapClear: closes a venue journal gap after a REST verification (position-state-brain's venue
  journal; docs/architecture.md#venue-journal), in one atomic step: the gap is cleared only when it was set
  at or before the verification started (a gap opened during the verification stays for the next one).

  Input:
    KEYS[1] journal cursor (hash)  quantum:venue:cursor:<SYM>   (fields gap_since_ms, gap_reason, verified_ms,
                                                                verified_trade_id)

    ARGV[1] start of the verification, epoch ms
    ARGV[2] now, epoch ms (written as verified_ms when no gap is left)
    ARGV[3] newest trade id the verification read ('' none): verified_trade_id is raised to it (REST confirmed
            every trade up to it is journaled; the next verification reads from the one after)

  Output:
    1   no gap left (verified_ms written)
    0   a gap set after the verification started remains
]]
local upto = tonumber(ARGV[3] or '')
local cur = tonumber(redis.call('HGET', KEYS[1], 'verified_trade_id') or '')
if upto ~= nil and (cur == nil or upto > cur) then
  redis.call('HSET', KEYS[1], 'verified_trade_id', ARGV[3])
end
local since = tonumber(redis.call('HGET', KEYS[1], 'gap_since_ms') or '')
if since ~= nil and since > tonumber(ARGV[1]) then
  return 0
end
redis.call('HDEL', KEYS[1], 'gap_since_ms', 'gap_reason')
redis.call('HSET', KEYS[1], 'verified_ms', ARGV[2])
return 1
