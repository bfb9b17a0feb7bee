/**
 * Orders left in flight (stage `sending`: a crash between send and record, an outcome the executor could
 * not resolve, a redelivered entry whose order was already sent): resolved by client order id, never sent
 * again, and recorded (record/record.ts). The in-flight sweep runs at start and every
 * `APPLY_INFLIGHT_SWEEP_MS` (index.ts) over every order sent more than `APPLY_INFLIGHT_SETTLE_MS` ago.
 */
import { parseDedupe } from '../../../domain/apply.js';
import type { ApplyResultFields } from '../../../domain/result.js';
import { HandedOver } from '../../../adapters/redis/consumer.js';
import { sleep } from '../../../lib/sleep.js';
import { lookupFinalOnce, resolveByLookup } from '../executor.js';
import { dropPending, endInflight, inflightOrders, keepInflight, pendingOrders, readDedupe, readOrderRecord } from '../store.js';
import { executorDeps, type ApplyDeps } from '../deps.js';
import { outcomeFields } from '../results.js';
import { finalize } from '../record/record.js';

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
  const dedupeRaw = await readDedupe(d.redis, rec.plan_id);
  const stage = parseDedupe(dedupeRaw);
  if (!stage || stage.stage !== 'sending') {
    // already recorded (or never got to send): nothing in flight any more
    await endInflight(d.redis, rec.symbol, cid);
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
    const h = await inflightOrders(d.redis, sym);
    for (const [cid, ts] of Object.entries(h)) if (Date.now() - Number(ts) >= d.cfg.inflightSettleMs) cids.add(cid);
  }
  let n = 0;
  for (const cid of cids) {
    if (d.signal.aborted) break;
    if (await resolveInflight(d, cid)) n++;
  }
  return n;
}
