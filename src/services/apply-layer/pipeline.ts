/**
 * The exactly-once pipeline shared by the plan consumer and the RECONCILE_CLOSE consumer: result
 * building, recording (fenced, atomic), sending through the executor, and resolution of orders left
 * in flight (redelivered entries, restart, the periodic in-flight sweep).
 */
import { randomUUID } from 'node:crypto';
import type { MarketOrderRequest, OrderInfo } from '../../ports/exchange.js';
import { fmt, Decimal } from '../../domain/decimal.js';
import { clientOrderIdFor, dedupeValue, fencedEntryVerdict, parseDedupe, signedFill } from '../../domain/apply.js';
import type { ApplyResultFields, ResultStatus } from '../../domain/result.js';
import type { SendGateReason } from '../../domain/send-gate.js';
import { keys } from '../../adapters/redis/keys.js';
import { HandedOver } from '../../adapters/redis/consumer.js';
import { sleep } from '../../lib/sleep.js';
import { lookupFinalOnce, placeAndResolve, resolveByLookup, type ExecutorDeps, type OrderOutcome } from './executor.js';
import { beginSend, dropPending, keepInflight, pendingOrders, readLastMoment, readOrderRecord, recordResult, publishResultOnly, type OrderRecord } from './store.js';
import { lastMomentVerdict, type LastMomentMode } from '../../domain/last-moment.js';
import { checkPriceAtSend } from './price-at-send.js';
import { SendRefused } from '../../adapters/exchange/errors.js';
import { takePriorCheck, waitReplicas, type PriorCheck } from './claim-durability.js';

export type { ApplyDeps, ApplyHooks } from './deps.js';
import type { ApplyDeps } from './deps.js';

/** A fresh owner token for one processing attempt (`<instance>:<random>`; never contains `|`). */
export function newToken(instanceId: string): string {
  return `${instanceId.replace(/\|/g, '_')}:${randomUUID().slice(0, 8)}`;
}

/** A result with every field present (strings), defaults for what is unknown. */
export function resultFields(p: Partial<ApplyResultFields> & Pick<ApplyResultFields, 'plan_id' | 'symbol' | 'decision' | 'status'>): ApplyResultFields {
  return {
    executed: 'false',
    would_execute: 'false',
    side: '',
    qty: '',
    filled_qty: '0',
    avg_price: '',
    order_id: '',
    client_order_id: '',
    error: '',
    dedupe_hit: 'false',
    reason: '',
    ts_ms: String(Date.now()),
    ...p,
  };
}

/** Counts and logs one result (one line per result). */
export function reportResult(d: ApplyDeps, f: ApplyResultFields, extra: Record<string, unknown> = {}): void {
  d.metrics.results.inc({ symbol: f.symbol, status: f.status });
  const line = `${f.symbol}: plan ${f.plan_id} ${f.decision} -> ${f.status}${f.reason ? ` reason=${f.reason}` : ''} executed=${f.executed}${f.order_id ? ` order_id=${f.order_id}` : ''}${f.error ? ` error=${f.error}` : ''}`;
  const lvl = f.status === 'FAILED' || f.status === 'REJECTED_GUARDRAIL' || f.status === 'REJECTED_INVALID' ? 'warn' : 'info';
  d.logger[lvl]({ result: f, ...extra }, line);
}

/** Publishes a result without recording anything (no dedupe stage owned: duplicates, unverifiable entries). */
export async function publishOnly(d: ApplyDeps, f: ApplyResultFields): Promise<void> {
  await publishResultOnly(d.redis, f);
  reportResult(d, f);
}

/**
 * Takes the pre-send query of the claim `claimedValue` (claim-durability.ts) and, when the exchange already
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
  const rec: OrderRecord = {
    plan_id: check.planId,
    entry_id: check.entryId,
    symbol: check.symbol,
    side: order.side,
    qty: fmt(order.qty),
    reduce_only: order.reduceOnly ? 'true' : 'false',
    decision: check.decision,
    dedupe: claimedValue,
    ts_ms: String(tsMs),
    ...(check.basisAmt !== undefined ? { basis_amt: check.basisAmt } : {}),
  };
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
  const raw = await d.redis.get(keys.applyDedupe(planId));
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

function executorDeps(d: ApplyDeps): ExecutorDeps {
  if (!d.gateway) throw new Error('no exchange gateway (dry_run)');
  return { gateway: d.gateway, logger: d.logger, metrics: d.metrics, lookupAttempts: d.cfg.lookupAttempts, lookupBackoffMs: d.cfg.lookupBackoffMs, signal: d.signal };
}

/** Result fields of an order outcome. */
export function outcomeFields(rec: OrderRecord, cid: string, o: Exclude<OrderOutcome, { kind: 'unresolved' }>): { fields: ApplyResultFields; fill?: Decimal } {
  const base = { plan_id: rec.plan_id, symbol: rec.symbol, decision: rec.decision, side: rec.side, qty: rec.qty, client_order_id: cid, would_execute: 'true' as const, ts_ms: String(o.tsMs), ...(rec.basis_amt ? { basis_amt: rec.basis_amt } : {}) };
  if (o.kind === 'rate_limited') return { fields: resultFields({ ...base, status: 'RETRYABLE_RATE_LIMIT', reason: 'rate_limited', error: `RETRYABLE_RATE_LIMIT: ${o.error}` }) };
  if (o.kind === 'refused') return { fields: resultFields({ ...base, status: 'SKIPPED', reason: o.reason, error: `not sent: ${o.error}` }) };
  if (o.kind === 'not_executed') return { fields: resultFields({ ...base, status: 'FAILED', reason: o.notFound ? 'order_not_found' : 'order_failed', error: o.error }) };
  const filled = o.order.filledQty;
  const avg = o.order.avgPrice ? fmt(o.order.avgPrice) : '';
  if (filled.lte(0)) {
    return { fields: resultFields({ ...base, status: 'FAILED', reason: 'not_filled', order_id: o.order.orderId, avg_price: avg, error: `order ${o.order.orderId} status ${o.order.status} without fill` }) };
  }
  // A MARKET order cut short (Binance status EXPIRED with a partial fill): EXECUTED with exactly what filled,
  // reason partial_fill; the ledger (EXECUTE) follows `filled_qty`, never the ordered qty.
  const ordered = new Decimal(rec.qty || '0');
  const partial = filled.lt(ordered);
  const reason = partial ? 'partial_fill' : o.via === 'lookup' ? 'resolved_by_lookup' : '';
  const fields = resultFields({ ...base, status: 'EXECUTED', executed: 'true', filled_qty: fmt(filled), avg_price: avg, order_id: o.order.orderId, reason, ...(partial ? { error: `order ${o.order.orderId} ${o.order.status}: filled ${fmt(filled)} of ${rec.qty}` } : {}) });
  return { fields, fill: rec.decision === 'EXECUTE' ? signedFill(rec.side, filled) : undefined };
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
  // the claim's pre-send query (claim-durability.ts): an order already at the exchange is recorded, never sent again
  const prior = await recoverPriorOrder(d, req.claimedValue);
  if (prior) return { kind: 'recorded', ...prior };
  const mode = req.decision === 'RECONCILE_CLOSE' ? 'close' : req.decision === 'FLATTEN' ? 'flatten' : 'execute';
  const cid = clientOrderIdFor(req.planId);
  const rec: OrderRecord = {
    plan_id: req.planId,
    entry_id: req.entryId,
    symbol: req.symbol,
    side: req.side,
    qty: fmt(req.qty),
    reduce_only: req.reduceOnly ? 'true' : 'false',
    decision: req.decision,
    dedupe: dedupeValue('sending', req.entryId, req.token),
    ts_ms: String(Date.now()),
    ...(req.basisAmt !== undefined ? { basis_amt: req.basisAmt } : {}),
  };
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

/**
 * Resolves an order left in flight (stage `sending`) by client order id, never by sending again, and
 * records it. An order the exchange already reports final is recorded at once; otherwise waits until the
 * order is `inflightSettleMs` old (so no request of it can still arrive) before lookups may end in "not found".
 * @returns the recorded fields, or null when there was nothing to do / it stays unresolved
 */
export async function resolveInflight(d: ApplyDeps, cid: string): Promise<ApplyResultFields | null> {
  const rec = await readOrderRecord(d.redis, cid);
  if (!rec) {
    await dropPending(d.redis, cid);
    return null;
  }
  const dedupeRaw = await d.redis.get(keys.applyDedupe(rec.plan_id));
  const stage = parseDedupe(dedupeRaw);
  if (!stage || stage.stage !== 'sending') {
    // already recorded (or never got to send): nothing in flight any more
    await d.redis.multi().zrem(keys.applyPending(), cid).hdel(keys.applyInflight(rec.symbol), cid).exec();
    return null;
  }
  if (!d.gateway) return null;
  // still unresolved: keep it in flight (its hash's TTL must not lapse while the outcome is unknown)
  await keepInflight(d.redis, rec, cid, dedupeRaw ?? '', d.cfg.inflightTtlSec);
  const age = Date.now() - Number(rec.ts_ms);
  // An order found already final needs no settle time (a takeover after kill -9 resolves in
  // seconds); "not found" only counts once the order is old enough that no request of it can still arrive.
  let outcome = age < d.cfg.inflightSettleMs ? await lookupFinalOnce(executorDeps(d), rec.symbol, cid) : null;
  if (!outcome) {
    const left = d.cfg.inflightSettleMs - (Date.now() - Number(rec.ts_ms));
    if (left > 0) await sleep(left, d.signal);
    if (d.signal.aborted) return null;
    d.logger.info({ plan_id: rec.plan_id, client_order_id: cid }, `${rec.symbol}: resolving in-flight order of plan ${rec.plan_id} by client order id`);
    outcome = await resolveByLookup(executorDeps(d), rec.symbol, cid);
  }
  if (outcome.kind === 'unresolved') return null;
  const { fields, fill } = outcomeFields(rec, cid, outcome);
  let ok: boolean;
  try {
    ok = await finalize(d, fields, rec.entry_id, cid, fill, dedupeRaw ?? '');
  } catch (err) {
    if (err instanceof HandedOver) return null; // another consumer holds the plan now: its work, not this sweep's
    throw err;
  }
  if (ok && fields.decision === 'RECONCILE_CLOSE') d.metrics.closeExecuted.inc({ symbol: rec.symbol, status: fields.status === 'EXECUTED' ? 'success' : 'error' });
  return ok ? fields : null;
}

/** One pass of the in-flight sweep: every order sent more than `inflightSettleMs` ago and not recorded. */
export async function sweepInflight(d: ApplyDeps): Promise<number> {
  const cids = new Set(await pendingOrders(d.redis, Date.now() - d.cfg.inflightSettleMs));
  for (const sym of d.cfg.allowlist) {
    const h = await d.redis.hgetall(keys.applyInflight(sym));
    for (const [cid, ts] of Object.entries(h)) if (Date.now() - Number(ts) >= d.cfg.inflightSettleMs) cids.add(cid);
  }
  let n = 0;
  for (const cid of cids) {
    if (d.signal.aborted) break;
    if (await resolveInflight(d, cid)) n++;
  }
  return n;
}

export type { ResultStatus };
