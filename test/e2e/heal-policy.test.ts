/**
 * End to end (docs/architecture.md#heal-target, docs/architecture.md#risk-limits-and-trading-states): the heal policy against the paper exchange through
 * the real ccxt gateway, with THREE reconcile engines and TWO apply layers on one Redis.
 * - a shortfall (exchange 0.098 vs ledger 0.1) heals with ONE close of |ex| (never seed 003's stepping-down);
 * - an excess (1.2 vs 1.0) heals with one close of 0.2;
 * - the same manual trade made twice heals twice, the second time as the first (episode signatures);
 * - a close cut short by the exchange (partial fill) leaves a smaller drift that the next close heals;
 * - under HALTED no close reaches the exchange (MANUAL_REQUIRED), and `p3 flatten` still flattens, once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keys } from '../../src/adapters/redis/keys.js';
import { setTradingState } from '../../src/services/governor/trading-state.js';
import { submitFlatten } from '../../src/plans/flatten.js';
import { adminFaults, adminPositions, adminTrade, clearFaults } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { STACK_KEYS, startStack, type Stack } from './stack.js';

let s: Stack;

beforeAll(async () => {
  s = await startStack({
    positions: { BTCUSDT: '0.098', ETHUSDT: '1.2', BNBUSDT: '0.5', SOLUSDT: '2', XRPUSDT: '0.3' },
    ledgers: { BTCUSDT: '0.1', ETHUSDT: '1.0', BNBUSDT: '0.5', SOLUSDT: '2', XRPUSDT: '0.3' },
    engines: 3,
    applies: 2,
  });
});
afterAll(async () => {
  await s?.stop();
});

const closes = async (sym: string) => (await s.closeOrders(sym)).map((o) => `${o.side} ${o.qty} ${o.status}${o.status === 'EXPIRED' ? ` ${o.executedQty}` : ''}`);

describe('heal policy flatten (default), 3 engines and 2 apply layers', () => {
  it('shortfall 0.098 vs ledger 0.1: exactly one close SELL 0.098, ledger flat, hold cleared', async () => {
    await waitFor(async () => (await s.events('HOLD_CLEARED', 'BTCUSDT')).length > 0 && (await s.healed('BTCUSDT')), 30_000, 50, 'BTCUSDT healed');
    expect(await closes('BTCUSDT')).toEqual(['SELL 0.098 FILLED']);
    expect((await adminPositions(s.paper.url)).BTCUSDT?.positionAmt).toBe('0');
    expect(await s.redis.hgetall(keys.ledger('BTCUSDT'))).toMatchObject({ ledger_amt: '0', ledger_side: 'FLAT' });
  });

  it('excess 1.2 vs ledger 1.0: exactly one close SELL 0.2, ledger kept', async () => {
    await waitFor(async () => (await s.events('HOLD_CLEARED', 'ETHUSDT')).length > 0 && (await s.healed('ETHUSDT')), 30_000, 50, 'ETHUSDT healed');
    expect(await closes('ETHUSDT')).toEqual(['SELL 0.2 FILLED']);
    expect((await adminPositions(s.paper.url)).ETHUSDT?.positionAmt).toBe('1');
    expect((await s.redis.hgetall(keys.ledger('ETHUSDT'))).ledger_amt).toBe('1.0');
  });

  it('the same manual trade made twice heals twice, each with one close, the second as promptly as the first', async () => {
    const cleared0 = (await s.events('HOLD_CLEARED', 'BNBUSDT')).length; // a startup missing_exchange hold may have come and gone
    await adminTrade(s.paper.url, 'BNBUSDT', 'BUY', '0.005');
    await waitFor(async () => (await s.events('HOLD_SET', 'BNBUSDT')).some((e) => e.reason === 'qty_mismatch_no_evidence'), 30_000, 25, 'first hold');
    await waitFor(async () => (await s.events('HOLD_CLEARED', 'BNBUSDT')).length > cleared0 && (await s.healed('BNBUSDT')), 30_000, 25, 'first episode healed');
    const sig1 = (await s.events('HOLD_SET', 'BNBUSDT')).at(-1)?.hold_sig;
    const cleared1 = (await s.events('HOLD_CLEARED', 'BNBUSDT')).length;
    await adminTrade(s.paper.url, 'BNBUSDT', 'BUY', '0.005');
    // a new episode: a new hold signature (same amounts), not the healed one's cooldown or close marker
    // (those would hold it for the 120 s cooldown bucket or the 300 s marker: far beyond these waits)
    await waitFor(async () => (await s.events('HOLD_SET', 'BNBUSDT')).some((e) => e.hold_sig !== sig1 && e.reason === 'qty_mismatch_no_evidence'), 20_000, 25, 'second hold');
    await waitFor(async () => (await s.events('HOLD_CLEARED', 'BNBUSDT')).length > cleared1 && (await s.healed('BNBUSDT')), 20_000, 25, 'second episode healed');
    expect(await closes('BNBUSDT')).toEqual(['SELL 0.005 FILLED', 'SELL 0.005 FILLED']);
    // one close published per episode and cooldown bucket, whichever engine sees it first (never once per
    // engine: no plan id twice). Not an exact count: an episode whose close is not sent yet when a 120 s
    // cooldown bucket ends is legitimately published again in the next bucket (a new plan id, which the apply
    // layer skips; the orders above are exact), and a loaded machine widens that window
    const published = await s.events('RECONCILE_CLOSE_PUBLISHED', 'BNBUSDT');
    expect(new Set(published.map((e) => e.plan_id)).size, JSON.stringify(published)).toBe(published.length);
    expect(new Set(published.map((e) => e.drift_sig)).size, JSON.stringify(published)).toBe(2);
    expect((await adminPositions(s.paper.url)).BNBUSDT?.positionAmt).toBe('0.5');
  });

  it('a close cut short by the exchange (partial fill) leaves a smaller drift that the next close heals', async () => {
    await adminFaults(s.paper.url, { kind: 'partial_fill', fill_ratio: 0.4, count: 1 });
    await adminTrade(s.paper.url, 'SOLUSDT', 'BUY', '0.5');
    await waitFor(async () => (await s.closeOrders('SOLUSDT')).length >= 2 && (await s.healed('SOLUSDT')), 30_000, 25, 'SOLUSDT healed after the partial close');
    expect(await closes('SOLUSDT')).toEqual(['SELL 0.5 EXPIRED 0.2', 'SELL 0.3 FILLED']);
    expect((await adminPositions(s.paper.url)).SOLUSDT?.positionAmt).toBe('2');
    const results = (await s.redis.xrange('quantum:stream:apply.result', '-', '+')).map(([, f]) => Object.fromEntries(f.reduce<string[][]>((a, v, i) => (i % 2 ? (a[a.length - 1]!.push(v), a) : [...a, [v]]), [])) as Record<string, string>).filter((r) => r.symbol === 'SOLUSDT');
    // the executed closes only: with 3 engines and 2 apply layers, a close republished in the next cooldown
    // bucket or delivered to both apply layers legitimately ends SKIPPED (close_superseded, order_in_flight,
    // ...) or DROPPED_DUPLICATE, without an order (the orders are asserted exactly above)
    const line = (r: Record<string, string>) => `${r.status} ${r.reason} ${r.filled_qty}/${r.qty}`;
    expect(results.filter((r) => r.status === 'EXECUTED').map(line), results.map(line).join('\n')).toEqual(['EXECUTED partial_fill 0.2/0.5', 'EXECUTED  0.3/0.3']);
    expect((await s.redis.hgetall(keys.ledger('SOLUSDT'))).ledger_amt).toBe('2');
    await clearFaults(s.paper.url);
  });

  it('HALTED: no close reaches the exchange (MANUAL_REQUIRED); p3 flatten still flattens with one order', async () => {
    await setTradingState(s.redis, { state: 'HALTED', reason: 'e2e kill switch', by: 'test' });
    await adminTrade(s.paper.url, 'XRPUSDT', 'BUY', '0.1');
    await waitFor(async () => (await s.redis.hget(keys.reconcileState('XRPUSDT'), 'status')) === 'MANUAL_REQUIRED', 20_000, 25, 'MANUAL_REQUIRED');
    expect(await s.redis.hget(keys.reconcileState('XRPUSDT'), 'reason')).toBe('qty_mismatch_no_evidence');
    expect(await s.redis.exists(keys.hold('XRPUSDT'))).toBe(1);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await closes('XRPUSDT')).toEqual([]);
    expect((await s.events('MANUAL_REQUIRED', 'XRPUSDT')).length).toBe(1);

    const { planId } = await submitFlatten(s.redis, { symbol: 'XRPUSDT', reason: 'exchange misbehaving', by: 'cli:test@host', nowMs: Date.now() }, STACK_KEYS.P3_KEY_OPERATOR);
    await waitFor(async () => (await adminPositions(s.paper.url)).XRPUSDT?.positionAmt === '0', 40_000, 25, 'flat');
    expect(await closes('XRPUSDT')).toEqual(['SELL 0.4 FILLED']);
    const executed = await waitFor(async () => {
      const e = await s.events('FLATTEN_EXECUTED', 'XRPUSDT');
      return e.length > 0 ? e : null;
    }, 20_000, 25, 'FLATTEN_EXECUTED');
    expect(executed).toHaveLength(1);
    expect(executed[0]).toMatchObject({ plan_id: planId, requested_by: 'cli:test@host: exchange misbehaving', exchange_amt_after: '0' });
    expect(await s.events('FLATTEN_REQUESTED', 'XRPUSDT')).toHaveLength(1);
    // the ledger follows the fill: flat once the engine sees the flat exchange after our flatten
    await waitFor(async () => (await s.redis.hget(keys.ledger('XRPUSDT'), 'ledger_amt')) === '0', 20_000, 25, 'ledger flat');
    await waitFor(() => s.healed('XRPUSDT'), 20_000, 25, 'XRPUSDT healed under HALTED');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await closes('XRPUSDT')).toHaveLength(1);
    await setTradingState(s.redis, { state: 'ACTIVE', reason: 'e2e resume', by: 'test' });
  });
});
