--[[
  applyEpoch: the Redis "dataset epoch" of the apply layer's pre-send query (P3_CLAIM_DURABILITY =
  exchange-query, docs/architecture.md#exactly-once-execution). Redis loses acknowledged writes only when its server restarts (a host crash
  under appendfsync everysec) or when another server takes over (a failover to a lagging replica); both give
  the answering server another run_id. The first apply layer that sees a run_id records when it saw it; a
  "not found" answer of the exchange is only final once the epoch is older than the settle time (no order
  request signed before the loss can still be accepted).

  Input:
    KEYS[1] epoch hash   quantum:apply:redis_epoch   (run_id, since_ms)
    ARGV[1] identity of the dataset answering: <run_id>:<master_replid> (INFO server, replication)
    ARGV[2] now, epoch ms

  Output:
    since_ms (integer): when this run_id was first seen by an apply layer (ARGV[2] when it is new)
]]
local h = redis.call('HMGET', KEYS[1], 'run_id', 'since_ms')
local since = tonumber(h[2])
if h[1] == ARGV[1] and since then
  return since
end
redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'since_ms', ARGV[2])
return tonumber(ARGV[2])
