/**
 * Every Redis key and stream name of the system (docs/architecture.md#redis-schema). Names are the seeds' own, so the runbooks'
 * `redis-cli` commands keep working. Symbols are upper-case (`BTCUSDT`).
 */

/** Streams and their dead-letter companions. */
export const STREAMS = {
  applyPlan: 'quantum:stream:apply.plan',
  applyResult: 'quantum:stream:apply.result',
  reconcileEvents: 'quantum:stream:reconcile.events',
  reconcileClose: 'quantum:stream:reconcile.close',
  /** Notification stream: the snapshot writer adds an entry in the same atomic step as the snapshot hash. */
  positionSnapshot: 'quantum:stream:position.snapshot',
  /** FLATTEN plans signed by an operator (`p3 flatten`), executed by the apply layer in every trading state. */
  applyFlatten: 'quantum:stream:apply.flatten',
  /** Governor events (circuit breaker trips, trading-state changes). */
  governorEvents: 'quantum:stream:governor.events',
  /** The venue journal: every fill on the account, once by trade id, with its origin (position brain, venueFillRecord-4.lua). */
  exchangeFills: 'quantum:stream:exchange.fills',
} as const;

/** Consumer groups other services rely on (the reconcile engine creates the apply layer's close group before publishing). */
export const GROUPS = {
  /** The apply layer's consumer group on `quantum:stream:apply.plan`. */
  applyPlan: 'apply',
  /** The governor's default consumer group on `quantum:stream:apply.plan` (`GOVERNOR_CONSUMER_GROUP`). */
  governor: 'governor',
  /** The position brain's default consumer group on `quantum:stream:apply.plan` (`P33_CONSUMER_GROUP`). */
  p33: 'p33',
  /** The apply layer's consumer group on `quantum:stream:reconcile.close`. */
  applyClose: 'apply-close',
  /** The apply layer's consumer group on `quantum:stream:apply.flatten`. */
  applyFlatten: 'apply-flatten',
} as const;

/**
 * Pub/sub channels: fire-and-forget wake-ups only. A message can be lost (no subscriber connected, a
 * reconnect), so no decision ever depends on one: a woken reader re-reads the keys, and keeps a slow
 * fallback re-read for the message it never got.
 */
export const CHANNELS = {
  /**
   * `PUBLISH`ed by `permitWrite-1.lua` in the same step as a permit's write; the message is the permit's
   * key (`quantum:permit:governor:<plan_id>` / `quantum:permit:p33:<plan_id>`). The apply layer's waiting
   * plan re-reads both permits at once instead of at its next fallback read.
   */
  permitWritten: 'quantum:notify:permit',
} as const;

/** Dead-letter stream of a stream: `<stream>.dlq`. */
export const dlq = (stream: string): string => `${stream}.dlq`;

/** Approximate MAXLEN of the events stream (seed 001: maxlen=10000). */
export const EVENTS_MAXLEN = 10000;

/** Approximate MAXLEN of the venue journal (`quantum:stream:exchange.fills`). */
export const VENUE_FILLS_MAXLEN = 100000;

/** Approximate MAXLEN of the plan stream (generous: trimming must never reach entries a consumer has not read). */
export const PLAN_STREAM_MAXLEN = 100000;

/** Key builders, one per key of docs/architecture.md#redis-schema (and the few this system adds), by symbol or plan id. */
export const keys = {
  snapshot: (sym: string) => `quantum:position:snapshot:${sym}`,
  ledger: (sym: string) => `quantum:position:ledger:${sym}`,
  /** Seed 004's legacy ledger hash (field `ledger_amount`). */
  legacyLedger004: (sym: string) => `quantum:position:${sym}`,
  permitGovernor: (planId: string) => `quantum:permit:governor:${planId}`,
  permitP33: (planId: string) => `quantum:permit:p33:${planId}`,
  applyDedupe: (planId: string) => `quantum:apply:dedupe:${planId}`,
  applyInflight: (sym: string) => `quantum:apply:inflight:${sym}`,
  /** Marker of the one RECONCILE_CLOSE order sent for a drift signature (apply layer, SET NX in applyBegin-13). */
  closeSent: (sym: string, driftSig: string) => `quantum:apply:close_sent:${sym}:${driftSig}`,
  /** Epoch ms of the symbol's newest EXECUTED result (applyRecord-8.lua raises it; engine and brain read it). */
  lastFill: (sym: string) => `quantum:apply:last_fill_ms:${sym}`,
  reconcileState: (sym: string) => `quantum:reconcile:state:${sym}`,
  hold: (sym: string) => `quantum:reconcile:hold:${sym}`,
  holdReason: (sym: string) => `quantum:reconcile:hold_reason:${sym}`,
  holdSig: (sym: string) => `quantum:reconcile:hold_sig:${sym}`,
  closeCooldown: (sym: string, driftSig: string, bucket: number | string) => `quantum:reconcile:close:cooldown:${sym}:${driftSig}:${bucket}`,
  /** Shared exchange back-off (epoch ms until which no service may call the exchange). */
  exchangeBackoffUntil: () => 'quantum:exchange:backoff_until',
  /** Why the shared back-off is in force: `rate_limited` (HTTP 429) or `banned` (HTTP 418); same expiry as the until key. */
  exchangeBackoffReason: () => 'quantum:exchange:backoff_reason',
  /** Trading state (ACTIVE/REDUCING/HALTED): per symbol, or global with `sym` omitted. */
  tradingState: (sym?: string) => (sym ? `quantum:governor:trading_state:${sym}` : 'quantum:governor:trading_state'),
  /** Circuit breaker of a symbol (string JSON, TTL = cooldown): presence = the symbol is HALTED by the breaker. */
  governorBreaker: (sym: string) => `quantum:governor:breaker:${sym}`,
  /** Epoch ms of a symbol's last breaker trip (failures up to then never trip it again). */
  governorBreakerLastTrip: (sym: string) => `quantum:governor:breaker_last_trip:${sym}`,
  /** Exposure reserved by entry permits not yet reflected in a snapshot: hash plan_id → `<SYM>|<usd>|<expires_ms>` (exposureReserve-2.lua). */
  governorReservations: () => 'quantum:governor:reservations',
  /** Version counter of the reservations hash (compare-and-set of exposureReserve-2.lua). */
  governorReservationsVersion: () => 'quantum:governor:reservations:version',
  /**
   * The governor's risk-control state (docs/risk-controls.md): the loss limit's latch (`day_start_ms`,
   * `next_trip_usd`, `tripped_ts_ms`), its latest measurement and the controls' settings, for `p3 status`.
   */
  governorRisk: () => 'quantum:governor:risk',
  /** Token bucket hash of the governor's plan rate: `global`, or a symbol. Shared by every governor. */
  governorRateBucket: (scope: string) => `quantum:governor:rate:${scope}`,
  /** Apply layer: order sent for a plan (hash: plan_id, entry_id, symbol, side, qty, reduce_only, decision, ts_ms), TTL 86400 s. */
  applyOrder: (clientOrderId: string) => `quantum:apply:order:${clientOrderId}`,
  /** Apply layer: sorted set client_order_id -> send time (epoch ms) of orders not yet recorded (in-flight sweep). */
  applyPending: () => 'quantum:apply:pending',
  /** Apply layer: the Redis dataset epoch of the pre-send query (hash run_id, since_ms; applyEpoch-1.lua). */
  applyRedisEpoch: () => 'quantum:apply:redis_epoch',
  /**
   * Apply layer: sticky record of damage found on the plan stream (hash `kinds`, `detail`, `first_ts_ms`,
   * `last_ts_ms`; plan-stream-health.ts). `p3 doctor` FAILs while it exists; an operator deletes it after
   * the repair and review (docs/runbook.md).
   */
  planStreamDamage: () => 'quantum:apply:plan_stream_damage',
  /** Apply layer: per-symbol lock serialising RECONCILE_CLOSE executions (string owner token, PX TTL). */
  applyCloseLock: (sym: string) => `quantum:apply:close_lock:${sym}`,
  /**
   * Liveness lease of one stream consumer (string `1`, PX lease, renewed every second by the consumer
   * while its process runs; see `consumer-liveness.ts`). Absent = the consumer is gone: its pending
   * entries are taken over within seconds and the consumer is deleted from the group once it owns none.
   * The group is part of the name so an ACL key pattern can give each group's users its own leases only
   * (`quantum:consumer:lease:<stream>:<group>:*`, src/acl/users.ts).
   */
  consumerLease: (stream: string, group: string, consumer: string) => `quantum:consumer:lease:${stream}:${group}:${consumer}`,
  /** The position brain's user data stream state, one hash per brain instance (TTL 15 s; `p3 status`, `p3 doctor`). */
  p33UserStream: (instance: string) => `quantum:p33:user_stream:${instance}`,
  /** Venue journal: trade ids already recorded for a symbol (zset trade id scored by itself, newest kept; venueFillRecord-4.lua). */
  venueTrades: (sym: string) => `quantum:venue:trades:${sym}`,
  /**
   * Venue journal cursor of a symbol (hash): `last_trade_id`, `last_local_ms` (the newest fill recorded),
   * `gap_since_ms` / `gap_reason` (a stretch the stream may have missed and REST has not verified yet),
   * `verified_ms` / `verified_trade_id` (the last REST verification that closed every gap, and the newest
   * trade it read: the next one reads from the trade after it).
   */
  venueCursor: (sym: string) => `quantum:venue:cursor:${sym}`,
  /** Service heartbeat hash, one per instance. */
  heartbeat: (service: string, instance: string) => `quantum:heartbeat:${service}:${instance}`,
} as const;

/** SCAN patterns for monitoring (never KEYS). */
export const patterns = {
  holds: 'quantum:reconcile:hold:*',
  snapshots: 'quantum:position:snapshot:*',
  states: 'quantum:reconcile:state:*',
  /** Canonical ledger hashes (`p3 status` without an allowlist). */
  ledgers: 'quantum:position:ledger:*',
  heartbeats: 'quantum:heartbeat:*',
  /** The position brains' user data stream state hashes (`keys.p33UserStream`). */
  userStreams: 'quantum:p33:user_stream:*',
  tradingStates: 'quantum:governor:trading_state:*',
  breakers: 'quantum:governor:breaker:*',
} as const;
