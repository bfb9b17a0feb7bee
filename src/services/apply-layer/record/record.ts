/**
 * The record step of the apply layer's staircase (see ../index.ts): a plan's final result is recorded
 * exactly once, fenced on the claim this consumer holds (store.ts `recordResult`: result, in-flight end,
 * dedupe `done` and the ledger update of an EXECUTE fill in one atomic step). Before a result without an
 * order is recorded, the claim's pre-send query (claim/durability.ts) is taken: when the exchange already
 * has the plan's order, that order's result is recorded instead, never a refusal. A fenced write names
 * the consumer the entry was handed over to ({@link throwIfHandedOver}).
 */
import { fmt, Decimal } from '../../../domain/decimal.js';
import { clientOrderIdFor, dedupeValue, fencedEntryVerdict } from '../../../domain/apply.js';
import type { ApplyResultFields } from '../../../domain/result.js';
import type { OrderInfo } from '../../../ports/exchange.js';
import { HandedOver } from '../../../adapters/redis/consumer.js';
import { dropPending, orderRecord, readDedupe, recordResult } from '../store.js';
import type { ApplyDeps } from '../deps.js';
import { outcomeFields, reportResult } from '../results.js';
import { takePriorCheck, type PriorCheck } from './prior-checks.js';

/**
 * Takes the pre-send query of the claim `claimedValue` (claim/durability.ts) and, when the exchange already
 * has the plan's order, records the plan's result from it (never sends again): EXECUTED with the exchange's
 * `executedQty`, reason `recovered_from_exchange` (or `partial_fill`). An EXECUTE fill goes into the ledger in
 * the same atomic step when the ledger plus the fill equals the exchange position read now (within one lot
 * step); otherwise (the engine already repaired the ledger or closed the position since, another fill is
 * pending) the result is written alone and the reconcile engine takes it as evidence.
 * @returns null when no query ran or nothing was sent before; else what was recorded
 * @throws Error when the exchange could not say whether the order exists (nothing recorded: the entry stays
 *   pending and is retried; its resumed claim asks again)
 */
export async function recoverPriorOrder(d: ApplyDeps, claimedValue: string): Promise<{ fields: ApplyResultFields; recorded: boolean } | null> {
  const check = takePriorCheck(d, claimedValue);
  if (!check) return null;
  const out = await check.result;
  if (out.kind === 'none') return null;
  if (out.kind === 'unknown') {
    d.logger.error({ plan_id: check.planId, err: out.error }, `${check.symbol}: plan ${check.planId}: cannot tell whether its order was already sent (${out.error}); nothing sent or recorded, retried`);
    throw new Error(out.error);
  }
  return recordRecovered(d, check, claimedValue, out.order, out.tsMs);
}

async function recordRecovered(d: ApplyDeps, check: PriorCheck, claimedValue: string, order: OrderInfo, tsMs: number): Promise<{ fields: ApplyResultFields; recorded: boolean }> {
  const cid = clientOrderIdFor(check.planId);
  const rec = orderRecord({ planId: check.planId, entryId: check.entryId, symbol: check.symbol, side: order.side, qty: order.qty, reduceOnly: order.reduceOnly, decision: check.decision, dedupe: claimedValue, tsMs, basisAmt: check.basisAmt });
  const { fields, fill } = outcomeFields(rec, cid, { kind: 'order', order, tsMs, via: 'lookup' });
  if (fields.status === 'EXECUTED' && fields.reason !== 'partial_fill') fields.reason = 'recovered_from_exchange';
  let ledgerIf: ((next: Decimal) => boolean) | undefined;
  if (fill && d.gateway) {
    try {
      const pos = await d.gateway.fetchPositions();
      const ex = pos.positions.get(check.symbol)?.amount ?? new Decimal(0);
      // exact: both sides are on the lot grid; a one-lot tolerance would accept a fill counted twice in a ledger
      // the engine had already repaired (review finding: 0.001 + 0.001 = 0.002 against an exchange of 0.001)
      ledgerIf = (next) => next.eq(ex);
    } catch {
      ledgerIf = () => false; // position unreadable: the result alone, the engine reconciles with it as evidence
    }
  }
  d.logger.warn({ plan_id: check.planId, client_order_id: cid, order_id: order.orderId, status: order.status, filled: fmt(order.filledQty) }, `${check.symbol}: plan ${check.planId} was already sent (order ${order.orderId} ${order.status}, its record lost by Redis); result recorded from the exchange, nothing sent again`);
  const out = await recordResult(d.redis, fields, { cid, doneValue: dedupeValue('done', check.entryId, fields.status), fill, expected: claimedValue, ledgerIf });
  if (out.kind === 'fenced') {
    await throwIfHandedOver(d, check.symbol, check.planId, check.entryId, claimedValue, `recovered ${fields.status} not published`, { retryIfGone: false });
    d.logger.warn({ plan_id: check.planId }, `${check.symbol}: plan ${check.planId} already recorded by another consumer; recovered ${fields.status} not published`);
    return { fields, recorded: false };
  }
  reportResult(d, fields, { ledger: out.ledger, ledger_version: out.ledgerVersion, recovered: true });
  return { fields, recorded: true };
}

/**
 * After a write fenced on the plan's dedupe claim: when another consumer now holds the claim of the SAME
 * stream entry and has not finished it (stage `claimed` / `sending` with another token: it took the
 * entry's work over, e.g. a redelivery after a takeover), throws {@link HandedOver}, so this consumer
 * leaves the entry pending instead of acknowledging it (an XACK would drop it for the new handler too).
 * Returns normally when the plan is done, another entry of the plan holds it, or (without `retryIfGone`) its
 * claim is gone.
 * @param expected the dedupe value this consumer held
 * @param opts.retryIfGone true when nothing was sent under this claim: a vanished claim then throws a plain
 *   Error (the entry is retried, not acknowledged); false after an order exists (a retry could send again
 *   where Redis lost nothing it knows of)
 * @throws HandedOver see above; Error when the claim vanished and `retryIfGone`
 */
export async function throwIfHandedOver(d: ApplyDeps, symbol: string, planId: string, entryId: string, expected: string, what: string, opts: { retryIfGone: boolean }): Promise<void> {
  const raw = await readDedupe(d.redis, planId);
  const verdict = fencedEntryVerdict(raw, entryId, expected, opts.retryIfGone);
  if (verdict === 'retry') {
    // the claim vanished (Redis lost it): acknowledging would leave the plan with no result and no owner;
    // the entry is retried as a redelivery (a fresh claim, asked of the exchange when Redis lost writes)
    d.logger.warn({ plan_id: planId, entry_id: entryId }, `${symbol}: plan ${planId}: its claim vanished (Redis lost it?); ${what}; the entry is retried`);
    throw new Error(`plan ${planId}: claim vanished; retried`);
  }
  if (verdict === 'acknowledge') return;
  d.logger.warn({ plan_id: planId, entry_id: entryId, claim: raw }, `${symbol}: plan ${planId} taken over by another consumer (claim ${raw}); ${what}; its entry stays pending for that consumer`);
  throw new HandedOver(`plan ${planId} taken over (claim ${raw})`);
}

/**
 * Records the final result of a plan this consumer claimed (no order sent, or `cid` for a sent one).
 * A result without an order (`cid` '') first takes the claim's pre-send query ({@link recoverPriorOrder}):
 * when the exchange already has the plan's order, that order's result is recorded instead of `f`.
 * @param fill signed fill to apply to the ledger (EXECUTE only)
 * @param expected the exact dedupe value this consumer holds (its claimed|/sending| value); recording is
 *   refused when another consumer has taken the plan over since
 * @returns false when fenced (another consumer owns or recorded the plan; nothing written)
 * @throws Error when the pre-send query could not tell whether the order exists (nothing recorded)
 */
export async function finalize(d: ApplyDeps, f: ApplyResultFields, entryId: string, cid: string, fill: Decimal | undefined, expected: string): Promise<boolean> {
  if (cid === '') {
    const prior = await recoverPriorOrder(d, expected);
    if (prior) return prior.recorded;
  }
  const out = await recordResult(d.redis, f, { cid, doneValue: dedupeValue('done', entryId, f.status), fill, expected });
  if (out.kind === 'fenced') {
    await throwIfHandedOver(d, f.symbol, f.plan_id, entryId, expected, `${f.status} not published`, { retryIfGone: cid === '' });
    d.logger.warn({ plan_id: f.plan_id, status: f.status, client_order_id: cid }, `${f.symbol}: plan ${f.plan_id} already recorded by another consumer; ${f.status} not published`);
    if (cid) await dropPending(d.redis, cid);
    return false;
  }
  reportResult(d, f, { ledger: out.ledger, ledger_version: out.ledgerVersion });
  if (out.ledger === 'missing' || out.ledger === 'invalid') {
    d.logger.warn({ plan_id: f.plan_id, symbol: f.symbol }, `${f.symbol}: ledger ${out.ledger}; fill recorded as result only (the reconcile engine initialises/repairs the ledger from the exchange)`);
  }
  return true;
}
