/**
 * Typed wrappers of the apply layer's scripts (dedupe compare-and-swap, send step, record step, hold lease,
 * in-flight keep, locks, dataset epoch). Each takes named values, builds the script's KEYS from the key registry
 * (keys.ts) in its header's order and returns the decoded reply (names of ./codes.ts, never a raw code).
 */
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../keys.js';
import { callScript } from './loader.js';
import { ApplyBeginCode, ApplyCasCode, ApplyRecordCode, HoldRenewCode, InflightKeepCode, LockReleaseCode, LockRenewCode, decodeCode } from './codes.js';

/** applyCas-1.lua: swaps the dedupe value of `planId` from `expected` to `next` (TTL kept). */
export async function applyCas(redis: Redis, planId: string, expected: string, next: string): Promise<keyof typeof ApplyCasCode> {
  return decodeCode(ApplyCasCode, await callScript(redis, 'applyCas', [keys.applyDedupe(planId)], [expected, next]), 'not_expected');
}

/** Arguments of {@link applyBegin} (see applyBegin-13.lua's header for each rule). */
export interface ApplyBeginArgs {
  planId: string;
  symbol: string;
  /** client order id */
  cid: string;
  /** expected dedupe value (claimed|<entry>|<token>) */
  claimedValue: string;
  /** new dedupe value (sending|<entry>|<token>) */
  sendingValue: string;
  /** epoch ms, now */
  tsMs: string | number;
  inflightTtlSec: number;
  /** order info: JSON object of string fields for the order hash */
  orderJson: string;
  orderTtlSec: number;
  mode: 'execute' | 'close' | 'flatten';
  /** drift signature of a close plan (undefined otherwise) */
  driftSig: string | undefined;
  closeMarkerTtlSec: number;
  /** entries: the position sign required at send time; null = no check */
  expectSign: -1 | 0 | 1 | null;
  /** when the position the order was sized from was requested, epoch ms; null = unknown */
  snapshotTsMs: number | null;
  /** the governor reserved exposure for this entry: the reservation must still exist */
  reserved: boolean;
}

/** Decoded reply of applyBegin-13.lua: `sending` = the caller may send; anything else: nothing written, must NOT send. */
export type ApplyBeginResult = keyof typeof ApplyBeginCode;

/** applyBegin-13.lua: moves a plan to `sending` and records its order in flight, or refuses (see its header). */
export async function applyBegin(redis: Redis, a: ApplyBeginArgs): Promise<ApplyBeginResult> {
  const s = a.symbol;
  const reply = await callScript(
    redis,
    'applyBegin',
    [
      keys.applyDedupe(a.planId),
      keys.applyInflight(s),
      keys.applyPending(),
      keys.applyOrder(a.cid),
      keys.hold(s),
      keys.holdSig(s),
      keys.closeSent(s, a.driftSig ?? '-'),
      keys.tradingState(),
      keys.tradingState(s),
      keys.snapshot(s),
      keys.lastFill(s),
      keys.governorBreaker(s),
      keys.governorReservations(),
    ],
    [
      a.claimedValue,
      a.sendingValue,
      a.cid,
      a.tsMs,
      a.inflightTtlSec,
      a.orderJson,
      a.orderTtlSec,
      a.mode,
      a.driftSig ?? '',
      a.closeMarkerTtlSec,
      a.expectSign === null ? '' : String(a.expectSign),
      a.snapshotTsMs === null ? '' : String(a.snapshotTsMs),
      a.reserved ? '1' : '',
      a.planId,
    ],
  );
  return decodeCode(ApplyBeginCode, reply, 'not_owner');
}

/** The ledger part of {@link applyRecord} (an EXECUTE fill): compare-and-set on `fingerprint`. */
export interface ApplyRecordLedger {
  /** expected ledger fingerprint (ledgerFingerprint of src/domain/position.ts) */
  fingerprint: string;
  /** new ledger_amt, signed decimal string */
  amount: string;
  side: 'LONG' | 'SHORT' | 'FLAT';
  /** epoch seconds, decimal string */
  tsEpoch: string;
}

/** Arguments of {@link applyRecord}. */
export interface ApplyRecordArgs {
  planId: string;
  symbol: string;
  /** client order id ('' = no order was sent) */
  cid: string;
  /** result: JSON object of string fields */
  resultJson: string;
  /** dedupe value to set (done|<entry>|<status>) */
  doneValue: string;
  /** the ledger write, or null for the result alone */
  ledger: ApplyRecordLedger | null;
  eventsMaxlen: number;
  tsMs: number;
  /** expected current dedupe value ('' = any claimed|/sending| value) */
  expected: string;
}

/** Decoded reply of applyRecord-8.lua. */
export type ApplyRecordResult = { kind: 'recorded'; ledgerVersion: number | null } | { kind: keyof typeof ApplyRecordCode };

/** applyRecord-8.lua: records a plan's outcome exactly once (result, in-flight end, dedupe `done`, ledger). */
export async function applyRecord(redis: Redis, a: ApplyRecordArgs): Promise<ApplyRecordResult> {
  const s = a.symbol;
  const l = a.ledger;
  const n = Number(
    await callScript(
      redis,
      'applyRecord',
      [keys.applyDedupe(a.planId), keys.applyInflight(s), keys.applyPending(), STREAMS.applyResult, keys.ledger(s), keys.legacyLedger004(s), STREAMS.reconcileEvents, keys.lastFill(s)],
      [a.cid, a.resultJson, a.doneValue, l ? '1' : '0', l?.fingerprint ?? '', l?.amount ?? '', l?.side ?? '', l?.tsEpoch ?? '', a.eventsMaxlen, s, a.tsMs, a.expected],
    ),
  );
  if (n >= 1) return { kind: 'recorded', ledgerVersion: l ? n : null };
  return { kind: decodeCode(ApplyRecordCode, n, 'ledger_conflict') };
}

/** holdRenew-3.lua: renews the hold of `symbol` to `ttlSec` only while it stands with `hold_sig == driftSig`. */
export async function holdRenew(redis: Redis, symbol: string, driftSig: string, ttlSec: number): Promise<keyof typeof HoldRenewCode> {
  return decodeCode(HoldRenewCode, await callScript(redis, 'holdRenew', [keys.hold(symbol), keys.holdReason(symbol), keys.holdSig(symbol)], [driftSig, ttlSec]), 'sig_mismatch');
}

/** inflightKeep-2.lua: keeps an order in the symbol's in-flight hash while its plan is `sending` under `dedupeValue`. */
export async function inflightKeep(redis: Redis, a: { planId: string; symbol: string; dedupeValue: string; cid: string; tsMs: string | number; ttlSec: number }): Promise<keyof typeof InflightKeepCode> {
  return decodeCode(InflightKeepCode, await callScript(redis, 'inflightKeep', [keys.applyDedupe(a.planId), keys.applyInflight(a.symbol)], [a.dedupeValue, a.cid, a.tsMs, a.ttlSec]), 'not_sending');
}

/** lockRenew-1.lua: extends the lease of the lock `key` to `ttlMs` if `token` still owns it. */
export async function lockRenew(redis: Redis, key: string, token: string, ttlMs: number): Promise<keyof typeof LockRenewCode> {
  return decodeCode(LockRenewCode, await callScript(redis, 'lockRenew', [key], [token, ttlMs]), 'not_owner');
}

/** lockRelease-1.lua: deletes the lock (or marker) `key` if `token` still owns it. */
export async function lockRelease(redis: Redis, key: string, token: string): Promise<keyof typeof LockReleaseCode> {
  return decodeCode(LockReleaseCode, await callScript(redis, 'lockRelease', [key], [token]), 'not_owner');
}

/**
 * applyEpoch-1.lua: when the dataset `identity` (<run_id>:<master_replid>) was first seen by an apply layer.
 * @returns epoch ms (`nowMs` when it is new)
 */
export async function applyEpoch(redis: Redis, identity: string, nowMs: number): Promise<number> {
  return Number(await callScript(redis, 'applyEpoch', [keys.applyRedisEpoch()], [identity, nowMs]));
}
