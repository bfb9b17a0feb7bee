/**
 * Ledger adapter: reads a symbol's ledger (canonical and legacy layouts) and writes it atomically with
 * `ledgerWrite-4.lua` (compare-and-set on the fingerprint, legacy migration, event and result in one step).
 */
import type { Redis } from 'ioredis';
import { fmt, type Decimal } from '../../domain/decimal.js';
import { ledgerFingerprint, readLedger, sideOf, type LedgerRead, type RawHash } from '../../domain/position.js';
import { EVENTS_MAXLEN, keys } from './keys.js';
import { ledgerWrite } from './scripts/index.js';

/** A ledger as read, with what is needed to write it back safely. */
export interface LedgerSnapshotRead {
  read: LedgerRead;
  /** Compare-and-set token for {@link writeLedger}. */
  fingerprint: string;
  raw: RawHash;
  rawLegacy004: RawHash;
}

/** Reads the ledger of `symbol` (one MULTI round trip: canonical hash and seed 004's legacy hash). */
export async function fetchLedger(redis: Redis, symbol: string): Promise<LedgerSnapshotRead> {
  const res = await redis.multi().hgetall(keys.ledger(symbol)).hgetall(keys.legacyLedger004(symbol)).exec();
  if (!res) throw new Error('ledger read aborted');
  const [e1, raw] = res[0] as [Error | null, RawHash];
  const [e2, rawLegacy004] = res[1] as [Error | null, RawHash];
  if (e1) throw e1;
  if (e2) throw e2;
  return { read: readLedger(raw, rawLegacy004), fingerprint: ledgerFingerprint(raw, rawLegacy004), raw, rawLegacy004 };
}

/** What to write with {@link writeLedger}. */
export interface LedgerWrite {
  symbol: string;
  /** Fingerprint from the read this write is based on. */
  expectedFingerprint: string;
  /** New signed base-asset amount (exact). */
  amount: Decimal;
  /** `p34_adopt`: a shortfall adopted under `P34_HEAL_POLICY=adopt` (docs/architecture.md#heal-target). */
  source: 'apply' | 'p34_auto' | 'p34_adopt' | 'p34_manual' | 'init' | 'operator';
  /** Event fields for `quantum:stream:reconcile.events` (must include `event`), or none. */
  event?: Record<string, string>;
  /** Result fields for `quantum:stream:apply.result`, or none. */
  result?: Record<string, string>;
  /** Epoch milliseconds of the write (default now). */
  nowMs?: number;
}

/**
 * Writes the ledger if nobody changed it since it was read.
 * @returns the new version (>= 1), or `null` on a fingerprint conflict (nothing written; re-read and retry)
 */
export async function writeLedger(redis: Redis, w: LedgerWrite): Promise<number | null> {
  const nowMs = w.nowMs ?? Date.now();
  const r = await ledgerWrite(redis, {
    symbol: w.symbol,
    expectedFingerprint: w.expectedFingerprint,
    amount: fmt(w.amount),
    side: sideOf(w.amount),
    tsEpoch: (nowMs / 1000).toFixed(3),
    source: w.source,
    eventJson: w.event ? JSON.stringify(w.event) : '',
    resultJson: w.result ? JSON.stringify(w.result) : '',
    eventsMaxlen: EVENTS_MAXLEN,
    nowMs,
  });
  return r.kind === 'written' ? r.version : null;
}
