/**
 * An operator's actions on the reconcile state, shared by `p3 hold set|clear`, `p3 ledger set` and the
 * operator console (src/console), so both apply the same checks and record the same events:
 * - an operator hold (`operatorHold-5.lua`: hold + reason without hold_sig, event HOLD_SET/HOLD_CLEARED);
 * - a ledger write by an operator (`ledgerWrite-4.lua`, compare-and-set, event LEDGER_SET), refused when
 *   the amount disagrees with a fresh exchange snapshot unless forced.
 * Every event carries `by` (who) and the reason (why); a reason with control characters (terminal escape
 * codes, line breaks) is refused before anything is written (src/domain/operator-text.ts).
 */
import type { Redis } from 'ioredis';
import { keys } from '../../adapters/redis/keys.js';
import { fetchLedger, writeLedger } from '../../adapters/redis/ledger.js';
import { parseToleranceConfig } from '../../config/env.js';
import { fmt, type Decimal } from '../../domain/decimal.js';
import { checkOperatorText } from '../../domain/operator-text.js';
import { readSnapshot, type SnapshotRead } from '../../domain/position.js';
import { compareAmounts, toleranceFor } from '../../domain/tolerance.js';
import { operatorHold } from './store.js';
import { EVENT } from '../../domain/events.js';

/** How an operator's ledger amount compares with the exchange snapshot (see {@link ledgerAgainstSnapshot}). */
export type LedgerCheck = { kind: 'agrees' } | { kind: 'disagrees'; message: string } | { kind: 'unchecked'; message: string };

/**
 * Compares the amount an operator wants to write with the exchange snapshot under the shared tolerance.
 * A ledger that disagrees with a fresh snapshot makes the engine HOLD the symbol and, with RECONCILE_CLOSE
 * enabled, close the difference on the exchange within about a second: a typo (a forgotten `-`, a wrong
 * side) would sell a real position, so `p3 ledger set` refuses it without `--force` (the console without
 * a typed confirmation).
 * @param nowMs epoch ms (for the snapshot's age in the message)
 */
export function ledgerAgainstSnapshot(symbol: string, amount: Decimal, snap: SnapshotRead, nowMs: number): LedgerCheck {
  if (snap.kind !== 'ok') return { kind: 'unchecked', message: `no readable exchange snapshot of ${symbol} (${snap.kind}): the amount could not be checked against the exchange` };
  const tol = toleranceFor(parseToleranceConfig(process.env), symbol, snap.snapshot.stepSize);
  const cmp = compareAmounts(snap.snapshot.amount, amount, tol);
  const ageSec = Math.round((nowMs - snap.snapshot.tsMs) / 100) / 10;
  if (cmp.match) return { kind: 'agrees' };
  return {
    kind: 'disagrees',
    message:
      `the exchange snapshot of ${symbol} says ${fmt(snap.snapshot.amount)} (${ageSec}s old) and ${fmt(amount)} differs by ${fmt(cmp.diff)} (tolerance ${fmt(tol)}). ` +
      `The reconcile engine would HOLD ${symbol} and, with RECONCILE_CLOSE enabled, close the difference on the exchange (reduce-only) within about a second. ` +
      `Check the exchange itself; repeat with --force if this amount is what the system holds.`,
  };
}

/** Thrown by {@link setLedgerByOperator} when the amount disagrees with the snapshot and `force` is not set. */
export class LedgerRefusedError extends Error {
  constructor(readonly check: Extract<LedgerCheck, { kind: 'disagrees' }>) {
    super(`refused: ${check.message}`);
    this.name = 'LedgerRefusedError';
  }
}

/** What {@link setLedgerByOperator} writes. */
export interface OperatorLedgerSet {
  symbol: string;
  /** New signed base-asset amount. */
  amount: Decimal;
  /** Why (audit trail, in the LEDGER_SET event). */
  reason: string;
  /** Who (e.g. `cli:alice`, `console:alice`). */
  by: string;
  /** Write even when the amount disagrees with the snapshot (the event records `forced=1`). */
  force: boolean;
  /** Extra event fields (e.g. `{via: 'console'}`). */
  extra?: Record<string, string>;
}

/** What {@link setLedgerByOperator} did. */
export interface LedgerSetOutcome {
  /** Previous amount (decimal string), or `missing` / `invalid`. */
  old: string;
  amount: string;
  version: number;
  /** The snapshot check (a forced or unchecked write carries its message). */
  check: LedgerCheck;
}

/**
 * Sets a symbol's ledger as an operator: source `operator`, version+1, event LEDGER_SET with by/reason,
 * compare-and-set against concurrent writers (5 attempts).
 * @throws OperatorTextError for a reason with control characters (nothing written);
 *         LedgerRefusedError when the amount disagrees with the snapshot and `force` is false (nothing written);
 *         Error when the ledger kept changing; Redis errors
 */
export async function setLedgerByOperator(redis: Redis, req: OperatorLedgerSet, nowMs = Date.now()): Promise<LedgerSetOutcome> {
  checkOperatorText(req.reason);
  checkOperatorText(req.by, 'by');
  const check = ledgerAgainstSnapshot(req.symbol, req.amount, readSnapshot(await redis.hgetall(keys.snapshot(req.symbol))), nowMs);
  if (check.kind === 'disagrees' && !req.force) throw new LedgerRefusedError(check);
  for (let attempt = 0; attempt < 5; attempt++) {
    const cur = await fetchLedger(redis, req.symbol);
    const old = cur.read.kind === 'ok' ? fmt(cur.read.ledger.amount) : cur.read.kind;
    const version = await writeLedger(redis, {
      symbol: req.symbol,
      expectedFingerprint: cur.fingerprint,
      amount: req.amount,
      source: 'operator',
      event: {
        event: EVENT.LEDGER_SET,
        symbol: req.symbol,
        reason: req.reason,
        old_ledger_amt: old,
        new_ledger_amt: fmt(req.amount),
        source: 'operator',
        by: req.by,
        ...(check.kind === 'disagrees' ? { forced: '1' } : {}),
        ...(req.extra ?? {}),
        ts_ms: String(Date.now()),
      },
    });
    if (version !== null) return { old, amount: fmt(req.amount), version, check };
  }
  throw new Error(`ledger of ${req.symbol} kept changing while writing; try again`);
}

/**
 * Sets an operator hold on `symbol` for `ttlSec` seconds (event HOLD_SET with owner operator, by, reason).
 * The engine never renews or clears it; it ends with its TTL or {@link clearHold}.
 * @throws OperatorTextError for a reason with control characters (nothing written)
 */
export async function setOperatorHold(redis: Redis, h: { symbol: string; ttlSec: number; reason: string; by: string; extra?: Record<string, string> }): Promise<void> {
  checkOperatorText(h.reason);
  checkOperatorText(h.by, 'by');
  await operatorHold(redis, h.symbol, 'set', h.ttlSec, h.reason, { symbol: h.symbol, ts_ms: String(Date.now()), by: h.by, ...(h.extra ?? {}) });
}

/** What {@link clearHold} found. */
export interface HoldClearOutcome {
  /** A hold existed and was deleted. */
  existed: boolean;
  /** The engine's last verdict when it is HOLD or MANUAL_REQUIRED for a drift (it will hold again unless fixed), else null. */
  engineHold: { status: string; reason: string } | null;
}

/**
 * Deletes the hold of `symbol`, whoever set it (event HOLD_CLEARED with by and, when given, reason).
 * If the engine's drift is still there it sets its own hold again on its next pass.
 * @throws OperatorTextError for a reason with control characters (nothing deleted)
 */
export async function clearHold(redis: Redis, h: { symbol: string; by: string; reason?: string; extra?: Record<string, string> }): Promise<HoldClearOutcome> {
  if (h.reason !== undefined) checkOperatorText(h.reason);
  checkOperatorText(h.by, 'by');
  const existed = await operatorHold(redis, h.symbol, 'clear', 1, '', {
    symbol: h.symbol,
    ts_ms: String(Date.now()),
    by: h.by,
    ...(h.reason ? { reason: h.reason } : {}),
    ...(h.extra ?? {}),
  });
  const state = await redis.hgetall(keys.reconcileState(h.symbol));
  const held = existed && (state.status === 'HOLD' || state.status === 'MANUAL_REQUIRED') && state.reason && state.reason !== 'operator_hold';
  return { existed, engineHold: held ? { status: state.status!, reason: state.reason! } : null };
}
