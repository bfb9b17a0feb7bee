/**
 * Permits (docs/architecture.md#redis-schema, docs/architecture.md#plans; seeds 001, 002, 004): the quantity a plan resolves to, the position brain's
 * (P3.3) decision, and the permit record both the governor and the brain write. Pure: no I/O.
 *
 * Invariants:
 * - A permit is never ALLOW on missing, stale, invalid or contradictory data (fail closed).
 * - An exit plan's quantity is resolved from the FRESH exchange snapshot: `|position| * fraction(action)`
 *   rounded DOWN to the lot step, side opposite the position. No lot step known → DENY `lot_step_unknown`.
 *   A resolved quantity of 0 is the clean skip `nothing_to_close`, never an order.
 * - A reduce-only plan never resolves to more than the position (`reduce_only_exceeds_position`) nor to
 *   the side of the position (`side_not_reducing`): a close can never open a position.
 * - Both permits record the quantity and side they approved, as decimal strings, so the apply layer can
 *   refuse when the two disagree.
 * - The brain and the reconcile engine use the same tolerance (`toleranceFor`), so a symbol is never
 *   "in drift" for one and "matching" for the other (docs/architecture.md#quantities).
 * - Entries (OPEN, INCREASE) are sized from `qty` or `notional_usd / mark`, rounded DOWN to the lot
 *   step, never up: below the exchange's minimum quantity or notional is DENY `below_min_qty` /
 *   `below_min_notional`. OPEN needs a flat position (`position_not_flat`), INCREASE a position on the
 *   plan's side (`side_conflict`), so no entry ever flips a position. Unknown mark price, minimum quantity or
 *   minimum notional → DENY (fail closed). REDUCE is capped at the fresh position.
 */
import { Decimal, fmt, roundDownToStep, signOf } from './decimal.js';
import { ACTION_FRACTION, isEntryAction, isReduceOnlyFlag, type Plan } from './plan.js';
import type { LedgerRead, Snapshot, SnapshotRead } from './position.js';
import { SNAPSHOT_FUTURE_SKEW_MS } from './position.js';
import { compareAmounts } from './tolerance.js';

/** Permit decision. */
export type PermitDecision = 'ALLOW' | 'DENY';

/** Who wrote a permit: the governor (P3.2) or the position brain (P3.3). */
export type PermitIssuer = 'governor' | 'p33';

/** Permit lifetime, seconds (docs/architecture.md#redis-schema, seed 004 "Permit TTL: 60 seconds"). */
export const PERMIT_TTL_SEC = 60;

/** A decision before it is written: reason code, JSON-able context and, when resolved, qty/side. */
export interface PermitOutcome {
  decision: PermitDecision;
  /** `ok` (or `auto_approve`) for ALLOW, a named reason for DENY. */
  reason: string;
  /** Details (decimal strings for amounts), stored as JSON in the permit's `context`. */
  context: Record<string, unknown>;
  /** Resolved base-asset quantity (rounded down to the lot step); null when not resolved. */
  qty: Decimal | null;
  /** Order side of the resolved quantity. */
  side: 'BUY' | 'SELL' | null;
}

/** A resolved order: quantity (base asset, > 0, on the lot step) and side. */
export type QtyResolution =
  | { ok: true; qty: Decimal; side: 'BUY' | 'SELL'; reduceOnly: boolean }
  | { ok: false; reason: string; context: Record<string, unknown> };

/** True when a plan asks for a reduce-only order (see `isReduceOnlyFlag` in plan.ts: `true` or `"true"` only). */
export function isReduceOnly(plan: Plan): boolean {
  return isReduceOnlyFlag(plan.reduceOnly);
}

/** True for the exit actions whose quantity is a fraction of the position (FULL_CLOSE, PARTIAL_*). */
export function isExitAction(action: string): action is keyof typeof ACTION_FRACTION {
  return Object.prototype.hasOwnProperty.call(ACTION_FRACTION, action);
}

/**
 * Resolves the order a plan asks for against the fresh snapshot (position, lot step, mark, minimums).
 *
 * - Exit action (FULL_CLOSE, PARTIAL_75/50/25) without `qty`: `|position| * fraction`, rounded down.
 * - Explicit `qty` on an exit: that quantity rounded down; it must not exceed the position
 *   (`reduce_only_exceeds_position`). `REDUCE`: `qty` capped at the position, rounded down.
 * - Reduce-only: side must be opposite the position (`side_not_reducing`); flat → `nothing_to_close`.
 * - Entries (OPEN, INCREASE): see {@link resolveEntryQty}.
 * - Anything else not reduce-only: `exit_requires_reduce_only` / `unresolvable_qty`.
 * @param snap the fresh snapshot: signed position (base asset), lot step (null → DENY `lot_step_unknown`),
 *   mark price (USD per base unit), minimum quantity and notional
 */
export function resolvePlanQty(plan: Plan, snap: Pick<Snapshot, 'amount' | 'stepSize'> & Partial<Pick<Snapshot, 'markPrice' | 'minQty' | 'minNotional'>>): QtyResolution {
  const position = snap.amount;
  const stepSize = snap.stepSize;
  const reduceOnly = isReduceOnly(plan);
  const exit = isExitAction(plan.action);
  if (!stepSize || stepSize.lte(0)) return { ok: false, reason: 'lot_step_unknown', context: { action: plan.action } };
  if (isEntryAction(plan.action)) return resolveEntryQty(plan, { ...snap, stepSize });
  const explicit = plan.qty !== null && plan.qty !== undefined ? new Decimal(plan.qty) : null;
  if (exit && !reduceOnly) return { ok: false, reason: 'exit_requires_reduce_only', context: { action: plan.action, reduceOnly: plan.reduceOnly } };
  if (!reduceOnly) return { ok: false, reason: 'unresolvable_qty', context: { action: plan.action, qty: plan.qty ?? null, side: plan.side ?? null } };
  const sign = signOf(position);
  const size = position.abs();
  if (sign === 0) return { ok: false, reason: 'nothing_to_close', context: { position_amt: '0', action: plan.action } };
  const closingSide: 'BUY' | 'SELL' = sign > 0 ? 'SELL' : 'BUY';
  if (plan.side && plan.side !== closingSide) {
    return { ok: false, reason: 'side_not_reducing', context: { plan_side: plan.side, position_amt: fmt(position) } };
  }
  let raw: Decimal;
  if (plan.action === 'REDUCE' && explicit) {
    raw = Decimal.min(explicit, size); // docs/architecture.md#plans: capped at the fresh position
  } else if (explicit) {
    if (explicit.gt(size)) {
      return { ok: false, reason: 'reduce_only_exceeds_position', context: { qty: fmt(explicit), position_amt: fmt(position) } };
    }
    raw = explicit;
  } else if (isExitAction(plan.action)) {
    raw = size.mul(ACTION_FRACTION[plan.action]);
  } else {
    return { ok: false, reason: 'unresolvable_qty', context: { action: plan.action } };
  }
  const qty = roundDownToStep(raw, stepSize);
  if (qty.isZero()) {
    return { ok: false, reason: 'nothing_to_close', context: { position_amt: fmt(position), action: plan.action, step_size: fmt(stepSize) } };
  }
  return { ok: true, qty, side: closingSide, reduceOnly };
}

/**
 * Sizes an entry (OPEN, INCREASE) from the fresh snapshot (docs/architecture.md#plans): OPEN only from flat
 * (`position_not_flat`), INCREASE only on the plan's side (`side_conflict`, flat included); qty = `qty`, or
 * `notional_usd / mark`, rounded DOWN to the lot step; below the minimum quantity → `below_min_qty`, below
 * the minimum notional (qty × mark) → `below_min_notional` (never rounded up). Unknown mark (`mark_price_unknown`)
 * or minimums (`symbol_rules_unknown`) DENY: fail closed.
 */
export function resolveEntryQty(plan: Plan, snap: Pick<Snapshot, 'amount'> & { stepSize: Decimal } & Partial<Pick<Snapshot, 'markPrice' | 'minQty' | 'minNotional'>>): QtyResolution {
  const position = snap.amount;
  const side = plan.side;
  if (side !== 'BUY' && side !== 'SELL') return { ok: false, reason: 'unresolvable_qty', context: { action: plan.action, side: side ?? null } };
  const want = side === 'BUY' ? 1 : -1;
  if (plan.action === 'OPEN' && !position.isZero()) return { ok: false, reason: 'position_not_flat', context: { position_amt: fmt(position), side } };
  if (plan.action === 'INCREASE' && signOf(position) !== want) return { ok: false, reason: 'side_conflict', context: { position_amt: fmt(position), side } };
  const mark = snap.markPrice ?? null;
  if (!mark || mark.lte(0)) return { ok: false, reason: 'mark_price_unknown', context: { action: plan.action } };
  const minQty = snap.minQty ?? null;
  const minNotional = snap.minNotional ?? null;
  if (minQty === null || minNotional === null) return { ok: false, reason: 'symbol_rules_unknown', context: { min_qty: minQty ? fmt(minQty) : null, min_notional: minNotional ? fmt(minNotional) : null } };
  const raw = plan.qty !== null && plan.qty !== undefined ? new Decimal(plan.qty) : plan.notional_usd !== null && plan.notional_usd !== undefined ? new Decimal(plan.notional_usd).div(mark) : null;
  if (raw === null) return { ok: false, reason: 'unresolvable_qty', context: { action: plan.action } };
  const qty = roundDownToStep(raw, snap.stepSize);
  const ctx = { qty: fmt(qty), requested_qty: plan.qty ?? null, notional_usd: plan.notional_usd ?? null, mark_price: fmt(mark), step_size: fmt(snap.stepSize) };
  if (qty.lte(0) || qty.lt(minQty)) return { ok: false, reason: 'below_min_qty', context: { ...ctx, min_qty: fmt(minQty) } };
  if (qty.mul(mark).lt(minNotional)) return { ok: false, reason: 'below_min_notional', context: { ...ctx, notional: fmt(qty.mul(mark)), min_notional: fmt(minNotional) } };
  return { ok: true, qty, side, reduceOnly: false };
}

/** Inputs of the position brain's decision, read by the caller just before deciding. */
export interface P33Input {
  plan: Plan;
  nowMs: number;
  /** EXISTS `quantum:reconcile:hold:<SYM>`. */
  holdActive: boolean;
  snapshot: SnapshotRead;
  ledger: LedgerRead;
  /** Shared absolute tolerance of the symbol (`toleranceFor(...)`), base asset. */
  tolerance: Decimal;
  /** Maximum snapshot age, seconds (`P33_EXCHANGE_FRESHNESS_SEC`). */
  freshnessSec: number;
  /** Symbols served (`P3_ALLOWLIST`); empty = any symbol. */
  allowlist: readonly string[];
  /** Orders of the symbol sent and not yet recorded (`HLEN quantum:apply:inflight:<SYM>`); 0 when unknown. */
  inFlight?: number;
  /** Newest EXECUTED fill of the symbol in `quantum:stream:apply.result` (its `ts_ms`), null when none. */
  newestFillTsMs?: number | null;
}

/** Builds a DENY outcome. */
export function deny(reason: string, context: Record<string, unknown> = {}, qty: Decimal | null = null, side: 'BUY' | 'SELL' | null = null): PermitOutcome {
  return { decision: 'DENY', reason, context, qty, side };
}

/**
 * Checks shared by both permits: decision type, allowlist, snapshot present/valid/fresh (and not dated
 * more than `SNAPSHOT_FUTURE_SKEW_MS` ahead of `nowMs`).
 * @returns a DENY outcome, or the fresh snapshot
 */
export function checkPlanAndSnapshot(
  plan: Plan,
  snapshot: SnapshotRead,
  nowMs: number,
  freshnessSec: number,
  allowlist: readonly string[],
): PermitOutcome | { ok: true; snapshot: Extract<SnapshotRead, { kind: 'ok' }>['snapshot'] } {
  if (plan.decision !== 'EXECUTE') return deny('unsupported_decision', { decision: plan.decision });
  if (allowlist.length > 0 && !allowlist.includes(plan.symbol)) return deny('symbol_not_allowed', { allowlist: allowlist.join(',') });
  if (snapshot.kind === 'missing') return deny('missing_exchange');
  if (snapshot.kind === 'invalid') return deny('invalid_exchange', { error: snapshot.error });
  const ageMs = nowMs - snapshot.snapshot.tsMs;
  if (ageMs > freshnessSec * 1000) return deny('stale_exchange', { age_ms: ageMs, freshness_sec: freshnessSec });
  if (-ageMs > SNAPSHOT_FUTURE_SKEW_MS) return deny('invalid_exchange', { error: 'snapshot_from_future', ahead_ms: -ageMs });
  return { ok: true, snapshot: snapshot.snapshot };
}

/**
 * The position brain's (P3.3) permit decision. Order: decision type, allowlist, hold (seed 001
 * "P3.3 checks quantum:reconcile:hold:<symbol> before issuing ALLOW"), snapshot, ledger, exchange vs
 * ledger under the shared tolerance (seed 004 `reconcile_required_qty_mismatch` with
 * `{exchange_amt, ledger_amt, diff, tolerance}`), then the quantity.
 */
export function decideP33(i: P33Input): PermitOutcome {
  const { plan } = i;
  if (plan.decision !== 'EXECUTE') return deny('unsupported_decision', { decision: plan.decision });
  if (i.allowlist.length > 0 && !i.allowlist.includes(plan.symbol)) return deny('symbol_not_allowed', { allowlist: i.allowlist.join(',') });
  if (i.holdActive) return deny('reconcile_hold_active');
  const snap = checkPlanAndSnapshot(plan, i.snapshot, i.nowMs, i.freshnessSec, i.allowlist);
  if ('decision' in snap) return snap;
  // The quantity is sized from the snapshot: never from one the position has moved away from since
  // (an order in flight, or a fill newer than the snapshot). The same rule as the reconcile engine's
  // "never act on a snapshot older than the newest fill" (docs/architecture.md#reconcile-close-publication; NautilusTrader's fixed bug).
  if ((i.inFlight ?? 0) > 0) return deny('order_in_flight', { in_flight: i.inFlight });
  if (i.newestFillTsMs != null && snap.snapshot.tsMs <= i.newestFillTsMs) {
    return deny('snapshot_older_than_fill', { snapshot_ts_ms: snap.snapshot.tsMs, fill_ts_ms: i.newestFillTsMs });
  }
  if (i.ledger.kind === 'invalid') return deny('invalid_ledger', { error: i.ledger.error });
  if (i.ledger.kind === 'missing') return deny('missing_ledger');
  const exchangeAmt = snap.snapshot.amount;
  const ledgerAmt = i.ledger.ledger.amount;
  const cmp = compareAmounts(exchangeAmt, ledgerAmt, i.tolerance);
  if (!cmp.match) {
    return deny('reconcile_required_qty_mismatch', {
      exchange_amt: fmt(exchangeAmt),
      ledger_amt: fmt(ledgerAmt),
      diff: fmt(cmp.diff),
      tolerance: fmt(i.tolerance),
    });
  }
  const r = resolvePlanQty(plan, snap.snapshot);
  if (!r.ok) return deny(r.reason, r.context);
  return {
    decision: 'ALLOW',
    reason: 'ok',
    // snapshot_ts_ms is what the apply layer's send-time gate checks (src/domain/send-gate.ts): without it
    // the order is never sent (snapshot_unknown)
    context: { exchange_amt: fmt(exchangeAmt), ledger_amt: fmt(ledgerAmt), tolerance: fmt(i.tolerance), snapshot_ts_ms: snap.snapshot.tsMs },
    qty: r.qty,
    side: r.side,
  };
}

/** Every DENY reason of the position brain (metrics are initialised with these). */
export const P33_DENY_REASONS = [
  'unsupported_decision',
  'symbol_not_allowed',
  'reconcile_hold_active',
  'missing_exchange',
  'invalid_exchange',
  'stale_exchange',
  'order_in_flight',
  'snapshot_older_than_fill',
  'invalid_ledger',
  'missing_ledger',
  'reconcile_required_qty_mismatch',
  'lot_step_unknown',
  'exit_requires_reduce_only',
  'unresolvable_qty',
  'qty_below_lot_step',
  'nothing_to_close',
  'side_not_reducing',
  'reduce_only_exceeds_position',
  'position_not_flat',
  'side_conflict',
  'mark_price_unknown',
  'symbol_rules_unknown',
  'below_min_qty',
  'below_min_notional',
] as const;

/**
 * Permit hash fields as stored in Redis (all strings). Written permits also carry `entry_id` (the stream
 * entry decided), `plan_digest` (SHA-256 of that entry's exact `plan` string) and `sig`, added when the
 * issuer signs it (`signPermit`, src/domain/permit-signature.ts).
 */
export interface PermitFields {
  decision: PermitDecision;
  reason: string;
  /** JSON object. */
  context: string;
  /** Decision time, epoch ms. */
  ts_ms: string;
  plan_id: string;
  symbol: string;
  /** `BUY`/`SELL`, '' when not resolved. */
  side: string;
  /** Resolved base-asset quantity (decimal string), '' when not resolved. */
  qty: string;
  [extra: string]: string;
}

/** Serialises an outcome into permit hash fields; `extra` adds issuer-specific fields (governor: notional, mark_price, mode). */
export function permitFields(plan: Plan, o: PermitOutcome, nowMs: number, extra: Record<string, string> = {}): PermitFields {
  return {
    decision: o.decision,
    reason: o.reason,
    context: JSON.stringify(o.context),
    ts_ms: String(nowMs),
    plan_id: plan.plan_id,
    symbol: plan.symbol,
    side: o.side ?? '',
    qty: o.qty ? fmt(o.qty) : '',
    ...extra,
  };
}

/** Formats a quantity for log lines the seed way (`qty=0.0350`): at least 4 decimals, never fewer than it has. */
export function fmtQtyForLog(q: Decimal | null): string {
  const d = q ?? new Decimal(0);
  return d.toFixed(Math.max(4, d.decimalPlaces()));
}
