/**
 * Pure decisions of the apply layer (docs/architecture.md#plans, docs/architecture.md#exactly-once-execution; seeds 002 and 004). No I/O.
 *
 * Invariants:
 * - The client order id is a pure function of the plan id (`p3-` + first 32 hex of sha256(plan_id)):
 *   a plan maps to exactly one exchange order id, so a crash between sending and recording is resolved
 *   by asking the exchange for that id, never by sending again. Valid for Binance's
 *   `^[\.A-Z\:/a-z0-9_-]{1,36}$` (35 characters).
 * - Permits: an order needs BOTH permits with `decision=ALLOW`. Any DENY skips with the DENY's reason
 *   (the governor's first). The order quantity is the p33 permit's `qty`; a missing/unparseable/zero qty,
 *   a side contradiction (permits vs each other vs the plan) or a governor qty smaller than the p33 qty
 *   skips (fail closed, never "assume").
 * - Quantities are exact decimals rounded DOWN to the lot step; zero after rounding means no order.
 * - Dedupe stage values (`quantum:apply:dedupe:<plan_id>`) are `<stage>|<entry_id>|<token>` with stage
 *   `claimed` (no order sent yet), `sending` (order possibly sent: resolve by lookup only) or `done`.
 *   Any other value (e.g. the seeds' `1`) reads as `done`: unknown means "already handled".
 * - A consumer fenced on a claim never acknowledges a stream entry whose claim another consumer holds
 *   unfinished for that same entry, nor one whose claim vanished before anything was sent
 *   ({@link fencedEntryVerdict}; test/property/fenced-entry.property.test.ts).
 */
import { createHash } from 'node:crypto';
import { Decimal, parseDecimal, roundDownToStep } from './decimal.js';
import { PLAN_ACTIONS, isEntryAction, isReduceOnlyFlag, type Plan } from './plan.js';

/** Deterministic client order id of a plan: `p3-` + first 32 hex chars of sha256(plan_id). */
export function clientOrderIdFor(planId: string): string {
  return `p3-${createHash('sha256').update(planId, 'utf8').digest('hex').slice(0, 32)}`;
}

/** Binance's client order id pattern. */
export const CLIENT_ORDER_ID_RE = /^[.A-Z:/a-z0-9_-]{1,36}$/;

/** Actions whose orders are always reduce-only: every plan action but the entries (OPEN, INCREASE). */
export function isExitAction(action: string): boolean {
  return (PLAN_ACTIONS as readonly string[]).includes(action) && !isEntryAction(action);
}

/**
 * Reduce-only flag of an EXECUTE plan's order: true for exit actions whatever the plan says; false for
 * entries (OPEN, INCREASE: the plan schema requires `reduceOnly` false for them); for anything else only a
 * boolean `true` or the string `"true"`.
 */
export function reduceOnlyFor(plan: Pick<Plan, 'action' | 'reduceOnly'>): boolean {
  if (isExitAction(plan.action)) return true;
  if (isEntryAction(plan.action)) return false;
  return isReduceOnlyFlag(plan.reduceOnly);
}

/** A permit hash as read (HGETALL; empty object = absent). */
export type PermitHash = Record<string, string>;

/** What the permits say about a plan. */
export type PermitVerdict =
  | { kind: 'wait' }
  | { kind: 'skip'; reason: string; detail: string }
  | { kind: 'allow'; side: 'BUY' | 'SELL'; qty: Decimal };

function upperSide(v: string | undefined | null): 'BUY' | 'SELL' | '' | 'bad' {
  const s = (v ?? '').trim().toUpperCase();
  if (s === '') return '';
  if (s === 'BUY' || s === 'SELL') return s;
  return 'bad';
}

/**
 * Both permits' decisions as the `error` of a DENY result (docs/plan-format.md#results), always in this order:
 * `governor <ALLOW|DENY|PENDING>[ <reason>]; p33 <ALLOW|DENY|PENDING>[ <reason>]` (PENDING: not decided when
 * the other's DENY decided the plan). A reason is `[a-z0-9_]` only; anything else is left out.
 */
export function permitDecisions(gov: PermitHash, p33: PermitHash): string {
  const one = (name: string, h: PermitHash) => {
    if (Object.keys(h).length === 0) return `${name} PENDING`;
    const d = (h.decision ?? '').toUpperCase();
    const r = h.reason && /^[a-z0-9_]{1,64}$/.test(h.reason) ? ` ${h.reason}` : '';
    return `${name} ${d === 'ALLOW' || d === 'DENY' ? d : 'INVALID'}${r}`;
  };
  return `${one('governor', gov)}; ${one('p33', p33)}`;
}

/**
 * Evaluates the governor and p33 permits of a plan (`quantum:permit:governor|p33:<plan_id>`, fields
 * `decision`, `reason`, `context`, `qty`, `side`, `ts_ms`).
 * Both permits must name the plan's symbol, and the stream entry they decided (`entry_id`, when recorded)
 * must be the one being executed, so a reused plan id can never borrow another plan's permits.
 * @param entryId the stream entry id of the plan being executed
 * @returns `wait` while a permit is missing and none is DENY; `skip` with a reason code (`<permit reason>`
 *   of a DENY, `permit_invalid`, `permit_incomplete`, `permit_mismatch`); `allow` with the order side and
 *   the unrounded p33 qty.
 */
export function evaluatePermits(gov: PermitHash, p33: PermitHash, plan: Pick<Plan, 'side' | 'symbol'>, entryId?: string): PermitVerdict {
  const present = (h: PermitHash) => Object.keys(h).length > 0;
  for (const [name, h] of [['governor', gov], ['p33', p33]] as const) {
    if (!present(h)) continue;
    const d = (h.decision ?? '').toUpperCase();
    if (d === 'DENY') return { kind: 'skip', reason: h.reason && h.reason !== '' ? h.reason : `${name}_deny`, detail: permitDecisions(gov, p33) };
    if (d !== 'ALLOW') return { kind: 'skip', reason: 'permit_invalid', detail: `${name} decision ${JSON.stringify(h.decision)}` };
  }
  if (!present(gov) || !present(p33)) return { kind: 'wait' };
  for (const [name, h] of [['governor', gov], ['p33', p33]] as const) {
    if (!h.symbol) return { kind: 'skip', reason: 'permit_incomplete', detail: `${name} permit names no symbol` };
    if (h.symbol !== plan.symbol) return { kind: 'skip', reason: 'permit_mismatch', detail: `${name} permit is for ${h.symbol}, plan for ${plan.symbol}` };
    if (entryId !== undefined && h.entry_id && h.entry_id !== entryId) {
      return { kind: 'skip', reason: 'permit_mismatch', detail: `${name} permit decided entry ${h.entry_id}, executing ${entryId}` };
    }
  }
  const qty = parseDecimal(p33.qty);
  if (qty === null || qty.lte(0)) return { kind: 'skip', reason: 'permit_incomplete', detail: `p33 qty ${JSON.stringify(p33.qty)}` };
  const pSide = upperSide(p33.side);
  const gSide = upperSide(gov.side);
  const planSide = upperSide(plan.side ?? '');
  if (pSide === 'bad' || gSide === 'bad') return { kind: 'skip', reason: 'permit_invalid', detail: 'unknown permit side' };
  const side = pSide || planSide;
  if (side === '' || side === 'bad') return { kind: 'skip', reason: 'permit_incomplete', detail: 'no order side in p33 permit or plan' };
  if ((gSide !== '' && gSide !== side) || (planSide !== '' && planSide !== side)) {
    return { kind: 'skip', reason: 'permit_mismatch', detail: `sides plan=${planSide} governor=${gSide} p33=${pSide}` };
  }
  if (gov.qty !== undefined && gov.qty !== '') {
    const gq = parseDecimal(gov.qty);
    if (gq === null || gq.lt(qty)) return { kind: 'skip', reason: 'permit_mismatch', detail: `governor qty ${gov.qty} < p33 qty ${p33.qty}` };
  }
  return { kind: 'allow', side, qty };
}

/**
 * Order quantity from a resolved quantity and the symbol's lot rules.
 * @returns the quantity rounded down to `step`, or null when it is below `minQty` (or zero)
 */
export function orderQty(qty: Decimal, step: Decimal, minQty: Decimal): Decimal | null {
  const q = roundDownToStep(qty, step);
  if (q.lte(0) || q.lt(minQty)) return null;
  return q;
}

/** Stage of a plan in the dedupe key. */
export type DedupeStage = { stage: 'claimed' | 'sending'; entryId: string; token: string } | { stage: 'done'; raw: string };

/** Formats a dedupe value. */
export function dedupeValue(stage: 'claimed' | 'sending' | 'done', entryId: string, token: string): string {
  return `${stage}|${entryId}|${token}`;
}

/** Parses a dedupe value; anything unknown reads as `done` (fail closed: never a second order). */
export function parseDedupe(raw: string | null): DedupeStage | null {
  if (raw === null) return null;
  const [stage, entryId, token] = raw.split('|');
  if ((stage === 'claimed' || stage === 'sending') && entryId && token) return { stage, entryId, token };
  return { stage: 'done', raw };
}

/**
 * What a consumer whose write was fenced on a plan's dedupe claim does with its stream entry (the
 * seed-102 finding: acknowledging an entry whose work another consumer owns loses the plan):
 * - `handed_over`: the claim is `claimed`/`sending` for THIS entry with another value than the one held
 *   (`expected`): another consumer took the work over; leave the entry pending, never acknowledge it;
 * - `retry`: the claim vanished (`current` null) and nothing was sent under it (`retryIfGone`): retry the
 *   entry (a fresh claim), never acknowledge it without a result;
 * - `acknowledge`: the plan is done, another entry of the plan holds it, or (after an order was sent) the
 *   claim vanished: this entry's work is over.
 * @param current the dedupe value now (null when the key is missing)
 * @param expected the dedupe value the fenced consumer held
 */
export function fencedEntryVerdict(current: string | null, entryId: string, expected: string, retryIfGone: boolean): 'handed_over' | 'retry' | 'acknowledge' {
  const cur = parseDedupe(current);
  if (!cur) return retryIfGone ? 'retry' : 'acknowledge';
  if (cur.stage === 'done' || cur.entryId !== entryId || current === expected) return 'acknowledge';
  return 'handed_over';
}

/** Plan age check: true when `nowMs - plan.ts_ms` exceeds `maxAgeMs` (a plan from the future by > maxAge also counts). */
export function planTooOld(planTsMs: number, nowMs: number, maxAgeMs: number): boolean {
  return nowMs - planTsMs > maxAgeMs || planTsMs - nowMs > maxAgeMs;
}

/** Signed fill of an order: BUY +, SELL -. */
export function signedFill(side: 'BUY' | 'SELL', filled: Decimal): Decimal {
  return side === 'BUY' ? filled : filled.neg();
}

export { Decimal };
