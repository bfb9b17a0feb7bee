/**
 * Who may do what in Redis: the expected rights of every generated ACL user, written out by hand as the
 * rules say them (README, ops/redis/README.md), NOT derived from src/acl/users.ts. The permission matrix
 * test (permission-matrix.test.ts) checks every user × command family × key class against a real
 * redis-server loaded with `p3 redis-acl`'s file: a right the server gives and this table does not (or the
 * other way round) fails the test.
 *
 * Reading the table: `RIGHTS[user][keyClass]` lists the command families allowed; every family not listed
 * is refused. A family's commands are in `FAMILIES`.
 *
 * What Redis ACLs cannot tell apart, and the table therefore lists together:
 * - XADD's arguments: whoever may `XADD` a stream may also trim it (`MAXLEN 0`, `MINID`) and choose the id
 *   (`XADD_ANY`). The plan stream's damage check (src/adapters/redis/plan-stream-health.ts) detects it.
 * - The group argument of XREADGROUP/XACK/XCLAIM/XAUTOCLAIM/XPENDING/XGROUP: a right on a stream key is a
 *   right on every group of it. What must be per group lives in per-group keys (the liveness leases
 *   `quantum:consumer:lease:<stream>:<group>:<consumer>`), and only the apply layer may delete consumers.
 */
import { CHANNELS, GROUPS, STREAMS, dlq, keys } from '../../src/adapters/redis/keys.js';

/** The kind of a key class (decides the command a family runs). */
type Kind = 'stream' | 'hash' | 'string' | 'lease';

/** Key classes: one concrete key each. */
export const KEY_CLASSES = {
  /** Shared: the strategy adds, the governor's, the brain's and the apply layer's groups consume. */
  planStream: { key: STREAMS.applyPlan, kind: 'stream' },
  /** Shared: every plan consumer dead-letters here. */
  planDlq: { key: dlq(STREAMS.applyPlan), kind: 'stream' },
  /** The apply layer's. */
  resultStream: { key: STREAMS.applyResult, kind: 'stream' },
  /** The engine's (the apply layer's group consumes it). */
  closeStream: { key: STREAMS.reconcileClose, kind: 'stream' },
  /** The operator's and the console's (the apply layer's group consumes it). */
  flattenStream: { key: STREAMS.applyFlatten, kind: 'stream' },
  /** The engine's; the apply layer appends to it. */
  reconcileEvents: { key: STREAMS.reconcileEvents, kind: 'stream' },
  /** The governor's. */
  governorEvents: { key: STREAMS.governorEvents, kind: 'stream' },
  permitGovernor: { key: keys.permitGovernor('p1'), kind: 'hash' },
  permitP33: { key: keys.permitP33('p1'), kind: 'hash' },
  /** The engine's (the apply layer renews its TTL). */
  hold: { key: keys.hold('BTCUSDT'), kind: 'string' },
  /** The engine's and the apply layer's (after a fill). */
  ledger: { key: keys.ledger('BTCUSDT'), kind: 'hash' },
  /** The brain's. */
  snapshot: { key: keys.snapshot('BTCUSDT'), kind: 'hash' },
  /** The apply layer's. */
  dedupe: { key: keys.applyDedupe('p1'), kind: 'string' },
  /** The operator's (the governor reads it). */
  tradingState: { key: keys.tradingState(), kind: 'hash' },
  leaseGovernor: { key: keys.consumerLease(STREAMS.applyPlan, GROUPS.governor, 'gov-1'), kind: 'lease' },
  leaseP33: { key: keys.consumerLease(STREAMS.applyPlan, GROUPS.p33, 'brain-1'), kind: 'lease' },
  leaseApplyPlan: { key: keys.consumerLease(STREAMS.applyPlan, GROUPS.applyPlan, 'apply-1'), kind: 'lease' },
  leaseApplyClose: { key: keys.consumerLease(STREAMS.reconcileClose, GROUPS.applyClose, 'apply-1'), kind: 'lease' },
  /** The brain's venue journal (the engine reads it). */
  venueFills: { key: STREAMS.exchangeFills, kind: 'stream' },
  /** The brain's venue journal cursor (the engine reads its gap). */
  venueCursor: { key: keys.venueCursor('BTCUSDT'), kind: 'hash' },
  /** Not the system's. */
  outside: { key: 'other-app:key', kind: 'string' },
} as const satisfies Record<string, { key: string; kind: Kind }>;

export type KeyClass = keyof typeof KEY_CLASSES;

/** A command family: its command(s) for a key of a kind (several: allowed when ANY is), or null (not applicable). */
export type Family = (key: string, kind: Kind) => string[][] | null;

const SHA = 'a'.repeat(40);
const onStream = (f: (k: string) => string[][]) => (key: string, kind: Kind) => (kind === 'stream' ? f(key) : null);
const MAX_ID = '18446744073709551615-18446744073709551615';

/** The command families (ACL DRYRUN arguments; group and consumer names are arbitrary: ACLs never see them). */
export const FAMILIES = {
  read: (k: string, kind: Kind) =>
    ({ stream: [['XRANGE', k, '-', '+'], ['XREVRANGE', k, '+', '-'], ['XLEN', k], ['XREAD', 'STREAMS', k, '0']], hash: [['HGETALL', k], ['HGET', k, 'f']], string: [['GET', k]], lease: [['EXISTS', k], ['GET', k]] })[kind],
  write: (k: string, kind: Kind) => (kind === 'hash' ? [['HSET', k, 'f', 'v']] : kind === 'string' ? [['SET', k, 'v']] : null),
  set: (k: string) => [['SET', k, 'v']],
  del: (k: string) => [['DEL', k]],
  expire: (k: string, kind: Kind) => (kind === 'stream' ? null : [['EXPIRE', k, '60']]),
  evalsha: (k: string) => [['EVALSHA', SHA, '1', k]],
  xadd: onStream((k) => [['XADD', k, '*', 'f', 'v']]),
  'xadd-maxlen': onStream((k) => [['XADD', k, 'MAXLEN', '0', '*', 'f', 'v']]),
  'xadd-minid': onStream((k) => [['XADD', k, 'MINID', '99999999999999', '*', 'f', 'v']]),
  'xadd-id': onStream((k) => [['XADD', k, MAX_ID, 'f', 'v']]),
  xtrim: onStream((k) => [['XTRIM', k, 'MAXLEN', '0']]),
  xdel: onStream((k) => [['XDEL', k, '1-1']]),
  xsetid: onStream((k) => [['XSETID', k, '1-1']]),
  xreadgroup: onStream((k) => [['XREADGROUP', 'GROUP', 'g', 'c', 'STREAMS', k, '>']]),
  xack: onStream((k) => [['XACK', k, 'g', '1-1']]),
  xclaim: onStream((k) => [['XCLAIM', k, 'g', 'c', '0', '1-1']]),
  xautoclaim: onStream((k) => [['XAUTOCLAIM', k, 'g', 'c', '0', '0-0']]),
  xpending: onStream((k) => [['XPENDING', k, 'g']]),
  'xgroup-create': onStream((k) => [['XGROUP', 'CREATE', k, 'g', '$', 'MKSTREAM']]),
  'xgroup-createconsumer': onStream((k) => [['XGROUP', 'CREATECONSUMER', k, 'g', 'c']]),
  'xgroup-delconsumer': onStream((k) => [['XGROUP', 'DELCONSUMER', k, 'g', 'c']]),
  'xgroup-setid': onStream((k) => [['XGROUP', 'SETID', k, 'g', '0']]),
  'xgroup-destroy': onStream((k) => [['XGROUP', 'DESTROY', k, 'g']]),
} satisfies Record<string, Family>;

export type FamilyName = keyof typeof FAMILIES;

/** Every XADD form: ACLs cannot refuse XADD's trimming or explicit-id arguments to whoever may XADD. */
const XADD_ANY: FamilyName[] = ['xadd', 'xadd-maxlen', 'xadd-minid', 'xadd-id'];
/**
 * A consumer's group commands (on every group of the stream: ACLs cannot see the group argument), and XRANGE:
 * its liveness watchdog reads the oldest entry its group has not read yet (src/adapters/redis/consumer-watchdog.ts).
 */
const GROUP: FamilyName[] = ['xreadgroup', 'xack', 'xclaim', 'xautoclaim', 'xpending', 'xgroup-create', 'read'];
/** Full ownership of a hash or string key. */
const OWN: FamilyName[] = ['read', 'write', 'set', 'del', 'expire'];
/** The operator's and the console's read of everything (their `@read` includes XPENDING). */
const READ_STREAM: FamilyName[] = ['read', 'xpending'];

/** The users' rights (see the module comment). */
export const RIGHTS: Record<string, Partial<Record<KeyClass, FamilyName[]>>> = {
  'p3-governor': {
    planStream: GROUP,
    planDlq: ['read', ...XADD_ANY],
    resultStream: ['read'],
    governorEvents: ['read', ...XADD_ANY, 'set', 'del', 'evalsha'],
    permitGovernor: [...OWN, 'evalsha'],
    hold: ['read'],
    snapshot: ['read'],
    // the loss limit sets the global trading state REDUCING (lossLimit-3.lua; docs/risk-controls.md#loss-limit)
    tradingState: [...OWN, 'evalsha'],
    leaseGovernor: ['read', 'set', 'del'],
    // exposureExpire-3.lua declares the plan's dedupe key: it reads its stage (the root allows no write to it)
    dedupe: ['read', 'evalsha'],
    // the loss limit reads realized profit from the venue journal
    venueFills: ['read'],
  },
  'p3-brain': {
    planStream: GROUP,
    planDlq: ['read', ...XADD_ANY],
    resultStream: ['read'],
    permitP33: [...OWN, 'evalsha'],
    hold: ['read'],
    ledger: ['read'],
    snapshot: [...OWN, 'evalsha'],
    leaseP33: ['read', 'set', 'del'],
    // the venue journal: venueFillRecord-4.lua appends, the cursor's gap marks
    venueFills: ['read', ...XADD_ANY, 'set', 'del', 'evalsha'],
    venueCursor: [...OWN, 'evalsha'],
  },
  'p3-engine': {
    planDlq: ['read'],
    resultStream: ['read', 'evalsha'],
    closeStream: ['read', ...XADD_ANY, 'set', 'del', 'evalsha', 'xgroup-create'],
    reconcileEvents: ['read', ...XADD_ANY, 'set', 'del', 'evalsha'],
    hold: [...OWN, 'evalsha'],
    ledger: [...OWN, 'evalsha'],
    snapshot: ['read', 'evalsha'],
    tradingState: ['read'],
    // the exchange's own record as evidence
    venueFills: ['read'],
    venueCursor: ['read'],
  },
  'p3-apply': {
    // the only user that deletes consumers (dead ones, of every group: consumerReap-2.lua); reads the
    // plan stream for its damage check
    // and removes planted ids from it (planStreamIds-1.lua: XDEL, XSETID, XGROUP SETID)
    planStream: ['read', ...GROUP, 'xgroup-delconsumer', 'evalsha', 'xdel', 'xsetid', 'xgroup-setid'],
    planDlq: ['read', ...XADD_ANY, 'evalsha'],
    resultStream: ['read', ...XADD_ANY, 'set', 'del', 'evalsha'],
    closeStream: ['read', ...GROUP, 'xgroup-delconsumer', 'evalsha'],
    flattenStream: ['read', ...GROUP, 'xgroup-delconsumer', 'evalsha'],
    reconcileEvents: [...XADD_ANY, 'evalsha'],
    permitGovernor: ['read'],
    permitP33: ['read'],
    hold: ['read', 'expire', 'evalsha'],
    ledger: [...OWN, 'evalsha'],
    snapshot: ['read', 'evalsha'],
    dedupe: [...OWN, 'evalsha'],
    tradingState: ['read', 'evalsha'],
    leaseApplyPlan: ['read', 'set', 'del', 'evalsha'],
    leaseApplyClose: ['read', 'set', 'del', 'evalsha'],
    // the reaper checks every group's leases before deleting a consumer
    leaseGovernor: ['read', 'evalsha'],
    leaseP33: ['read', 'evalsha'],
  },
  'p3-strategy': {
    planStream: XADD_ANY,
    planDlq: ['read'],
    resultStream: ['read'],
  },
  'p3-operator': {
    planStream: READ_STREAM,
    planDlq: [...READ_STREAM, ...XADD_ANY, 'set', 'del', 'xtrim'],
    resultStream: [...READ_STREAM, 'evalsha'],
    closeStream: READ_STREAM,
    flattenStream: [...READ_STREAM, ...XADD_ANY, 'set', 'del', 'xtrim'],
    reconcileEvents: [...READ_STREAM, ...XADD_ANY, 'set', 'del', 'xtrim', 'evalsha'],
    governorEvents: [...READ_STREAM, ...XADD_ANY, 'set', 'del', 'xtrim', 'evalsha'],
    permitGovernor: ['read'],
    permitP33: ['read'],
    hold: [...OWN, 'evalsha'],
    ledger: [...OWN, 'evalsha'],
    snapshot: ['read'],
    dedupe: ['read'],
    tradingState: [...OWN, 'evalsha'],
    leaseGovernor: ['read'],
    leaseP33: ['read'],
    leaseApplyPlan: ['read'],
    leaseApplyClose: ['read'],
    venueFills: READ_STREAM,
    venueCursor: ['read'],
  },
  'p3-console': {
    planStream: READ_STREAM,
    planDlq: READ_STREAM,
    resultStream: [...READ_STREAM, 'evalsha'],
    closeStream: READ_STREAM,
    flattenStream: [...READ_STREAM, ...XADD_ANY, 'set', 'del'],
    reconcileEvents: [...READ_STREAM, ...XADD_ANY, 'set', 'del', 'evalsha'],
    governorEvents: [...READ_STREAM, ...XADD_ANY, 'set', 'del', 'evalsha'],
    permitGovernor: ['read'],
    permitP33: ['read'],
    hold: [...OWN, 'evalsha'],
    ledger: [...OWN, 'evalsha'],
    snapshot: ['read'],
    dedupe: ['read'],
    tradingState: [...OWN, 'evalsha'],
    leaseGovernor: ['read'],
    leaseP33: ['read'],
    leaseApplyPlan: ['read'],
    leaseApplyClose: ['read'],
    venueFills: READ_STREAM,
    venueCursor: ['read'],
  },
};

/** Pub/sub: who may PUBLISH / SUBSCRIBE which channel (everything else refused). */
export const CHANNEL_RIGHTS: Record<string, { publish: string[]; subscribe: string[] }> = {
  'p3-governor': { publish: [CHANNELS.permitWritten], subscribe: [] },
  'p3-brain': { publish: [CHANNELS.permitWritten], subscribe: [] },
  'p3-engine': { publish: [], subscribe: [] },
  'p3-apply': { publish: [], subscribe: [CHANNELS.permitWritten] },
  'p3-strategy': { publish: [], subscribe: [] },
  'p3-operator': { publish: [], subscribe: [] },
  'p3-console': { publish: [], subscribe: [] },
};

/** The channels of the pub/sub matrix. */
export const CHANNEL_CLASSES = [CHANNELS.permitWritten, 'quantum:notify:other'];
