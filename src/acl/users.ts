/**
 * Redis ACL users of the system (docs/architecture.md#least-privilege-and-signed-permits): one per component, each with the keys, streams and commands
 * it needs and nothing else. Every key pattern is built from the key builders of
 * `src/adapters/redis/keys.ts` (a symbol slot becomes `[A-Z0-9]*`, an id slot `*`), so the rules cannot
 * drift from the keys the code uses. Pure data: rendering is in `render.ts`.
 *
 * Invariants:
 * - Only the governor may write `quantum:permit:governor:*`, only the brain `quantum:permit:p33:*`
 *   (and the apply layer verifies their signatures anyway, `src/domain/permit-signature.ts`).
 * - Holds (`hold`, `hold_reason`, `hold_sig`) are written by the engine and the operator/console only;
 *   the apply layer may only change their TTL (`EXPIRE`: the lease renewal of holdRenew-3.lua), in a
 *   selector that allows no other command.
 * - The strategy may only add to the plan stream and read results; it cannot read or write anything else.
 * - Only the operator and the console may add FLATTEN plans (`quantum:stream:apply.flatten`).
 * - Consumers get the stream-group commands (XREADGROUP, XACK, XAUTOCLAIM, XCLAIM, XGROUP CREATE) on the
 *   streams they consume in a selector WITHOUT `XADD` or any data write (no SET/DEL on a stream), and the
 *   liveness leases of their OWN group only (`quantum:consumer:lease:<stream>:<group>:*`): a consumer can
 *   neither add entries, delete or overwrite a stream, nor fake or drop another group's live consumer.
 *   Only the apply layer deletes dead consumers (XGROUP DELCONSUMER through consumerReap-2.lua, of every
 *   group of its streams); the governor and the brain have no DELCONSUMER, so they cannot drop another
 *   group's pending entries.
 * - Lua scripts: `EVALSHA`/`EVAL` declare keys with read-write flags, so every script's declared keys are
 *   granted for `EVALSHA`/`EVAL` only (in a selector without data commands); the commands a script runs
 *   are checked against the user's own rules, so a script can do nothing the user could not do directly.
 * - Pub/sub: only the permit issuers may PUBLISH the permit notification (`permitWrite-1.lua`, `governorIssue-3.lua`), only the
 *   apply layer may SUBSCRIBE to it; no other channel for anyone.
 * - No user has `@admin`/`@dangerous` rights except what is listed (`INFO`, operator `KEYS` for the seeds'
 *   runbook); the `default` user is off.
 */
import { CHANNELS, GROUPS, STREAMS, dlq, keys } from '../adapters/redis/keys.js';

/** Key pattern of a symbol slot: the symbols are `[A-Z0-9]{2,30}` (so `quantum:position:<SYM>` never matches `quantum:position:ledger:*`). */
export const SYM = '[A-Z0-9]*';
/** Key pattern of an id slot (plan id, client order id, instance, drift signature). */
export const ID = '*';

/** A set of rights: key patterns by access, and commands. */
export interface AclGrant {
  /** Read and write (`~pattern`). */
  rw?: string[];
  /** Read only (`%R~pattern`). */
  read?: string[];
  /** Write only (`%W~pattern`). */
  write?: string[];
  /** Commands (`get`, `client|setname`) and categories (`@read`), without the leading `+`. */
  commands: string[];
  /** Pub/sub channel patterns (`&pattern`); every user starts from `resetchannels`. */
  channels?: string[];
}

/** One ACL user. */
export interface AclUserSpec {
  /** Redis user name, e.g. `p3-governor`. */
  user: string;
  /** Environment variable holding its password, e.g. `P3_REDIS_PASSWORD_GOVERNOR`. */
  passwordEnv: string;
  /** Who connects as this user. */
  purpose: string;
  /** The user's own rules. */
  root: AclGrant;
  /** Selectors (Redis >= 7.0): extra, narrower rights, each checked on its own. */
  selectors: AclGrant[];
}

/** Commands every connection needs (ioredis: AUTH, CLIENT SETNAME, INFO ready check, PING). */
const CONNECT = ['ping', 'info', 'client|setname', 'echo'];
/** Transactions (MULTI/EXEC pipelines; the queued commands are checked on their own). */
const TX = ['multi', 'exec', 'discard'];
/** Lua scripts (ioredis defineCommand: EVALSHA with EVAL fallback after NOSCRIPT). */
const SCRIPTS = ['evalsha', 'eval'];
/**
 * Stream-group commands of every consumer on the streams it consumes (`src/adapters/redis/consumer.ts`,
 * `consumer-ack.ts`, `consumer-liveness.ts`, `consumer-watchdog.ts`): read, acknowledge, take over a dead consumer's
 * entries, create its group, see what waits for its group (XINFO GROUPS, XRANGE: reads only). Never
 * XADD, never a data write (SET/DEL/...) on a stream key: a stream is shared by several groups, and Redis
 * cannot restrict these commands by their group argument, so the stream key gets only what every consumer
 * needs (see ops/redis/README.md for what remains possible on another group).
 */
const GROUP_CONSUMER = ['xreadgroup', 'xack', 'xautoclaim', 'xclaim', 'xpending', 'xinfo|consumers', 'xgroup|create', 'xinfo|groups', 'xrange'];
/** Liveness lease commands (write, renew, drop, check a peer's), on the leases of the user's own group only. */
const LEASE = ['set', 'del', 'exists'];

/** The consumer groups of the plan stream whose users are not fixed by the code (their services' env). */
export interface PlanGroups {
  /** `GOVERNOR_CONSUMER_GROUP` (default `governor`). */
  governor: string;
  /** `P33_CONSUMER_GROUP` (default `p33`). */
  p33: string;
}

/** The services' default groups. */
export const DEFAULT_PLAN_GROUPS: PlanGroups = { governor: GROUPS.governor, p33: GROUPS.p33 };

/**
 * Consumer rights of ONE group on the streams it consumes: the group commands on the stream keys, and its
 * own liveness leases (`quantum:consumer:lease:<stream>:<group>:*`), which no other group's user can write.
 * @param consumed `[stream, group]` pairs
 */
function consumes(consumed: Array<[string, string]>): AclGrant[] {
  return [
    { rw: uniq(consumed.map(([st]) => st)), commands: GROUP_CONSUMER },
    { rw: consumed.map(([st, g]) => keys.consumerLease(st, g, ID)), commands: LEASE },
  ];
}

/**
 * Publishing the permit notification (`permitWrite-1.lua` and `governorIssue-3.lua` run PUBLISH; a script can only do what its user
 * may). Part of the issuers' root rules: PUBLISH touches no key, and the channel is the only one granted.
 */
const PUBLISH_PERMIT_WRITTEN = { channels: [CHANNELS.permitWritten], commands: ['publish'] };

/** Every dead-letter stream (`p3_dlq_entries` gauge of every service). */
const DLQS = Object.values(STREAMS).map(dlq);

/** What every service reads and writes for its heartbeat and the shared gauges (`src/host/heartbeat.ts`, `src/host/gauges.ts`). */
function serviceBase(service: string): { rw: string[]; read: string[]; commands: string[] } {
  return {
    rw: [keys.heartbeat(service, ID)],
    read: [...DLQS, keys.exchangeBackoffUntil()],
    // pttl: what is left of the shared exchange back-off is its key's PTTL (src/adapters/exchange/backoff.ts)
    commands: [...CONNECT, ...TX, 'hset', 'pexpire', 'del', 'xlen', 'get', 'pttl'],
  };
}

/**
 * Appending to streams another component owns or several share (the plan dead letters, the reconcile
 * events): XADD only, in a selector of its own, so the root's SET/DEL never reach them.
 */
function appends(streams: string[]): AclGrant {
  return { rw: streams, commands: ['xadd'] };
}

/** The rights to call Lua scripts declaring `declared` keys (EVALSHA/EVAL only; see the module comment). */
function scripts(declared: string[]): AclGrant {
  return { rw: [...new Set(declared)], commands: SCRIPTS };
}

const uniq = (a: string[]): string[] => [...new Set(a)];

function merge(...grants: Array<Partial<AclGrant>>): AclGrant {
  return {
    rw: uniq(grants.flatMap((g) => g.rw ?? [])),
    read: uniq(grants.flatMap((g) => g.read ?? [])),
    write: uniq(grants.flatMap((g) => g.write ?? [])),
    commands: uniq(grants.flatMap((g) => g.commands ?? [])),
    channels: uniq(grants.flatMap((g) => g.channels ?? [])),
  };
}

const HOLD_KEYS = [keys.hold(SYM), keys.holdReason(SYM), keys.holdSig(SYM)];
const LEDGER_KEYS = [keys.ledger(SYM), keys.legacyLedger004(SYM)];
const BACKOFF_KEYS = [keys.exchangeBackoffUntil(), keys.exchangeBackoffReason()];
/** The governor's trading state, global and per symbol (the kill switch). */
const TRADING_STATE_KEYS = [keys.tradingState(), keys.tradingState(SYM)];
/** Everything of the system (operator and console read all of it). */
const ALL_KEYS = 'quantum:*';

/** The governor (P3.2): plans → `quantum:permit:governor:<plan_id>`; rate buckets; circuit breaker. */
function governor(group: string): AclUserSpec {
  const b = serviceBase('governor');
  const own = [keys.permitGovernor(ID), keys.governorRateBucket(ID), keys.governorBreaker(SYM), keys.governorBreakerLastTrip(SYM), STREAMS.governorEvents];
  return {
    user: 'p3-governor',
    passwordEnv: 'P3_REDIS_PASSWORD_GOVERNOR',
    purpose: 'governor service (P3.2)',
    root: merge(b, {
      // the loss limit (services/governor/risk/loss-limit.ts) records its measurement and, on a trip, sets the
      // global trading state REDUCING (lossLimit-3.lua never loosens it); the repeated-execution throttle a
      // symbol's (fillThrottle-3.lua)
      rw: [...own, keys.governorReservations(), keys.governorReservationsVersion(), keys.governorRisk(), keys.tradingState(), keys.tradingState(SYM)],
      // exposure limits (services/governor/exposure.ts): every snapshot, the newest fills, the plans' dedupe stage;
      // the loss limit: the venue fills journal (services/governor/risk/realized.ts)
      read: [...TRADING_STATE_KEYS, keys.hold(SYM), keys.snapshot(SYM), STREAMS.applyResult, keys.lastFill(SYM), keys.applyDedupe(ID), STREAMS.exchangeFills],
      commands: ['hgetall', 'exists', 'xrevrange', 'xrange', 'expire', 'hmget', 'set', 'xadd', 'time', 'mget', 'hdel', 'incr'],
    }, PUBLISH_PERMIT_WRITTEN),
    selectors: [
      ...consumes([[STREAMS.applyPlan, group]]),
      appends([dlq(STREAMS.applyPlan)]),
      // exposureExpire-3.lua reads the plan's dedupe stage (read-only: the user's own rules allow no write to it)
      scripts([keys.permitGovernor(ID), keys.governorRateBucket(ID), keys.governorBreaker(SYM), keys.governorBreakerLastTrip(SYM), STREAMS.governorEvents, keys.governorReservations(), keys.governorReservationsVersion(), keys.applyDedupe(ID), keys.governorRisk(), keys.tradingState(), keys.tradingState(SYM)]),
    ],
  };
}

/** The venue journal's keys (position brain): fills stream, trade ids seen, cursors. */
const VENUE_JOURNAL_KEYS = [STREAMS.exchangeFills, keys.venueTrades(SYM), keys.venueCursor(SYM)];

/** The position brain (P3.3): exchange snapshots, and plans → `quantum:permit:p33:<plan_id>`. */
function brain(group: string): AclUserSpec {
  const b = serviceBase('position-state-brain');
  return {
    user: 'p3-brain',
    passwordEnv: 'P3_REDIS_PASSWORD_BRAIN',
    purpose: 'position-state-brain service (P3.3)',
    root: merge(b, {
      // user data stream: its state hash for p3 status/doctor; the apply layer's in-flight hash
      // (HEXISTS: a pushed fill of ours is recorded before the confirming REST poll)
      // venue journal: the fills stream, the trade ids seen and the cursor (venueFillRecord-4.lua reads our
      // order record's decision)
      rw: [keys.snapshot(SYM), STREAMS.positionSnapshot, keys.permitP33(ID), ...BACKOFF_KEYS, keys.p33UserStream(ID), ...VENUE_JOURNAL_KEYS],
      read: [keys.hold(SYM), keys.applyInflight(SYM), STREAMS.applyResult, keys.lastFill(SYM), ...LEDGER_KEYS, keys.applyOrder(ID)],
      // time: exchangeBackoff-2.lua keeps the back-off on the Redis server's clock
      // zadd/zscore/zcard/zrange/zremrangebyrank/hset/hsetnx/hdel: the venue journal's script and cursor
      commands: ['hgetall', 'exists', 'hlen', 'xrevrange', 'xrange', 'mget', 'hget', 'expire', 'xadd', 'set', 'hexists', 'time', 'zadd', 'zscore', 'zcard', 'zrange', 'zremrangebyrank', 'hset', 'hsetnx', 'hdel'],
    }, PUBLISH_PERMIT_WRITTEN),
    selectors: [...consumes([[STREAMS.applyPlan, group]]), appends([dlq(STREAMS.applyPlan)]), scripts([keys.snapshot(SYM), STREAMS.positionSnapshot, keys.permitP33(ID), ...BACKOFF_KEYS, ...VENUE_JOURNAL_KEYS, keys.applyOrder(ID)])],
  };
}

/** The reconcile engine (P3.4): ledgers, holds, reconcile state, events, RECONCILE_CLOSE plans. No permits, no orders. */
function engine(): AclUserSpec {
  const b = serviceBase('reconcile-engine');
  const own = [...LEDGER_KEYS, keys.reconcileState(SYM), ...HOLD_KEYS, STREAMS.reconcileEvents, STREAMS.reconcileClose, keys.closeCooldown(SYM, ID, ID)];
  return {
    user: 'p3-engine',
    passwordEnv: 'P3_REDIS_PASSWORD_ENGINE',
    purpose: 'reconcile-engine service (P3.4)',
    root: merge(b, {
      rw: own,
      // the apply layer's one-close marker, in-flight orders and newest fill: reconcileApply-11.lua checks
      // whether an episode's close was sent and whether the apply layer acted since the read
      // the venue journal (fills and cursors): the exchange's own record as evidence
      read: [keys.snapshot(SYM), STREAMS.positionSnapshot, keys.applyInflight(SYM), keys.lastFill(SYM), STREAMS.applyResult, ...TRADING_STATE_KEYS, keys.closeSent(SYM, ID), STREAMS.exchangeFills, keys.venueCursor(SYM)],
      commands: ['hgetall', 'hget', 'hmget', 'hdel', 'hlen', 'hkeys', 'exists', 'xread', 'xrevrange', 'pttl', 'set', 'expire', 'xadd'],
    }),
    selectors: [
      // creates the apply layer's close group before publishing (reconcile-engine/index.ts), never reads it
      { rw: [STREAMS.reconcileClose], commands: ['xgroup|create'] },
      // ledgerWrite-4.lua declares the result stream (written only by the apply layer's calls)
      // reconcileRead-10.lua reads a symbol's trading state too
      scripts([keys.snapshot(SYM), STREAMS.applyResult, keys.closeSent(SYM, ID), keys.applyInflight(SYM), keys.lastFill(SYM), keys.tradingState(SYM), ...own]),
    ],
  };
}

/** The streams the apply layer consumes, with its group on each. */
const APPLY_CONSUMES: Array<[string, string]> = [
  [STREAMS.applyPlan, GROUPS.applyPlan],
  [STREAMS.reconcileClose, GROUPS.applyClose],
  [STREAMS.applyFlatten, GROUPS.applyFlatten],
];
const APPLY_STREAMS = APPLY_CONSUMES.map(([st]) => st);

/** The apply layer: dedupe, in-flight, orders, results, ledger after a fill; consumes plans, closes, flattens; holds only read, plus the lease renewal. */
function apply(): AclUserSpec {
  const b = serviceBase('apply-layer');
  // shared with the engine (events) and the plan stream's other consumers (dead letters): XADD only
  const shared = [STREAMS.reconcileEvents, dlq(STREAMS.applyPlan)];
  const own = [
    keys.applyDedupe(ID),
    keys.applyInflight(SYM),
    keys.applyPending(),
    keys.applyOrder(ID),
    keys.closeSent(SYM, ID),
    keys.applyCloseLock(SYM),
    keys.applyRedisEpoch(),
    keys.planStreamDamage(),
    keys.lastFill(SYM),
    STREAMS.applyResult,
    ...LEDGER_KEYS,
    ...BACKOFF_KEYS,
    dlq(STREAMS.reconcileClose),
    dlq(STREAMS.applyFlatten),
  ];
  return {
    user: 'p3-apply',
    passwordEnv: 'P3_REDIS_PASSWORD_APPLY',
    purpose: 'apply-layer service',
    root: merge(b, {
      rw: own,
      // the breaker and the exposure reservations: read at send time (applyBegin-13.lua, the last-moment check)
      read: [keys.permitGovernor(ID), keys.permitP33(ID), ...HOLD_KEYS, ...TRADING_STATE_KEYS, keys.snapshot(SYM), keys.governorBreaker(SYM), keys.governorReservations()],
      // wait: P3_CLAIM_DURABILITY=replica-wait (a claim acknowledged by a replica before the send)
      commands: ['hgetall', 'hget', 'hmget', 'hdel', 'hlen', 'hkeys', 'hexists', 'exists', 'pttl', 'mget', 'set', 'expire', 'xadd', 'zadd', 'zrem', 'zrangebyscore', 'wait', 'time', 'ttl'],
      // the permit notifications that wake its waiting plans (permit-waker.ts): SUBSCRIBE to that channel only
    }, { channels: [CHANNELS.permitWritten], commands: ['subscribe'] }),
    selectors: [
      ...consumes(APPLY_CONSUMES),
      // the reaper of dead consumers (no lease, nothing pending, idle) of EVERY group of its streams
      // (consumerReap-2.lua: XGROUP DELCONSUMER), so no other consumer needs DELCONSUMER on a shared stream;
      // and the plan stream's damage check (XINFO STREAM / GROUPS)
      { rw: APPLY_STREAMS, commands: ['xgroup|delconsumer', 'xinfo|groups', 'xinfo|stream', 'xrange'] },
      { read: APPLY_STREAMS.map((st) => keys.consumerLease(st, ID, ID)), commands: ['exists'] },
      // removes planted ids from the plan stream (planStreamIds-1.lua) once every group read every entry
      { rw: [STREAMS.applyPlan], commands: ['exists', 'xrevrange', 'xdel', 'xsetid', 'xgroup|setid'] },
      scripts([...APPLY_STREAMS, ...APPLY_STREAMS.map((st) => keys.consumerLease(st, ID, ID))]),
      // the hold lease renewal it owns (holdRenew-3.lua): EXPIRE only
      { rw: HOLD_KEYS, commands: ['expire'] },
      // applyBegin-13.lua reads the hold, the trading state, (entries) the snapshot, the breaker and the reservations at send time
      appends(shared),
      scripts([...own, ...shared, ...HOLD_KEYS, ...TRADING_STATE_KEYS, keys.snapshot(SYM), keys.governorBreaker(SYM), keys.governorReservations()]),
    ],
  };
}

/** A strategy host: adds signed plans, reads results (and the plan dead letters, to see why one was refused). */
function strategy(): AclUserSpec {
  return {
    user: 'p3-strategy',
    passwordEnv: 'P3_REDIS_PASSWORD_STRATEGY',
    purpose: 'strategy hosts (src/plans/submit.ts, p3 plan submit)',
    root: {
      read: [STREAMS.applyResult, dlq(STREAMS.applyPlan)],
      commands: [...CONNECT, 'xrange', 'xrevrange', 'xread', 'xlen'],
    },
    selectors: [{ write: [STREAMS.applyPlan], commands: ['xadd'] }],
  };
}

/** What the operator and the console may change: holds, ledgers, trading state, breakers, their events. */
const OPERATOR_WRITES = [
  // deleted after a damaged plan stream was repaired and reviewed (docs/runbook.md)
  keys.planStreamDamage(),
  ...HOLD_KEYS,
  ...LEDGER_KEYS,
  keys.reconcileState(SYM),
  ...TRADING_STATE_KEYS,
  keys.governorBreaker(SYM),
  STREAMS.reconcileEvents,
  STREAMS.governorEvents,
  // the shared exchange back-off: `p3 exchange-backoff clear` (the way out of one a clock error or a lifted ban left)
  ...BACKOFF_KEYS,
  // a symbol's newest fill time: `DEL` is the way out of one a clock error set in the future (runbook)
  keys.lastFill(SYM),
];
/** Write commands of the operator's runbook (`redis-cli` and `p3 hold|ledger|trading-state`). */
const OPERATOR_COMMANDS = ['hset', 'hdel', 'set', 'setex', 'del', 'expire', 'xadd'];

/** A person with `redis-cli --user p3-operator` and the `p3` CLI: reads everything, changes what the runbook changes. */
function operator(): AclUserSpec {
  return {
    user: 'p3-operator',
    passwordEnv: 'P3_REDIS_PASSWORD_OPERATOR',
    purpose: 'operators: redis-cli --user p3-operator, p3 status/hold/ledger/trading-state/events/plan show/flatten/doctor',
    root: {
      read: [ALL_KEYS],
      // FLATTEN plans (`p3 flatten`) go to their own stream, signed with P3_KEY_OPERATOR
      write: uniq([...OPERATOR_WRITES, ...DLQS, STREAMS.applyFlatten]),
      // @read includes the seeds' KEYS; XTRIM empties a dead-letter stream after review
      commands: uniq([...CONNECT, ...TX, '@read', ...OPERATOR_COMMANDS, 'xtrim']),
    },
    selectors: [scripts(uniq([...OPERATOR_WRITES, STREAMS.applyResult]))],
  };
}

/** The operator console (`p3 console`): reads everything; its authenticated actions change holds, ledgers, trading state. */
function consoleUser(): AclUserSpec {
  return {
    user: 'p3-console',
    passwordEnv: 'P3_REDIS_PASSWORD_CONSOLE',
    purpose: 'operator console (p3 console)',
    root: {
      read: [ALL_KEYS],
      write: uniq([...OPERATOR_WRITES, STREAMS.applyFlatten]),
      commands: uniq([...CONNECT, ...TX, '@read', ...OPERATOR_COMMANDS]),
    },
    selectors: [scripts(uniq([...OPERATOR_WRITES, STREAMS.applyResult]))],
  };
}

/**
 * Every user `p3 redis-acl` writes, in file order.
 * @param groups the governor's and the brain's consumer groups on the plan stream (their leases' key patterns)
 */
export function aclUsers(groups: PlanGroups = DEFAULT_PLAN_GROUPS): AclUserSpec[] {
  return [governor(groups.governor), brain(groups.p33), engine(), apply(), strategy(), operator(), consoleUser()];
}

/** The user of each service (`REDIS_URL` of its env file). */
export const SERVICE_USERS: Record<string, string> = {
  governor: 'p3-governor',
  'position-state-brain': 'p3-brain',
  'reconcile-engine': 'p3-engine',
  'apply-layer': 'p3-apply',
};
