/**
 * The invariants of a chaos run (docs/architecture.md#faults-the-system-survives), as pure functions over what was observed. Each returns
 * violations with their evidence (plan ids, client order ids, exchange order ids).
 *
 * Invariants checked:
 * - `one_order_per_plan`: at most one exchange order per client order id (= per plan id, `clientOrderIdFor`);
 * - `permitted`: every order the exchange received from the API belongs to a plan the gates let through:
 *   EXECUTE with both permits seen ALLOW; RECONCILE_CLOSE published by an engine (MAC verified); FLATTEN
 *   signed by the operator; never a forged or malformed entry;
 * - `reduce_only`: replaying the order log (manual trades included) from flat, no reduce-only order grew
 *   |position| or flipped it, and every exit/close/flatten order was reduce-only;
 * - `entry_no_flip`: in the same replay, no entry (OPEN/INCREASE) crossed zero (docs/architecture.md#plans: "No entry ever
 *   flips a position");
 * - `one_final_result`: each acknowledged well-formed plan has exactly one final result (anything but
 *   DROPPED_DUPLICATE) in the final state, Redis crashes included (the strategy re-submits a plan whose
 *   result is missing or was lost; the apply layer recovers it from the exchange); a plan with none is also
 *   reported in `lost_results`;
 * - `result_matches_fill`: an order that filled has, as its plan's final result, EXECUTED with exactly the
 *   exchange's `executedQty` (the ledger and the engine's evidence follow the result: a FAILED result for a
 *   filled order would be a fill nobody accounts for);
 * - `dead_lettered`: every forged or malformed entry is in its stream's dead-letter stream;
 * - `converged`, `no_unexpected_death` (run.ts) and `rss_growth`: no service's RSS grew more than 20 % from minute 5
 *   of its process to the end (rss.ts).
 */
import { Decimal, parseDecimal, signOf } from '../../src/domain/decimal.js';
import type { PaperOrder } from '../paper-exchange/index.js';
import type { BadEntry, DriverPlan } from './driver.js';
import type { PermitsSeen, PublishedPlan } from './observer.js';

/** Names of the invariants, in report order. */
export const INVARIANTS = ['one_order_per_plan', 'permitted', 'reduce_only', 'entry_no_flip', 'one_final_result', 'result_matches_fill', 'dead_lettered', 'converged', 'no_unexpected_death', 'rss_growth'] as const;
/** One of {@link INVARIANTS}. */
export type InvariantName = (typeof INVARIANTS)[number];

/** One violation with its evidence. */
export interface Violation {
  invariant: InvariantName;
  /** What went wrong, in one line. */
  message: string;
  plan_ids: string[];
  client_order_ids: string[];
  order_ids: string[];
  /** Epoch ms when the harness first saw it (continuous checks), else when the final check ran. */
  detected_ms?: number;
}

/** What a client order id belongs to. */
export type OrderOwner =
  | { kind: 'plan'; plan: DriverPlan }
  | { kind: 'published'; plan: PublishedPlan }
  | { kind: 'bad'; entry: BadEntry };

/** Exit actions: their orders must be reduce-only. */
const EXIT_ACTIONS = new Set(['FULL_CLOSE', 'PARTIAL_75', 'PARTIAL_50', 'PARTIAL_25', 'REDUCE']);

const v = (invariant: InvariantName, message: string, e: Partial<Pick<Violation, 'plan_ids' | 'client_order_ids' | 'order_ids'>> = {}): Violation => ({
  invariant,
  message,
  plan_ids: e.plan_ids ?? [],
  client_order_ids: e.client_order_ids ?? [],
  order_ids: e.order_ids ?? [],
});

/** Orders sent through the API (not manual trades), in arrival order. */
export function apiOrders(orders: PaperOrder[]): PaperOrder[] {
  return orders.filter((o) => o.source === 'api').sort((a, b) => a.orderId - b.orderId);
}

/** `one_order_per_plan`: client order ids that reached the exchange more than once (any status). */
export function checkOneOrderPerPlan(orders: PaperOrder[], owner: (cid: string) => OrderOwner | undefined): Violation[] {
  const byCid = new Map<string, PaperOrder[]>();
  for (const o of apiOrders(orders)) byCid.set(o.clientOrderId, [...(byCid.get(o.clientOrderId) ?? []), o]);
  const out: Violation[] = [];
  for (const [cid, list] of byCid) {
    if (list.length <= 1) continue;
    const own = owner(cid);
    const planId = own?.kind === 'plan' ? own.plan.plan_id : own?.kind === 'published' ? own.plan.plan_id : own?.kind === 'bad' ? (own.entry.plan_id ?? '') : '';
    const what = list.map((o) => `${o.side} ${o.qty} ${o.status} filled ${o.executedQty} at ${new Date(o.ts_ms).toISOString()}`).join('; ');
    out.push(v('one_order_per_plan', `${list[0]?.symbol}: ${list.length} orders for client order id ${cid}${planId ? ` (plan ${planId})` : ''}: ${what}`, { plan_ids: planId ? [planId] : [], client_order_ids: [cid], order_ids: list.map((o) => String(o.orderId)) }));
  }
  return out;
}

/** `permitted`: every API order belongs to a plan the gates allowed (see the module comment). */
export function checkPermitted(orders: PaperOrder[], owner: (cid: string) => OrderOwner | undefined, permits: (planId: string) => PermitsSeen | undefined): Violation[] {
  const out: Violation[] = [];
  const seen = new Set<string>();
  for (const o of apiOrders(orders)) {
    if (seen.has(o.clientOrderId)) continue; // duplicates are reported by one_order_per_plan
    seen.add(o.clientOrderId);
    const ev = { client_order_ids: [o.clientOrderId], order_ids: [String(o.orderId)] };
    const own = owner(o.clientOrderId);
    if (!own) {
      out.push(v('permitted', `${o.symbol}: order ${o.orderId} (${o.side} ${o.qty}) has a client order id no plan of this run maps to`, ev));
      continue;
    }
    if (own.kind === 'bad') {
      out.push(v('permitted', `${o.symbol}: order ${o.orderId} executed a ${own.entry.kind} entry (${own.entry.detail})`, { ...ev, plan_ids: own.entry.plan_id ? [own.entry.plan_id] : [] }));
      continue;
    }
    if (own.kind === 'published') continue; // an engine's MAC-verified close or an operator's FLATTEN
    const p = permits(own.plan.plan_id);
    const gov = p?.governor ?? [];
    const p33 = p?.p33 ?? [];
    if (!gov.includes('ALLOW') || !p33.includes('ALLOW')) {
      out.push(
        v('permitted', `${o.symbol}: order ${o.orderId} of plan ${own.plan.plan_id} (${own.plan.action}) without both permits seen ALLOW (governor: ${gov.join('/') || 'none seen'}, p33: ${p33.join('/') || 'none seen'})`, {
          ...ev,
          plan_ids: [own.plan.plan_id],
        }),
      );
    }
  }
  return out;
}

/**
 * `reduce_only`: replays every filled order (manual trades included) from flat positions, in arrival
 * order: a reduce-only order never grows |position| nor flips it; exit/close/flatten orders are reduce-only;
 * an entry (OPEN/INCREASE) never flips a position.
 * @param initial signed starting positions (default flat)
 */
export function checkReduceOnly(orders: PaperOrder[], owner: (cid: string) => OrderOwner | undefined, initial: Record<string, string> = {}): Violation[] {
  const out: Violation[] = [];
  const pos = new Map<string, Decimal>();
  for (const [s, a] of Object.entries(initial)) pos.set(s, parseDecimal(a) ?? new Decimal(0));
  for (const o of [...orders].sort((a, b) => a.orderId - b.orderId)) {
    if (o.status === 'REJECTED') continue;
    const q = parseDecimal(o.executedQty) ?? new Decimal(0);
    const before = pos.get(o.symbol) ?? new Decimal(0);
    const after = o.side === 'BUY' ? before.plus(q) : before.minus(q);
    pos.set(o.symbol, after);
    if (o.source !== 'api' || q.lte(0)) continue;
    const ev = { client_order_ids: [o.clientOrderId], order_ids: [String(o.orderId)] };
    const own = owner(o.clientOrderId);
    const planId = own?.kind === 'plan' || own?.kind === 'published' ? own.plan.plan_id : undefined;
    const e = { ...ev, plan_ids: planId ? [planId] : [] };
    const flipped = signOf(before) * signOf(after) < 0 || (before.isZero() && o.reduceOnly);
    if (o.reduceOnly && (after.abs().gt(before.abs()) || flipped)) {
      out.push(v('reduce_only', `${o.symbol}: reduce-only order ${o.orderId} (${o.side} ${o.executedQty}) moved the position ${before.toFixed()} -> ${after.toFixed()}`, e));
    }
    const mustReduce = own?.kind === 'published' || (own?.kind === 'plan' && EXIT_ACTIONS.has(own.plan.action));
    if (mustReduce && !o.reduceOnly) out.push(v('reduce_only', `${o.symbol}: order ${o.orderId} of an exit/close plan ${planId} sent without reduceOnly`, e));
    if (own?.kind === 'plan' && (own.plan.action === 'OPEN' || own.plan.action === 'INCREASE') && signOf(before) * signOf(after) < 0) {
      out.push(v('entry_no_flip', `${o.symbol}: entry order ${o.orderId} (${own.plan.action} ${o.side} ${o.executedQty}) flipped the position ${before.toFixed()} -> ${after.toFixed()}`, e));
    }
  }
  return out;
}

/** A plan's results in the final `quantum:stream:apply.result`. */
export interface FinalResult {
  entry_id: string;
  status: string;
  reason: string;
  /** `filled_qty` of the result (base asset, unsigned). */
  filled_qty?: string;
}

/** `result_matches_fill`: see the module comment. Orders whose plan has no final result are left to `one_final_result`. */
export function checkResultMatchesFill(orders: PaperOrder[], owner: (cid: string) => OrderOwner | undefined, finals: Map<string, FinalResult[]>): Violation[] {
  const out: Violation[] = [];
  for (const o of apiOrders(orders)) {
    const q = parseDecimal(o.executedQty) ?? new Decimal(0);
    if (q.lte(0)) continue;
    const own = owner(o.clientOrderId);
    if (!own || own.kind === 'bad') continue;
    const planId = own.plan.plan_id;
    const rs = (finals.get(planId) ?? []).filter((r) => r.status !== 'DROPPED_DUPLICATE');
    if (rs.length !== 1) continue;
    const r = rs[0] as FinalResult;
    const filled = parseDecimal(r.filled_qty ?? '');
    if (r.status === 'EXECUTED' && filled !== null && filled.eq(q)) continue;
    out.push(v('result_matches_fill', `${o.symbol}: order ${o.orderId} of plan ${planId} filled ${o.executedQty} on the exchange but its result is ${r.status}${r.reason ? `/${r.reason}` : ''} filled_qty=${r.filled_qty ?? '?'} (${r.entry_id})`, { plan_ids: [planId], client_order_ids: [o.clientOrderId], order_ids: [String(o.orderId)] }));
  }
  return out;
}

/** Outcome of {@link checkResults}. */
export interface ResultsCheck {
  violations: Violation[];
  /** Plans without a final result in the final state (each also a `one_final_result` violation). */
  lost: Array<{ plan_id: string; why: string }>;
  /** Plans whose final result Redis lost in a crash and that have exactly one again (re-submitted, recovered). */
  recovered: string[];
}

/**
 * `one_final_result` over the acknowledged driver plans, judged on the FINAL state of
 * `quantum:stream:apply.result` (the producer re-submits plans whose result is missing or was lost, driver.ts):
 * more than one final result, or none, is a violation; a plan with none is also listed in `lost` (with
 * whether its result had been seen written and was then lost by a Redis crash).
 * @param lostSeen true when a final result of the plan was seen written and later found gone from Redis
 */
export function checkResults(plans: DriverPlan[], finals: Map<string, FinalResult[]>, lostSeen: (planId: string) => boolean): ResultsCheck {
  const violations: Violation[] = [];
  const lost: ResultsCheck['lost'] = [];
  const recovered: string[] = [];
  for (const p of plans) {
    if (!p.acked) continue;
    const rs = (finals.get(p.plan_id) ?? []).filter((r) => r.status !== 'DROPPED_DUPLICATE');
    if (rs.length > 1) {
      violations.push(v('one_final_result', `${p.symbol}: plan ${p.plan_id} (${p.action}) has ${rs.length} final results: ${rs.map((r) => `${r.status}${r.reason ? `/${r.reason}` : ''} (${r.entry_id})`).join(', ')}`, { plan_ids: [p.plan_id], client_order_ids: [p.client_order_id] }));
    } else if (rs.length === 0) {
      const why = lostSeen(p.plan_id) ? 'its final result was written, lost by a Redis crash and not recovered' : 'no final result was ever written';
      lost.push({ plan_id: p.plan_id, why });
      violations.push(v('one_final_result', `${p.symbol}: plan ${p.plan_id} (${p.action}, submitted ${new Date(p.submitted_ms).toISOString()}, ${p.resubmits ?? 0} re-submission(s)) has no final result in the final state: ${why}`, { plan_ids: [p.plan_id], client_order_ids: [p.client_order_id] }));
    } else if (lostSeen(p.plan_id)) recovered.push(p.plan_id);
  }
  return { violations, lost, recovered };
}

/** Outcome of {@link checkDeadLetters}. */
export interface DeadLetterCheck {
  violations: Violation[];
  /** Bad entries that Redis lost with a crash before any consumer read them (not in the stream any more). */
  lost: Array<{ entry_id: string; why: string }>;
}

/**
 * `dead_lettered`: each forged or malformed entry is in `<stream>.dlq` (`dlq_source_id` = its id).
 * @param dlqSources ids found per stream's dead-letter stream
 * @param stillInStream true when the entry still exists in its stream (false: Redis lost it)
 */
export function checkDeadLetters(bad: BadEntry[], dlqSources: (stream: string) => Set<string>, stillInStream: (b: BadEntry) => boolean): DeadLetterCheck {
  const violations: Violation[] = [];
  const lost: DeadLetterCheck['lost'] = [];
  for (const b of bad) {
    if (dlqSources(b.stream).has(b.entry_id)) continue;
    if (!stillInStream(b)) {
      lost.push({ entry_id: b.entry_id, why: `${b.kind} entry no longer in ${b.stream} (lost by a Redis crash before any consumer read it)` });
      continue;
    }
    violations.push(v('dead_lettered', `${b.kind} entry ${b.entry_id} on ${b.stream} (${b.detail}) is not in ${b.stream}.dlq`, { plan_ids: b.plan_id ? [b.plan_id] : [] }));
  }
  return { violations, lost };
}
