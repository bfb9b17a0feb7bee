/**
 * The chaos checker's invariants (harness/chaos/invariants.ts) on hand-made order logs: each one finds the
 * violation it exists for, with its evidence, and passes a clean log. Plus the seeded RNG's determinism
 * and the option parser's refusals.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import type { PaperOrder } from '../../harness/paper-exchange/index.js';
import type { BadEntry, DriverPlan } from '../../harness/chaos/driver.js';
import { checkDeadLetters, checkResultMatchesFill, checkOneOrderPerPlan, checkPermitted, checkReduceOnly, checkResults, type OrderOwner } from '../../harness/chaos/invariants.js';
import { SeededRng } from '../../harness/chaos/rng.js';
import { parseChaosOptions } from '../../harness/chaos/options.js';
import { ConfigError } from '../../src/config/env.js';

let nextId = 1;
function order(o: Partial<PaperOrder> & Pick<PaperOrder, 'side' | 'executedQty'>): PaperOrder {
  return { orderId: nextId++, clientOrderId: 'manual', symbol: 'BTCUSDT', qty: o.executedQty, reduceOnly: false, status: 'FILLED', ts_ms: Date.now(), source: 'api', avgPrice: '100', ...o };
}
function plan(id: string, action: string, extra: Partial<DriverPlan> = {}): DriverPlan {
  return { plan_id: id, client_order_id: clientOrderIdFor(id), symbol: 'BTCUSDT', action, submitted_ms: 1000, acked: true, entry_ids: ['1-0'], duplicates: 0, resubmits: 0, last_submit_ms: 1000, durable: false, ...extra };
}
function owners(plans: DriverPlan[]): (cid: string) => OrderOwner | undefined {
  return (cid) => {
    const p = plans.find((x) => x.client_order_id === cid);
    return p ? { kind: 'plan', plan: p } : undefined;
  };
}

describe('chaos invariants', () => {
  it('one_order_per_plan: a client order id sent twice is a violation naming the plan and both orders', () => {
    const p = plan('p-1', 'PARTIAL_50');
    const a = order({ clientOrderId: p.client_order_id, side: 'SELL', executedQty: '0.001', reduceOnly: true });
    const b = order({ clientOrderId: p.client_order_id, side: 'SELL', executedQty: '0.001', reduceOnly: true });
    expect(checkOneOrderPerPlan([a], owners([p]))).toEqual([]);
    const vs = checkOneOrderPerPlan([a, b], owners([p]));
    expect(vs).toHaveLength(1);
    expect(vs[0]?.plan_ids).toEqual(['p-1']);
    expect(vs[0]?.order_ids).toEqual([String(a.orderId), String(b.orderId)]);
    // manual trades never count
    expect(checkOneOrderPerPlan([order({ source: 'admin', side: 'BUY', executedQty: '1' }), order({ source: 'admin', side: 'BUY', executedQty: '1' })], owners([]))).toEqual([]);
  });

  it('permitted: an order needs both permits seen ALLOW, or a published close; unknown and forged ids are violations', () => {
    const p = plan('p-2', 'OPEN');
    const o = order({ clientOrderId: p.client_order_id, side: 'BUY', executedQty: '0.002' });
    expect(checkPermitted([o], owners([p]), () => ({ governor: ['ALLOW'], p33: ['ALLOW'] }))).toEqual([]);
    expect(checkPermitted([o], owners([p]), () => ({ governor: ['ALLOW'], p33: ['DENY'] }))[0]?.message).toMatch(/p33: DENY/);
    expect(checkPermitted([o], owners([p]), () => undefined)[0]?.message).toMatch(/none seen/);
    expect(checkPermitted([order({ clientOrderId: 'p3-unknown', side: 'BUY', executedQty: '1' })], owners([]), () => undefined)[0]?.message).toMatch(/no plan of this run/);
    const forged: BadEntry = { kind: 'forged_plan', stream: 's', entry_id: '1-0', plan_id: 'f-1', client_order_id: clientOrderIdFor('f-1'), submitted_ms: 0, detail: 'wrong key' };
    const own = (cid: string): OrderOwner | undefined => (cid === forged.client_order_id ? { kind: 'bad', entry: forged } : undefined);
    expect(checkPermitted([order({ clientOrderId: forged.client_order_id ?? '', side: 'BUY', executedQty: '1' })], own, () => undefined)[0]?.plan_ids).toEqual(['f-1']);
  });

  it('reduce_only: a reduce-only order that grows or flips, an exit sent without reduceOnly, an entry that flips', () => {
    const open = plan('o', 'OPEN');
    const exit = plan('x', 'FULL_CLOSE');
    const inc = plan('i', 'INCREASE');
    const own = owners([open, exit, inc]);
    const opened = order({ clientOrderId: open.client_order_id, side: 'BUY', executedQty: '0.003' });
    // clean: open 0.003, manual +0.001, close 0.004 reduce-only
    expect(checkReduceOnly([opened, order({ source: 'admin', side: 'BUY', executedQty: '0.001' }), order({ clientOrderId: exit.client_order_id, side: 'SELL', executedQty: '0.004', reduceOnly: true })], own)).toEqual([]);
    // the close flips the position
    expect(checkReduceOnly([opened, order({ clientOrderId: exit.client_order_id, side: 'SELL', executedQty: '0.005', reduceOnly: true })], own)[0]?.message).toMatch(/0.003 -> -0.002/);
    // the close grows it
    expect(checkReduceOnly([opened, order({ clientOrderId: exit.client_order_id, side: 'BUY', executedQty: '0.001', reduceOnly: true })], own)[0]?.message).toMatch(/0.003 -> 0.004/);
    // an exit sent without the flag
    expect(checkReduceOnly([opened, order({ clientOrderId: exit.client_order_id, side: 'SELL', executedQty: '0.001' })], own)[0]?.message).toMatch(/without reduceOnly/);
    // an entry that flips
    const flip = checkReduceOnly([opened, order({ clientOrderId: inc.client_order_id, side: 'SELL', executedQty: '0.004' })], own);
    expect(flip[0]?.invariant).toBe('entry_no_flip');
    expect(flip[0]?.message).toMatch(/flipped the position 0.003 -> -0.001/);
  });

  it('reduce_only holds for any sequence of correct closes (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 100 })), { maxLength: 30 }), (steps) => {
        const orders: PaperOrder[] = [];
        let pos = 0;
        for (const [manual, pct] of steps) {
          if (manual !== 0) orders.push(order({ source: 'admin', side: manual > 0 ? 'BUY' : 'SELL', executedQty: (Math.abs(manual) / 1000).toFixed(3) }));
          pos += manual;
          const q = Math.floor((Math.abs(pos) * pct) / 100);
          if (q > 0) {
            orders.push(order({ clientOrderId: 'c', side: pos > 0 ? 'SELL' : 'BUY', executedQty: (q / 1000).toFixed(3), reduceOnly: true }));
            pos += pos > 0 ? -q : q;
          }
        }
        return checkReduceOnly(orders, () => undefined).length === 0;
      }),
    );
  });

  it('one_final_result, on the final state: two finals or none are violations; a lost result is listed; a recovered one passes', () => {
    const a = plan('a', 'OPEN', { submitted_ms: 10_000 });
    const finals = new Map([['a', [{ entry_id: '1', status: 'EXECUTED', reason: '' }, { entry_id: '2', status: 'SKIPPED', reason: 'x' }]]]);
    expect(checkResults([a], finals, () => false).violations[0]?.message).toMatch(/2 final results/);
    const dup = new Map([['a', [{ entry_id: '1', status: 'EXECUTED', reason: '' }, { entry_id: '2', status: 'DROPPED_DUPLICATE', reason: '' }]]]);
    expect(checkResults([a], dup, () => false).violations).toEqual([]);
    // none at the end: a violation, and a lost result, whether or not Redis crashed (the producer re-submits)
    const none = checkResults([a], new Map(), () => false);
    expect(none.violations).toHaveLength(1);
    expect(none.lost[0]?.plan_id).toBe('a');
    expect(none.lost[0]?.why).toMatch(/never written|ever written/);
    const lost = checkResults([a], new Map(), () => true);
    expect(lost.violations[0]?.message).toMatch(/lost by a Redis crash and not recovered/);
    expect(lost.lost).toHaveLength(1);
    // seen written, lost, and one final result again at the end (re-submitted, recovered from the exchange)
    const back = checkResults([a], new Map([['a', [{ entry_id: '3', status: 'EXECUTED', reason: 'recovered_from_exchange' }]]]), () => true);
    expect(back).toEqual({ violations: [], lost: [], recovered: ['a'] });
    expect(checkResults([{ ...a, acked: false }], new Map(), () => false).violations).toEqual([]);
  });

  it('result_matches_fill: a filled order needs an EXECUTED result with the same filled qty', () => {
    const p = plan('m', 'PARTIAL_50');
    const o = order({ clientOrderId: p.client_order_id, side: 'SELL', executedQty: '0.002', reduceOnly: true });
    const fin = (status: string, filled: string) => new Map([['m', [{ entry_id: '1', status, reason: '', filled_qty: filled }]]]);
    expect(checkResultMatchesFill([o], owners([p]), fin('EXECUTED', '0.002'))).toEqual([]);
    expect(checkResultMatchesFill([o], owners([p]), fin('EXECUTED', '0.001'))[0]?.message).toMatch(/filled_qty=0.001/);
    expect(checkResultMatchesFill([o], owners([p]), fin('FAILED', '0'))[0]?.order_ids).toEqual([String(o.orderId)]);
    // an order that filled nothing (partial fill of 0) may end FAILED not_filled
    expect(checkResultMatchesFill([{ ...o, executedQty: '0', status: 'EXPIRED' }], owners([p]), fin('FAILED', '0'))).toEqual([]);
  });

  it('dead_lettered: a bad entry missing from the DLQ is a violation unless Redis lost the entry itself', () => {
    const b: BadEntry = { kind: 'malformed', stream: 's', entry_id: '5-0', submitted_ms: 0, detail: 'not JSON' };
    expect(checkDeadLetters([b], () => new Set(['5-0']), () => true).violations).toEqual([]);
    expect(checkDeadLetters([b], () => new Set(), () => true).violations).toHaveLength(1);
    expect(checkDeadLetters([b], () => new Set(), () => false).lost).toHaveLength(1);
  });
});

describe('chaos seed and options', () => {
  it('the same seed gives the same draws; forks are independent of later parent draws', () => {
    const draw = (r: SeededRng) => Array.from({ length: 20 }, () => r.int(0, 1000));
    expect(draw(new SeededRng(7))).toEqual(draw(new SeededRng(7)));
    expect(draw(new SeededRng(7))).not.toEqual(draw(new SeededRng(8)));
    const a = new SeededRng(3);
    const fa = a.fork();
    const b = new SeededRng(3);
    const fb = b.fork();
    draw(b);
    expect(draw(fa)).toEqual(draw(fb));
  });

  it('options: defaults, a fault list, and refusals naming the option', () => {
    const o = parseChaosOptions({ json: false, keep: false }, () => 42);
    expect(o.seed).toBe(42);
    expect(o.faults.length).toBeGreaterThan(10);
    expect(o.faults).not.toContain('redis_crash_loss');
    expect(parseChaosOptions({ faults: 'all' }, () => 1).faults).toContain('redis_crash_loss');
    expect(parseChaosOptions({ faults: 'redis_kill,manual_trade', seed: '5' }, () => 1)).toMatchObject({ faults: ['redis_kill', 'manual_trade'], seed: 5 });
    expect(() => parseChaosOptions({ faults: 'nope' }, () => 1)).toThrow(ConfigError);
    expect(() => parseChaosOptions({ seconds: '0' }, () => 1)).toThrow(/--seconds/);
  });
});
