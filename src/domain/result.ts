/**
 * Entries of `quantum:stream:apply.result` (written by the apply layer, read by the reconcile engine as
 * execution evidence). Every field is a string in the stream; booleans are `true`/`false`.
 */
import { parseDecimal, type Decimal } from './decimal.js';

/** Statuses of an apply result (seed 002's result idempotency statuses, plus REJECTED_INVALID and FAILED). */
export const RESULT_STATUSES = [
  'EXECUTED',
  'SKIPPED',
  'DROPPED_DUPLICATE',
  'REJECTED_INVALID',
  'REJECTED_GUARDRAIL',
  'RETRYABLE_RATE_LIMIT',
  'FAILED',
] as const;
/** One of {@link RESULT_STATUSES}. */
export type ResultStatus = (typeof RESULT_STATUSES)[number];

/** Fields of one result entry (all strings in Redis). */
export interface ApplyResultFields {
  plan_id: string;
  symbol: string;
  /** `EXECUTE` or `RECONCILE_CLOSE`. */
  decision: string;
  status: ResultStatus;
  executed: 'true' | 'false';
  would_execute: 'true' | 'false';
  side: string;
  /** Ordered base-asset quantity. */
  qty: string;
  /** Filled base-asset quantity (unsigned). */
  filled_qty: string;
  avg_price: string;
  order_id: string;
  client_order_id: string;
  error: string;
  dedupe_hit: 'true' | 'false';
  /** Reason of a SKIPPED/REJECTED result. */
  reason: string;
  ts_ms: string;
  /**
   * RECONCILE_CLOSE / FLATTEN: the signed exchange position the order was sized on. With `filled_qty` it says
   * whether the order brought the position to flat (the heal rule, docs/architecture.md#heal-target).
   */
  basis_amt?: string;
}

/** An executed fill, signed: BUY +, SELL -. */
export interface Fill {
  planId: string;
  orderId: string;
  decision: string;
  /** Signed base-asset quantity. */
  signedQty: Decimal;
  tsMs: number;
  /** Stream entry id. */
  entryId: string;
  /** The signed position a close or flatten was sized on (`basis_amt`); null when not recorded (older results, EXECUTE). */
  basisAmt?: Decimal | null;
}

/**
 * Reads an executed fill from a result entry; null for anything that is not an EXECUTED entry with a
 * positive parseable `filled_qty`, a BUY/SELL side and a timestamp.
 */
export function fillFromResult(entryId: string, f: Record<string, string>): Fill | null {
  if (f.status !== 'EXECUTED' || f.executed !== 'true') return null;
  const q = parseDecimal(f.filled_qty);
  if (q === null || q.lte(0)) return null;
  const side = (f.side ?? '').toUpperCase();
  if (side !== 'BUY' && side !== 'SELL') return null;
  const ts = Number(f.ts_ms);
  if (!Number.isFinite(ts)) return null;
  const basis = f.basis_amt !== undefined && f.basis_amt !== '' ? parseDecimal(f.basis_amt) : null;
  return { planId: f.plan_id ?? '', orderId: f.order_id ?? '', decision: f.decision ?? '', signedQty: side === 'BUY' ? q : q.neg(), tsMs: ts, entryId, basisAmt: basis };
}
