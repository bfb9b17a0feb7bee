/**
 * Typed results of the strategy client (docs/plan-format.md#results): one entry of
 * `quantum:stream:apply.result` (every field a string) read as a discriminated union.
 *
 * Invariants:
 * - Pure: no I/O. Quantities and prices stay decimal strings exactly as the apply layer wrote them.
 * - `DROPPED_DUPLICATE` is never a final result ({@link isFinalStatus} false): it answers a re-submission
 *   while the plan's own result is, or will be, elsewhere in the stream.
 * - A SKIPPED result decided by a permit's DENY (its `error` names both permits' decisions,
 *   `governor <D>[ reason]; p33 <D>[ reason]`) is `DENY`; every other SKIPPED stays `SKIPPED`.
 * - Anything unreadable (an unknown status, an EXECUTED without a positive filled quantity) is never
 *   reported as EXECUTED: it is `FAILED` with reason `unreadable_result`.
 */
import { parseDecimal } from '../domain/decimal.js';

/** One permit's part in a decision: ALLOW, DENY (with its reason), PENDING (not decided yet), or INVALID. */
export interface PermitOutcome {
  decision: 'ALLOW' | 'DENY' | 'PENDING' | 'INVALID';
  /** The permit's reason code (`max_position_exceeded`, `position_not_flat`, ...); '' when none. */
  reason: string;
}

/** Fields every result carries. */
interface ResultBase {
  planId: string;
  /** Upper-case exchange symbol, e.g. `BTCUSDT`. */
  symbol: string;
  /** Reason code ('' for a plain EXECUTED; `partial_fill` / `resolved_by_lookup` are EXECUTED reasons). */
  reason: string;
  /** Free text of the apply layer (the `error` field). */
  detail: string;
  /** When the apply layer recorded the result, epoch ms. */
  tsMs: number;
  /** The result's stream entry id. */
  entryId: string;
  /** The stream entry's fields as written. */
  raw: Record<string, string>;
}

/** The order was sent and filled (fully, or partly: reason `partial_fill`). */
export interface ExecutedResult extends ResultBase {
  status: 'EXECUTED';
  side: 'BUY' | 'SELL';
  /** Ordered base-asset quantity (decimal string). */
  qty: string;
  /** Filled base-asset quantity, > 0 (decimal string). */
  filledQty: string;
  /** Average fill price, quote per base (decimal string; '' when the exchange gave none). */
  avgPrice: string;
  orderId: string;
  clientOrderId: string;
}

/** A permit denied the plan: nothing was sent. `reason` is the deciding DENY's reason. */
export interface DenyResult extends ResultBase {
  status: 'DENY';
  governor: PermitOutcome;
  p33: PermitOutcome;
}

/** Not sent for another reason (stale plan, permit timeout, send-time gate, hold, dry run...). */
export interface SkippedResult extends ResultBase {
  status: 'SKIPPED';
}

/** Refused as invalid (`REJECTED_INVALID`: symbol not allowed, unsupported type...) or by a guardrail. */
export interface RejectedResult extends ResultBase {
  status: 'REJECTED';
  /** The apply layer's status: `REJECTED_INVALID` or `REJECTED_GUARDRAIL`. */
  rejection: 'REJECTED_INVALID' | 'REJECTED_GUARDRAIL';
}

/** The exchange refused, failed or rate-limited the order (`FAILED`, `RETRYABLE_RATE_LIMIT`). */
export interface FailedResult extends ResultBase {
  status: 'FAILED';
  /** True for `RETRYABLE_RATE_LIMIT`: a NEW plan may succeed later (this one is final). */
  retryable: boolean;
}

/** The final result of a plan. */
export type P3Result = ExecutedResult | DenyResult | SkippedResult | RejectedResult | FailedResult;

/** True for every status that finishes a plan (all but `DROPPED_DUPLICATE`). */
export function isFinalStatus(status: string | undefined): boolean {
  return status !== undefined && status !== '' && status !== 'DROPPED_DUPLICATE';
}

const PERMIT_PART = /^(governor|p33) (ALLOW|DENY|PENDING|INVALID)(?: ([a-z0-9_]{1,64}))?$/;

/**
 * Both permits' decisions from a result's `error` (`governor DENY max_position_exceeded; p33 PENDING`).
 * @returns null when the text is not in that form (the SKIPPED was not a permit's DENY)
 */
export function parsePermitDecisions(text: string): { governor: PermitOutcome; p33: PermitOutcome } | null {
  const parts = text.split('; ');
  if (parts.length !== 2) return null;
  const out: Partial<Record<'governor' | 'p33', PermitOutcome>> = {};
  for (const p of parts) {
    const m = PERMIT_PART.exec(p);
    if (!m) return null;
    out[m[1] as 'governor' | 'p33'] = { decision: m[2] as PermitOutcome['decision'], reason: m[3] ?? '' };
  }
  if (!out.governor || !out.p33) return null;
  if (out.governor.decision !== 'DENY' && out.p33.decision !== 'DENY') return null;
  return { governor: out.governor, p33: out.p33 };
}

/**
 * Reads one result entry as a {@link P3Result}.
 * @param entryId the stream entry id
 * @param f the entry's fields
 * @returns null for a non-final entry (`DROPPED_DUPLICATE`, or no status)
 */
export function toP3Result(entryId: string, f: Record<string, string>): P3Result | null {
  if (!isFinalStatus(f.status)) return null;
  const ts = Number(f.ts_ms);
  const base: ResultBase = { planId: f.plan_id ?? '', symbol: f.symbol ?? '', reason: f.reason ?? '', detail: f.error ?? '', tsMs: Number.isFinite(ts) ? ts : 0, entryId, raw: f };
  const unreadable = (why: string): FailedResult => ({ ...base, status: 'FAILED', retryable: false, reason: 'unreadable_result', detail: `${why}: ${JSON.stringify(f).slice(0, 300)}` });
  switch (f.status) {
    case 'EXECUTED': {
      const filled = parseDecimal(f.filled_qty);
      const side = (f.side ?? '').toUpperCase();
      if (f.executed !== 'true' || filled === null || filled.lte(0) || (side !== 'BUY' && side !== 'SELL')) return unreadable('EXECUTED without a fill');
      return { ...base, status: 'EXECUTED', side, qty: f.qty ?? '', filledQty: f.filled_qty ?? '', avgPrice: f.avg_price ?? '', orderId: f.order_id ?? '', clientOrderId: f.client_order_id ?? '' };
    }
    case 'SKIPPED': {
      const permits = parsePermitDecisions(base.detail);
      return permits ? { ...base, status: 'DENY', ...permits } : { ...base, status: 'SKIPPED' };
    }
    case 'REJECTED_INVALID':
    case 'REJECTED_GUARDRAIL':
      return { ...base, status: 'REJECTED', rejection: f.status };
    case 'FAILED':
      return { ...base, status: 'FAILED', retryable: false };
    case 'RETRYABLE_RATE_LIMIT':
      return { ...base, status: 'FAILED', retryable: true };
    default:
      return unreadable(`unknown status ${f.status}`);
  }
}

/**
 * Reasons of a result that say the symbol is held or trading is stopped (what `onHold` reports): a
 * reconcile hold (`reconcile_hold_active`), an operator's hold, the kill switch (`trading_halted`) or the
 * REDUCING state refusing an entry (`trading_state_reducing`), an open circuit breaker (`breaker_open` at send
 * time, `circuit_breaker_open` from the governor).
 */
export const HOLD_REASONS: readonly string[] = ['reconcile_hold_active', 'operator_hold', 'trading_halted', 'trading_state_reducing', 'breaker_open', 'circuit_breaker_open'];

/**
 * Refusals where nothing was sent and a NEW plan of the same request is expected to pass shortly (what
 * `P3Client.submit` re-tries): the permit was sized on a snapshot older than the symbol's newest fill
 * (`snapshot_older_than_fill`, `snapshot_superseded`: two plans back to back), another order of the symbol was in
 * flight (`order_in_flight`), or the exchange snapshot was momentarily missing or stale (`missing_exchange`,
 * `stale_exchange`, `snapshot_unknown`: right after a restart).
 */
export const TRANSIENT_REASONS: readonly string[] = ['snapshot_older_than_fill', 'snapshot_superseded', 'order_in_flight', 'snapshot_unknown', 'missing_exchange', 'stale_exchange'];
