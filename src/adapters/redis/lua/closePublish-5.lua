--[[
  closePublish: publishes one RECONCILE_CLOSE plan per drift signature per cooldown bucket, across any
  number of reconcile engines (docs/architecture.md#reconcile-close-publication, seed 002's atomic cooldown).

  The plan is published only while the engine's hold for that drift still stands (hold key present and
  hold_sig equal to the plan's drift_sig): a hold cleared or re-signed by another engine or an operator
  between the decision and this call publishes nothing.

  Input:
    KEYS[1] hold            quantum:reconcile:hold:<SYM>
    KEYS[2] hold signature  quantum:reconcile:hold_sig:<SYM>
    KEYS[3] cooldown        quantum:reconcile:close:cooldown:<SYM>:<drift_sig>:<bucket>
    KEYS[4] close stream    quantum:stream:reconcile.close
    KEYS[5] events stream   quantum:stream:reconcile.events

    ARGV[1] drift_sig
    ARGV[2] cooldown TTL, seconds (120)
    ARGV[3] plan (canonical JSON, as signed)
    ARGV[4] mac (hex HMAC-SHA256 of ARGV[3] with P3_KEY_P3_4)
    ARGV[5] event fields: JSON object of strings (event RECONCILE_CLOSE_PUBLISHED is added)
    ARGV[6] MAXLEN (approximate) of both streams

  Output:
    1   published (plan entry and event added, cooldown taken)
    0   cooldown already taken for this drift and bucket: nothing published
    -1  no engine hold with this signature: nothing published
]]
--- @include "includes/appendPairs"
if not redis.call('GET', KEYS[1]) then return -1 end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
-- a hold rewritten by an operator (its TTL no longer the one it shares with hold_sig) is not ours
local holdTtl = redis.call('PTTL', KEYS[1])
if holdTtl < 0 or math.abs(holdTtl - redis.call('PTTL', KEYS[2])) > 1500 then return -1 end
if not redis.call('SET', KEYS[3], '1', 'EX', ARGV[2], 'NX') then return 0 end
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], '*', 'plan', ARGV[3], 'mac', ARGV[4])
local flat = appendPairs({ 'event', 'RECONCILE_CLOSE_PUBLISHED', 'close_entry_id', id }, cjson.decode(ARGV[5]))
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', unpack(flat))
return 1
