/**
 * The governor's pre-trade risk controls on a real Redis (docs/risk-controls.md): the stale-mark check
 * reads the snapshot's `mark_ts_ms` (else its `ts_ms`), per-symbol overrides and `off` apply, the DENY
 * reasons are counted in `governor_decisions_total`, and the configuration refuses bad values by name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { setTradingState } from '../../src/services/governor/trading-state.js';
import { ConfigError } from '../../src/config/env.js';
import { parseRiskConfig } from '../../src/services/governor/risk/config.js';
import { useTestRedis } from '../helpers/redis.js';
import { permits, setSnapshot as setBaseSnapshot, startGovernor, submitRaw, type Running } from './helpers.js';
import type { Governor } from '../../src/services/governor/governor.js';

const h = useTestRedis();
let gov: Running & { gov: Governor };

beforeAll(async () => {
  gov = await startGovernor(h.srv.url, 'risk', { GOVERNOR_MODE: 'live', GOVERNOR_MARK_MAX_AGE_MS_ETHUSDT: 'off', GOVERNOR_PRICE_COLLAR_BPS_ETHUSDT: '10', GOVERNOR_MAX_FILLS_PER_SYMBOL_SOLUSDT: '2', GOVERNOR_MAX_FILLS_WINDOW_SEC: '60' });
});
afterAll(async () => {
  await gov?.stop();
});

/** A snapshot an entry can be sized on (lot rules included). */
async function setSnapshot(redis: typeof h.redis, sym: string, amt: string, o: Parameters<typeof setBaseSnapshot>[3] = {}): Promise<void> {
  await setBaseSnapshot(redis, sym, amt, o);
  await redis.hset(keys.snapshot(sym), { min_qty: '0.001', min_notional: '5' });
}

let n = 0;
const open = (symbol: string, extra: Record<string, unknown> = {}) => submitRaw(h.redis, { plan_id: `risk-${++n}`, symbol, action: 'OPEN', side: 'BUY', qty: '0.001', reduceOnly: false, ...extra });
const decision = async (id: string) => (await permits(h.redis, id, ['governor'])).governor;

describe('stale mark', () => {
  it('a mark older than GOVERNOR_MARK_MAX_AGE_MS (5000) is DENY stale_mark; a fresh one passes', async () => {
    await setSnapshot(h.redis, 'BTCUSDT', '0');
    await h.redis.hset(keys.snapshot('BTCUSDT'), 'mark_ts_ms', String(Date.now() - 6000));
    const g = await decision(await open('BTCUSDT'));
    expect(g).toMatchObject({ decision: 'DENY', reason: 'stale_mark' });
    expect(Number((g.context as Record<string, unknown>).mark_age_ms)).toBeGreaterThan(5000);
    await h.redis.hset(keys.snapshot('BTCUSDT'), 'mark_ts_ms', String(Date.now() - 1000));
    expect(await decision(await open('BTCUSDT'))).toMatchObject({ decision: 'ALLOW' });
  });

  it('without mark_ts_ms the mark is as old as the snapshot; per symbol off (ETHUSDT) it is not checked', async () => {
    await setSnapshot(h.redis, 'BTCUSDT', '0', { ageMs: 7000 });
    expect(await decision(await open('BTCUSDT'))).toMatchObject({ decision: 'DENY', reason: 'stale_mark' });
    await setSnapshot(h.redis, 'ETHUSDT', '0', { ageMs: 7000 });
    expect(await decision(await open('ETHUSDT', { ref_price: '95000' }))).toMatchObject({ decision: 'ALLOW' });
  });

  it('exits are never checked: a stale mark does not stop a close', async () => {
    await setSnapshot(h.redis, 'BTCUSDT', '0.01', { ageMs: 7000 });
    expect(await decision(await submitRaw(h.redis, { plan_id: `risk-${++n}`, symbol: 'BTCUSDT', action: 'FULL_CLOSE' }))).toMatchObject({ decision: 'ALLOW' });
  });
});

describe('price collar on the governor', () => {
  it('per-symbol collar (ETHUSDT 10 bps): 0.2 % away is DENY; the mark without index and no ref_price is DENY', async () => {
    await setSnapshot(h.redis, 'ETHUSDT', '0');
    expect(await decision(await open('ETHUSDT', { ref_price: '95200' }))).toMatchObject({ decision: 'DENY', reason: 'price_collar' });
    expect(await decision(await open('ETHUSDT', { ref_price: '95090' }))).toMatchObject({ decision: 'ALLOW' });
    await h.redis.hdel(keys.snapshot('ETHUSDT'), 'index_price');
    const g = await decision(await open('ETHUSDT'));
    expect(g).toMatchObject({ decision: 'DENY', reason: 'price_collar' });
    expect((g.context as Record<string, unknown>)).toMatchObject({ why: 'index_price_unknown' });
  });

  it('the DENY reasons are counted in governor_decisions_total', async () => {
    const text = await gov.registry.metrics();
    expect(text).toMatch(/governor_decisions_total\{symbol="ETHUSDT",decision="DENY",reason="price_collar"\} [1-9]/);
    expect(text).toMatch(/governor_decisions_total\{symbol="BTCUSDT",decision="DENY",reason="stale_mark"\} [1-9]/);
    expect(text).toMatch(/governor_mark_age_ms\{symbol="BTCUSDT"\}/);
    expect(text).toMatch(/governor_mark_deviation_bps\{symbol="ETHUSDT",against="ref_price"\}/);
  });
});

describe('repeated-execution throttle (GOVERNOR_MAX_FILLS_PER_SYMBOL_SOLUSDT=2 per 60 s)', () => {
  const fill = (symbol: string) => h.redis.xadd(STREAMS.applyResult, '*', 'plan_id', `f-${++n}`, 'symbol', symbol, 'decision', 'EXECUTE', 'status', 'EXECUTED', 'executed', 'true', 'side', 'BUY', 'filled_qty', '0.001', 'ts_ms', String(Date.now()));
  it('two fills pass; a third pauses the symbol (REDUCING by the governor, event); only the operator re-arms it', async () => {
    await setSnapshot(h.redis, 'SOLUSDT', '0');
    await fill('SOLUSDT');
    await fill('SOLUSDT');
    await fill('BTCUSDT'); // another symbol's fills do not count
    expect(await decision(await open('SOLUSDT'))).toMatchObject({ decision: 'ALLOW' });
    await fill('SOLUSDT');
    const g = await decision(await open('SOLUSDT'));
    expect(g.decision).toBe('DENY');
    expect(['fill_throttle', 'trading_state_reducing']).toContain(g.reason);
    expect(await h.redis.hgetall(keys.tradingState('SOLUSDT'))).toMatchObject({ state: 'REDUCING', by: 'governor:fill_throttle' });
    const events = (await h.redis.xrange(STREAMS.governorEvents, '-', '+')).map(([, f]) => fieldsToObject(f)).filter((e) => e.event === 'FILL_THROTTLE_TRIPPED');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ symbol: 'SOLUSDT', fills_in_window: '3', max_fills: '2' });
    await setSnapshot(h.redis, 'SOLUSDT', '0.01');
    expect(await decision(await submitRaw(h.redis, { plan_id: `risk-${++n}`, symbol: 'SOLUSDT', action: 'FULL_CLOSE' }))).toMatchObject({ decision: 'ALLOW' }); // exits pass
    await setSnapshot(h.redis, 'SOLUSDT', '0');
    await setTradingState(h.redis, { symbol: 'SOLUSDT', state: 'ACTIVE', reason: 'reviewed', by: 'ops' });
    expect(await decision(await open('SOLUSDT'))).toMatchObject({ decision: 'ALLOW' }); // the fills before the trip no longer count
    await new Promise((r) => setTimeout(r, 2500)); // a pass of the periodic check: no re-trip
    expect(await h.redis.hget(keys.tradingState('SOLUSDT'), 'state')).toBe('ACTIVE');
  });
});

describe('configuration', () => {
  it('defaults: collar 100 bps, mark vs index 200 bps, mark age 5000 ms, fat finger 50 %, max qty and loss limit off', () => {
    const c = parseRiskConfig({});
    expect([c.collarBps.default?.toString(), c.markIndexMaxBps.default?.toString(), c.markMaxAgeMs.default, c.maxOrderPctOfPositionLimit.default?.toString(), c.maxOrderQty.default, c.maxDailyLossUsd]).toEqual(['100', '200', 5000, '50', null, null]);
  });
  it.each([
    ['GOVERNOR_PRICE_COLLAR_BPS', '-1'],
    ['GOVERNOR_PRICE_COLLAR_BPS_BTCUSDT', 'abc'],
    ['GOVERNOR_MARK_MAX_AGE_MS', '1.5'],
    ['GOVERNOR_MAX_ORDER_PCT_OF_POSITION_LIMIT', '150'],
    ['GOVERNOR_MAX_ORDER_QTY_ETHUSDT', '0'],
    ['GOVERNOR_MAX_DAILY_LOSS_USD', 'NaN'],
    ['GOVERNOR_RESTRICTED_SYMBOLS', 'btc-usdt'],
  ])('%s=%s is refused naming the variable', (k, v) => {
    expect(() => parseRiskConfig({ [k]: v })).toThrow(ConfigError);
    try {
      parseRiskConfig({ [k]: v });
    } catch (err) {
      expect((err as Error).message).toContain(k);
    }
  });
});
