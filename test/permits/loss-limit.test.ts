/**
 * The loss limit on a real Redis (docs/risk-controls.md#loss-limit): a governor with
 * GOVERNOR_MAX_DAILY_LOSS_USD=100 reads the venue fills journal (`rp`, commission `n`) and the open
 * positions' snapshots. Losing fills past the limit: the global trading state becomes REDUCING by
 * itself (event LOSS_LIMIT_TRIPPED), entries DENY, exits pass; only the operator's ACTIVE re-arms it,
 * and the next trip that day comes after another limit's worth of loss. With no journal, entries are
 * denied `loss_limit` (the loss cannot be measured).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { Decimal } from '../../src/domain/decimal.js';
import { evaluateLossLimit, tradingDayStartMs, unrealizedProfit } from '../../src/domain/risk-controls/index.js';
import { fillProfit } from '../../src/services/governor/risk/realized.js';
import { setTradingState } from '../../src/services/governor/trading-state.js';
import { useTestRedis, waitFor } from '../helpers/redis.js';
import { permits, setSnapshot, startGovernor, submitRaw, type Running } from './helpers.js';
import type { Governor } from '../../src/services/governor/governor.js';

const h = useTestRedis();
let gov: Running & { gov: Governor };

beforeAll(async () => {
  gov = await startGovernor(h.srv.url, 'loss', { GOVERNOR_MODE: 'live', P3_ALLOWLIST: 'BTCUSDT', GOVERNOR_MAX_DAILY_LOSS_USD: '100', GOVERNOR_LOSS_CHECK_INTERVAL_MS: '100' });
});
afterAll(async () => {
  await gov?.stop();
});

let n = 0;
const open = () => submitRaw(h.redis, { plan_id: `loss-${++n}`, symbol: 'BTCUSDT', action: 'INCREASE', side: 'BUY', qty: '0.001', reduceOnly: false });
const exit = () => submitRaw(h.redis, { plan_id: `loss-${++n}`, symbol: 'BTCUSDT', action: 'PARTIAL_50' });
const decision = async (id: string) => (await permits(h.redis, id, ['governor'])).governor;
const fill = (rp: string, fee = '0.05') => h.redis.xadd(STREAMS.exchangeFills, '*', 'symbol', 'BTCUSDT', 'rp', rp, 'n', fee, 'N', 'USDT');
const risk = () => h.redis.hgetall(keys.governorRisk());
const events = async (type: string) => (await h.redis.xrange(STREAMS.governorEvents, '-', '+')).map(([, f]) => fieldsToObject(f)).filter((e) => e.event === type);

async function fresh(): Promise<void> {
  // long 0.01 at entry 94,000, mark 95,000: +10 USD unrealized
  await setSnapshot(h.redis, 'BTCUSDT', '0.01');
  await h.redis.hset(keys.snapshot('BTCUSDT'), { min_qty: '0.001', min_notional: '5' });
}

describe('loss limit', () => {
  it('no fills journal: the loss cannot be measured, entries DENY loss_limit, exits pass', async () => {
    await fresh();
    await waitFor(async () => (await risk()).loss_unknown === 'realized_profit_unknown', 5000, 25, 'measured unknown');
    const g = await decision(await open());
    expect(g).toMatchObject({ decision: 'DENY', reason: 'loss_limit' });
    expect(g.context).toMatchObject({ why: 'realized_profit_unknown' });
    expect(await decision(await exit())).toMatchObject({ decision: 'ALLOW' });
  });

  it('losing fills past 100 USD: REDUCING by itself with an event, entries DENY, exits pass; ACTIVE only from the operator', async () => {
    await fresh();
    await fill('-40');
    await waitFor(async () => (await risk()).loss_usd === '30.05', 5000, 25, 'loss 30.05 measured'); // 40 + 0.05 fee − 10 unrealized
    expect(await decision(await open())).toMatchObject({ decision: 'ALLOW' });
    await fill('-80');
    await waitFor(async () => (await h.redis.hget(keys.tradingState(), 'state')) === 'REDUCING', 5000, 25, 'REDUCING');
    expect(await h.redis.hgetall(keys.tradingState())).toMatchObject({ state: 'REDUCING', by: 'governor:loss_limit' });
    const [ev] = await events('LOSS_LIMIT_TRIPPED');
    expect(ev).toMatchObject({ loss_usd: '110.1', threshold_usd: '100', max_daily_loss_usd: '100', realized_usd: '-120.1', unrealized_usd: '10' });
    expect(await decision(await open())).toMatchObject({ decision: 'DENY', reason: 'trading_state_reducing' });
    expect(await decision(await exit())).toMatchObject({ decision: 'ALLOW' });
    await expect(gov.registry.metrics()).resolves.toMatch(/governor_loss_limit_trips_total 1/);
    // it stays REDUCING: nothing but the operator sets ACTIVE
    await new Promise((r) => setTimeout(r, 500));
    expect(await h.redis.hget(keys.tradingState(), 'state')).toBe('REDUCING');
    expect(await events('LOSS_LIMIT_TRIPPED')).toHaveLength(1);
    await setTradingState(h.redis, { state: 'ACTIVE', reason: 'loss reviewed', by: 'ops' });
    await new Promise((r) => setTimeout(r, 500));
    expect(await h.redis.hget(keys.tradingState(), 'state')).toBe('ACTIVE'); // not re-tripped at the same loss
    expect(await decision(await open())).toMatchObject({ decision: 'ALLOW' });
    // another limit's worth of loss (threshold now 110.1 + 100) trips again
    await fill('-101');
    await waitFor(async () => (await h.redis.hget(keys.tradingState(), 'state')) === 'REDUCING', 5000, 25, 'REDUCING again');
    expect(await events('LOSS_LIMIT_TRIPPED')).toHaveLength(2);
    expect((await events('LOSS_LIMIT_TRIPPED'))[1]).toMatchObject({ threshold_usd: '210.1' });
  });

  it('p3 status shows one line per control and the loss limit with its trip', async () => {
    const { collectStatusExtras, renderStatusExtras } = await import('../../src/read-model/status-extras.js');
    const now = Date.now();
    const text = renderStatusExtras(await collectStatusExtras(h.redis, now), now);
    expect(text).toMatch(/price collar\s+mark vs ref_price 100 bps; without ref_price mark vs index 200 bps/);
    expect(text).toMatch(/stale mark\s+entries need a mark at most 5000 ms old/);
    expect(text).toMatch(/restricted symbols\s+none/);
    expect(text).toMatch(/max order quantity\s+off/);
    expect(text).toMatch(/fat finger\s+50 % of the position limit per entry/);
    expect(text).toMatch(/fill throttle\s+off per 60 s and symbol/);
    expect(text).toMatch(/loss limit\s+100 USD per day \(from 00:00 UTC\): loss today 211\.15 USD \(realized -221\.15, unrealized 10\); TRIPPED at .*, next trip above 311\.15 USD/);
  });

  it('a HALTED state is never loosened by a trip', async () => {
    await setTradingState(h.redis, { state: 'HALTED', reason: 'incident', by: 'ops' });
    await fill('-500');
    await waitFor(async () => (await events('LOSS_LIMIT_TRIPPED')).length === 3, 5000, 25, 'third trip');
    expect(await h.redis.hget(keys.tradingState(), 'state')).toBe('HALTED');
  });
});

describe('loss-limit rules', () => {
  it('trading day start, unrealized profit, thresholds, unknown data', () => {
    const t = Date.UTC(2026, 0, 2, 3, 30);
    expect(tradingDayStartMs(t, 0)).toBe(Date.UTC(2026, 0, 2));
    expect(tradingDayStartMs(t, 8)).toBe(Date.UTC(2026, 0, 1, 8));
    const d = (v: string) => new Decimal(v);
    expect(unrealizedProfit([{ symbol: 'A', amount: d('-0.5'), entryPrice: d('100'), mark: d('90') }, { symbol: 'B', amount: d('0'), entryPrice: null, mark: null }])?.toString()).toBe('5');
    expect(unrealizedProfit([{ symbol: 'A', amount: d('1'), entryPrice: null, mark: d('90') }])).toBeNull();
    expect(evaluateLossLimit(d('-100'), d('0'), d('100'), null, 0).kind).toBe('ok'); // exactly the limit passes
    expect(evaluateLossLimit(d('-100.01'), d('0'), d('100'), null, 0)).toMatchObject({ kind: 'trip' });
    expect(evaluateLossLimit(d('-150'), d('0'), d('100'), { dayStartMs: 0, nextTripUsd: d('200') }, 0).kind).toBe('ok');
    expect(evaluateLossLimit(d('-150'), d('0'), d('100'), { dayStartMs: -1, nextTripUsd: d('200') }, 0).kind).toBe('trip'); // a new day
    expect(evaluateLossLimit(null, d('0'), d('100'), null, 0).kind).toBe('unknown');
    expect(fillProfit({ rp: '-1.5', n: '0.1', N: 'USDT' })?.toString()).toBe('-1.6');
    expect(fillProfit({ rp: '1', n: '0.001', N: 'BNB' })).toBeNull();
    expect(fillProfit({ rp: 'x' })).toBeNull();
  });
});
