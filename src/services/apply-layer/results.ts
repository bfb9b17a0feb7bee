/**
 * The last step of the apply layer's staircase (see index.ts): the result of a plan. Builds the result
 * fields (of a refusal, or of an order's outcome), counts and logs every result, and publishes a result
 * that records nothing (duplicates, unverified entries). Recording a result under the plan's claim is the
 * record step's (record/record.ts).
 */
import { fmt, Decimal } from '../../domain/decimal.js';
import { signedFill } from '../../domain/apply.js';
import type { ApplyResultFields } from '../../domain/result.js';
import type { OrderOutcome } from './executor.js';
import { publishResultOnly, type OrderRecord } from './store.js';
import type { ApplyDeps } from './deps.js';

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
