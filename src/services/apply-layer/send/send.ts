/**
 * The send step of the apply layer's staircase (see ../index.ts): the only place an order is sent.
 * A claimed plan is moved to stage `sending` with its in-flight record, through the send-time gate
 * (store.ts `beginSend`, applyBegin-13.lua), sent once through the executor with the last-moment check
 * run right before the request goes out, its outcome resolved, and recorded (record/record.ts) with the
 * ledger update of an EXECUTE fill in one atomic step. Orders whose outcome stays unknown are left in
 * flight for inflight.ts.
 */
import type { MarketOrderRequest } from '../../../ports/exchange.js';
import { fmt } from '../../../domain/decimal.js';
import { clientOrderIdFor, dedupeValue } from '../../../domain/apply.js';
import type { ApplyResultFields } from '../../../domain/result.js';
import type { SendGateReason } from '../../../domain/send-gate.js';
import { lastMomentVerdict, type LastMomentMode } from '../../../domain/last-moment.js';
import { checkPriceAtSend } from './price-at-send.js';
import { SendRefused } from '../../../adapters/exchange/errors.js';
import { placeAndResolve } from '../executor.js';
import { beginSend, orderRecord, readLastMoment, waitForReplicas } from '../store.js';
import { executorDeps, type ApplyDeps } from '../deps.js';
import { outcomeFields, resultFields } from '../results.js';
import { finalize, recoverPriorOrder, throwIfHandedOver } from '../record/record.js';

/**
 * `replica-wait` claim durability (claim/durability.ts): `WAIT <replicas> <timeout>` after the in-flight record was written.
 * @returns true when enough replicas acknowledged every write of this connection so far
 * @throws Error when Redis does not answer (the plan stays in flight; the sweep resolves it by lookup)
 */
async function waitReplicas(d: ApplyDeps): Promise<boolean> {
  const acked = await waitForReplicas(d.redis, d.cfg.claimWaitReplicas, d.cfg.claimWaitTimeoutMs);
  const ok = acked >= d.cfg.claimWaitReplicas;
  d.metrics.claimWaits.inc({ outcome: ok ? 'acked' : 'not_acked' });
  return ok;
}

/** What {@link sendAndRecord} did. */
export type SendResult =
  | { kind: 'lost_ownership' }
  | { kind: 'held' }
  | { kind: 'hold_changed' }
  | { kind: 'close_already_sent' }
  | { kind: 'halted' }
  /** Refused at send time (REDUCING for an entry, the breaker, an expired reservation): nothing was sent. */
  | { kind: 'refused'; reason: string; detail: string }
  | { kind: 'position_changed' }
  /** The send-time gate refused (src/domain/send-gate.ts): nothing was sent. */
  | { kind: 'gated'; reason: SendGateReason }
  | { kind: 'recorded'; fields: ApplyResultFields; recorded: boolean }
  | { kind: 'unresolved'; error: string };

/**
 * Writes the in-flight record (only as the claim's owner, and only through the send-time gate: nothing
 * else of the symbol in flight, `snapshotTsMs` newer than its newest fill), sends the order, resolves its outcome and
 * records it with the ledger update (EXECUTE fills) in one atomic step.
 * @throws whatever `hooks.afterSend` throws (test seam: the plan stays in flight, as after a crash)
 */
export async function sendAndRecord(
  d: ApplyDeps,
  req: Omit<MarketOrderRequest, 'clientOrderId' | 'beforeSend'> & { planId: string; entryId: string; decision: string; claimedValue: string; token: string; driftSig?: string; basisAmt?: string; expectSign?: -1 | 0 | 1; snapshotTsMs: number | null; permitTsMs?: number | null; reserved?: boolean; refPrice?: string | null },
): Promise<SendResult> {
  // the claim's pre-send query (claim/durability.ts): an order already at the exchange is recorded, never sent again
  const prior = await recoverPriorOrder(d, req.claimedValue);
  if (prior) return { kind: 'recorded', ...prior };
  const mode = req.decision === 'RECONCILE_CLOSE' ? 'close' : req.decision === 'FLATTEN' ? 'flatten' : 'execute';
  const cid = clientOrderIdFor(req.planId);
  const rec = orderRecord({ ...req, dedupe: dedupeValue('sending', req.entryId, req.token), tsMs: Date.now() });
  const close = req.decision === 'RECONCILE_CLOSE' ? { driftSig: req.driftSig ?? '', markerTtlSec: d.cfg.closeMarkerTtlSec } : undefined;
  const begun = await beginSend(d.redis, cid, rec, req.claimedValue, d.cfg.inflightTtlSec, close, req.snapshotTsMs, mode, req.expectSign ?? null, req.reserved === true);
  if (begun === 'held' || begun === 'hold_changed' || begun === 'close_already_sent' || begun === 'halted' || begun === 'position_changed') return { kind: begun };
  if (begun === 'reducing' || begun === 'reservation_gone' || begun === 'breaker_open') {
    const reason = begun === 'reducing' ? 'trading_state_reducing' : begun === 'breaker_open' ? 'breaker_open' : 'permit_expired';
    d.metrics.sendGated.inc({ symbol: req.symbol, reason });
    return { kind: 'refused', reason, detail: begun === 'reservation_gone' ? 'the exposure reservation of the permit expired before the send' : `${reason} at send time` };
  }
  if (begun === 'order_in_flight' || begun === 'snapshot_superseded' || begun === 'snapshot_unknown') {
    d.metrics.sendGated.inc({ symbol: req.symbol, reason: begun });
    return { kind: 'gated', reason: begun };
  }
  if (begun === 'not_owner') {
    await throwIfHandedOver(d, req.symbol, req.planId, req.entryId, req.claimedValue, 'not sending', { retryIfGone: true });
    d.logger.warn({ plan_id: req.planId }, `${req.symbol}: plan ${req.planId} taken over by another consumer; not sending`);
    return { kind: 'lost_ownership' };
  }
  if (d.cfg.claimDurability === 'replica-wait' && !(await waitReplicas(d))) {
    // the claim and the in-flight record are not on enough replicas: a failover could lose them, and a
    // re-delivered plan would then be sent again. Nothing sent; the plan ends FAILED (the producer may re-submit).
    const fields = resultFields({ plan_id: req.planId, symbol: req.symbol, decision: req.decision, status: 'FAILED', reason: 'claim_not_durable', side: req.side, qty: fmt(req.qty), would_execute: 'true', error: `fewer than ${d.cfg.claimWaitReplicas} replica(s) acknowledged the claim within ${d.cfg.claimWaitTimeoutMs} ms (WAIT); not sent` });
    const recorded = await finalize(d, fields, req.entryId, cid, undefined, rec.dedupe);
    return { kind: 'recorded', fields, recorded };
  }
  const lmMode: LastMomentMode = mode === 'close' ? 'close' : mode === 'flatten' ? 'flatten' : req.expectSign !== undefined ? 'entry' : 'exit';
  // the last-moment check (src/domain/last-moment.ts), run by the adapter right before the request goes out
  const beforeSend = async (): Promise<void> => {
    if (d.hooks.beforeOrderRequest) await d.hooks.beforeOrderRequest(cid);
    const read = await readLastMoment(d.redis, req.symbol);
    const v = lastMomentVerdict({ mode: lmMode, ...read, driftSig: req.driftSig, permitTsMs: req.permitTsMs, permitMaxAgeMs: d.cfg.permitMaxAgeMs, inflightTsMs: Number(rec.ts_ms), maxSendDelayMs: d.cfg.maxSendDelayMs, nowMs: Date.now() });
    if (!v.ok) throw new SendRefused(v.reason, v.detail);
    // entries: the price collar and the mark's age again, with the mark as it is now (docs/risk-controls.md#price-collar)
    if (lmMode === 'entry') await checkPriceAtSend(d.redis, req.symbol, req.refPrice, d.cfg.risk);
  };
  const outcome = await placeAndResolve(executorDeps(d), { symbol: req.symbol, side: req.side, qty: req.qty, reduceOnly: req.reduceOnly, clientOrderId: cid, beforeSend });
  if (outcome.kind === 'refused') {
    d.metrics.sendGated.inc({ symbol: req.symbol, reason: outcome.reason });
    d.logger.warn({ plan_id: req.planId, client_order_id: cid, reason: outcome.reason }, `${req.symbol}: plan ${req.planId} not sent: ${outcome.error}`);
  }
  if (d.hooks.afterSend) await d.hooks.afterSend(cid, d.signal);
  if (outcome.kind === 'unresolved') {
    d.logger.error({ plan_id: req.planId, client_order_id: cid, err: outcome.error }, `${req.symbol}: plan ${req.planId} order outcome unresolved; left in flight for the sweep`);
    return { kind: 'unresolved', error: outcome.error };
  }
  const { fields, fill } = outcomeFields(rec, cid, outcome);
  const recorded = await finalize(d, fields, req.entryId, cid, fill, rec.dedupe);
  return { kind: 'recorded', fields, recorded };
}
