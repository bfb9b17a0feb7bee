/**
 * The permit chain against a real Redis: a governor (live mode) and a P3.3 permit consumer decide every
 * plan of quantum:stream:apply.plan once, write both permits, and dead-letter bad entries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { canonicalJson, hmacHex } from '../../src/domain/plan.js';
import { setTradingState } from '../../src/services/governor/trading-state.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { dlqEntries, permits, setLedger, setSnapshot, startBrain, startGovernor, submit, submitRaw, type Running } from './helpers.js';

let srv: TestRedis;
let redis: Redis;
let gov: Awaited<ReturnType<typeof startGovernor>>;
let brain: Running;

beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test' });
  gov = await startGovernor(srv.url, 'gov-1', { GOVERNOR_MODE: 'live', GOVERNOR_MAX_NOTIONAL_USD_SOLUSDT: '100', GOVERNOR_BREAKER_MAX_ERRORS: '3' });
  brain = await startBrain(srv.url, 'p33-1');
});
afterAll(async () => {
  await gov?.stop();
  await brain?.stop();
  redis?.disconnect();
  await srv?.stop();
});

describe('ALLOW', () => {
  it('both permits ALLOW with the qty resolved from the snapshot, rounded down to the lot step, and the notional', async () => {
    await setSnapshot(redis, 'BTCUSDT', '0.046', { mark: '95000', step: '0.001' });
    await setLedger(redis, 'BTCUSDT', '0.046');
    const id = await submit(redis, 'BTCUSDT', 'PARTIAL_75');
    const p = await permits(redis, id);
    expect(p.governor.fields).toMatchObject({ decision: 'ALLOW', reason: 'ok', symbol: 'BTCUSDT', side: 'SELL', qty: '0.034', notional: '3230.00', mark_price: '95000', mode: 'live' });
    expect(p.p33.fields).toMatchObject({ decision: 'ALLOW', reason: 'ok', side: 'SELL', qty: '0.034' });
    const ttl = await redis.ttl(keys.permitGovernor(id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
    expect(gov.logs.lines.some((l) => l.msg === `BTCUSDT: ALLOW plan ${id} (permit issued: qty=0.0340, notional=$3230.00)`)).toBe(true);
    expect(await gov.registry.metrics()).toMatch(/governor_decisions_total\{symbol="BTCUSDT",decision="ALLOW",reason="ok"\} 1/);
    expect(await brain.registry.metrics()).toMatch(/p33_permit_decisions_total\{symbol="BTCUSDT",decision="ALLOW",reason="ok"\} 1/);
  });
  it('a short position closes with BUY', async () => {
    await setSnapshot(redis, 'ETHUSDT', '-1.5', { mark: '3000', step: '0.01' });
    await setLedger(redis, 'ETHUSDT', '-1.5');
    const id = await submit(redis, 'ETHUSDT', 'FULL_CLOSE');
    const p = await permits(redis, id);
    expect(p.governor.fields).toMatchObject({ decision: 'ALLOW', side: 'BUY', qty: '1.5', notional: '4500.00' });
    expect(p.p33.fields).toMatchObject({ decision: 'ALLOW', side: 'BUY', qty: '1.5' });
  });
});

describe('manual hold (seed 001 runbook)', () => {
  it('SETEX hold turns the next plan DENY reconcile_hold_active for both; DEL turns them back to ALLOW', async () => {
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    await setLedger(redis, 'BTCUSDT', '0.046');
    await redis.setex('quantum:reconcile:hold:BTCUSDT', 300, '1');
    const held = await permits(redis, await submit(redis, 'BTCUSDT'));
    expect(held.governor.fields).toMatchObject({ decision: 'DENY', reason: 'reconcile_hold_active' });
    expect(held.p33.fields).toMatchObject({ decision: 'DENY', reason: 'reconcile_hold_active' });
    await redis.del('quantum:reconcile:hold:BTCUSDT');
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    const free = await permits(redis, await submit(redis, 'BTCUSDT'));
    expect(free.governor.fields.decision).toBe('ALLOW');
    expect(free.p33.fields.decision).toBe('ALLOW');
  });
});

describe('seed 004: ledger 0.002 (legacy quantum:position:BTCUSDT ledger_amount) vs exchange 0.046', () => {
  it('P3.3 DENY reconcile_required_qty_mismatch with the seed context; a testnet governor records the real qty/notional', async () => {
    await redis.del(keys.ledger('XBTUSDT'));
    await redis.hset('quantum:position:XBTUSDT', 'ledger_amount', '0.002');
    await setSnapshot(redis, 'XBTUSDT', '0.046', { mark: '95000', step: '0.001' });
    await gov.stop();
    const testnet = await startGovernor(srv.url, 'gov-testnet', { GOVERNOR_MODE: 'testnet' });
    try {
      const id = await submit(redis, 'XBTUSDT', 'PARTIAL_75', { planId: '86c8756d' });
      const p = await permits(redis, id);
      expect(p.p33.fields).toMatchObject({ decision: 'DENY', reason: 'reconcile_required_qty_mismatch' });
      expect(p.p33.context).toEqual({ exchange_amt: '0.046', ledger_amt: '0.002', diff: '0.044', tolerance: '0.001' });
      expect(brain.logs.lines.some((l) => l.msg.startsWith('XBTUSDT: P3.3 DENY plan 86c8756d reason=reconcile_required_qty_mismatch context={"exchange_amt":"0.046"'))).toBe(true);
      expect(p.governor.fields).toMatchObject({ decision: 'ALLOW', reason: 'auto_approve', qty: '0.034', notional: '3230.00', mode: 'testnet' });
      expect(testnet.logs.lines.some((l) => l.msg === 'XBTUSDT: Testnet mode - auto-approving plan 86c8756d')).toBe(true);
    } finally {
      await testnet.stop();
      gov = await startGovernor(srv.url, 'gov-1', { GOVERNOR_MODE: 'live', GOVERNOR_MAX_NOTIONAL_USD_SOLUSDT: '100', GOVERNOR_BREAKER_MAX_ERRORS: '3' });
    }
  });
});

describe('poison entries', () => {
  it('a forged, an unsigned and a malformed plan each end in the DLQ (both groups) with no permit', async () => {
    const forgedPlan = canonicalJson({ plan_id: 'forged-1', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'FULL_CLOSE', reduceOnly: true, source: 'exit_brain', ts_ms: Date.now(), type: 'MARKET', reason: '' });
    await redis.xadd(STREAMS.applyPlan, '*', 'plan', forgedPlan, 'mac', hmacHex('attacker-key', forgedPlan));
    await redis.xadd(STREAMS.applyPlan, '*', 'plan', forgedPlan.replace('forged-1', 'unsigned-1'));
    await redis.xadd(STREAMS.applyPlan, '*', 'plan', '{"plan_id":"malformed-1",', 'mac', 'abc');
    const attacker = canonicalJson({ plan_id: 'attacker-1', symbol: 'BTCUSDT', decision: 'EXECUTE', action: 'FULL_CLOSE', source: 'attacker', ts_ms: Date.now() });
    await redis.xadd(STREAMS.applyPlan, '*', 'plan', attacker, 'mac', hmacHex('x', attacker));
    const rows = await waitFor(async () => {
      const r = await dlqEntries(redis);
      return r.length >= 8 ? r : null;
    });
    const seen = new Set(rows.map((r) => `${r.dlq_group}:${r.dlq_reason}`));
    for (const g of ['governor', 'p33']) {
      expect(rows.filter((r) => r.dlq_group === g).map((r) => r.dlq_reason).sort()).toEqual(['bad_mac', 'bad_mac', 'malformed', 'unknown_source']);
      expect(seen.has(`${g}:bad_mac`)).toBe(true);
    }
    for (const id of ['forged-1', 'unsigned-1', 'malformed-1', 'attacker-1']) {
      expect(await redis.exists(keys.permitGovernor(id), keys.permitP33(id))).toBe(0);
    }
    const pending = (await redis.xpending(STREAMS.applyPlan, 'governor')) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
    expect(await gov.registry.metrics()).toMatch(/governor_plans_dead_lettered_total\{reason="bad_mac"\} 2/);
    expect(await brain.registry.metrics()).toMatch(/p33_permit_plans_dead_lettered_total\{reason="malformed"\} 1/);
  });
});

describe('P3.3 DENY reasons', () => {
  it.each([
    ['missing_exchange', async () => redis.del(keys.snapshot('ADAUSDT'))],
    ['stale_exchange', async () => setSnapshot(redis, 'ADAUSDT', '100', { ageMs: 60_000 })],
    ['invalid_exchange', async () => redis.hset(keys.snapshot('ADAUSDT'), { position_amt: '-5', side: 'LONG', ts_ms: String(Date.now()) })],
    ['missing_ledger', async () => { await setSnapshot(redis, 'ADAUSDT', '100'); await redis.del(keys.ledger('ADAUSDT')); }],
    ['invalid_ledger', async () => { await setSnapshot(redis, 'ADAUSDT', '100'); await redis.hset(keys.ledger('ADAUSDT'), { ledger_amt: '12', ledger_side: 'FLAT' }); }],
    ['nothing_to_close', async () => { await setSnapshot(redis, 'ADAUSDT', '0'); await setLedger(redis, 'ADAUSDT', '0'); }],
    ['lot_step_unknown', async () => { await setSnapshot(redis, 'ADAUSDT', '100', { step: null }); await setLedger(redis, 'ADAUSDT', '100'); }],
  ])('%s', async (reason, arrange) => {
    await redis.del(keys.snapshot('ADAUSDT'), keys.ledger('ADAUSDT'));
    await arrange();
    const p = await permits(redis, await submit(redis, 'ADAUSDT', 'PARTIAL_25'), ['p33']);
    expect(p.p33.fields).toMatchObject({ decision: 'DENY', reason });
  });
  it('nothing_to_close also when the fraction rounds down to 0 (PARTIAL_25 of one lot)', async () => {
    await setSnapshot(redis, 'ADAUSDT', '1', { step: '1' });
    await setLedger(redis, 'ADAUSDT', '1');
    const p = await permits(redis, await submit(redis, 'ADAUSDT', 'PARTIAL_25'));
    expect(p.p33.fields).toMatchObject({ decision: 'DENY', reason: 'nothing_to_close' });
    expect(p.governor.fields).toMatchObject({ decision: 'DENY', reason: 'nothing_to_close' });
  });
  it('reduce_only_exceeds_position for an explicit qty above the position', async () => {
    await setSnapshot(redis, 'ADAUSDT', '100', { step: '1', mark: '0.5' });
    await setLedger(redis, 'ADAUSDT', '100');
    const id = await submitRaw(redis, { plan_id: 'explicit-1', symbol: 'ADAUSDT', action: 'FULL_CLOSE', qty: '150', side: 'SELL' });
    const p = await permits(redis, id);
    expect(p.p33.fields).toMatchObject({ decision: 'DENY', reason: 'reduce_only_exceeds_position' });
    expect(p.p33.context).toEqual({ qty: '150', position_amt: '100' });
    expect(p.governor.fields).toMatchObject({ decision: 'DENY', reason: 'reduce_only_exceeds_position' });
  });
});

describe('governor DENY reasons', () => {
  it('stale and missing snapshots are never ALLOW', async () => {
    await setSnapshot(redis, 'DOTUSDT', '10', { ageMs: 30_000 });
    await setLedger(redis, 'DOTUSDT', '10');
    expect((await permits(redis, await submit(redis, 'DOTUSDT'))).governor.fields.reason).toBe('stale_exchange');
    await redis.del(keys.snapshot('DOTUSDT'));
    expect((await permits(redis, await submit(redis, 'DOTUSDT'))).governor.fields.reason).toBe('missing_exchange');
  });
  it('max_notional_exceeded uses the per-symbol limit and records qty and notional', async () => {
    await setSnapshot(redis, 'SOLUSDT', '10', { mark: '150', step: '0.1' });
    await setLedger(redis, 'SOLUSDT', '10');
    const p = await permits(redis, await submit(redis, 'SOLUSDT', 'FULL_CLOSE'));
    expect(p.governor.fields).toMatchObject({ decision: 'DENY', reason: 'max_notional_exceeded', qty: '10', notional: '1500.00' });
    expect(p.p33.fields.decision).toBe('ALLOW');
  });
  it('plan_too_old and plan_from_future', async () => {
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    const old = await permits(redis, await submit(redis, 'BTCUSDT', 'FULL_CLOSE', { tsMs: Date.now() - 120_000 }), ['governor']);
    expect(old.governor.fields.reason).toBe('plan_too_old');
    const fut = await permits(redis, await submit(redis, 'BTCUSDT', 'FULL_CLOSE', { tsMs: Date.now() + 120_000 }), ['governor']);
    expect(fut.governor.fields.reason).toBe('plan_from_future');
  });
  it('trading state: global HALTED denies everything; symbol REDUCING passes reduce-only and denies the rest', async () => {
    await setSnapshot(redis, 'LTCUSDT', '2', { mark: '80', step: '0.01' });
    await setLedger(redis, 'LTCUSDT', '2');
    await setTradingState(redis, { state: 'HALTED', reason: 'test', by: 'test' });
    const halted = await permits(redis, await submit(redis, 'LTCUSDT'), ['governor']);
    expect(halted.governor.fields.reason).toBe('trading_halted');
    expect(halted.governor.context).toMatchObject({ state: 'HALTED', scope: 'global', state_reason: 'test' });
    await setTradingState(redis, { state: 'ACTIVE', reason: 'resume', by: 'test' });
    await setTradingState(redis, { symbol: 'LTCUSDT', state: 'REDUCING', reason: 'wind down', by: 'test' });
    await setSnapshot(redis, 'LTCUSDT', '2', { mark: '80', step: '0.01' });
    const exit = await permits(redis, await submit(redis, 'LTCUSDT', 'PARTIAL_50'), ['governor']);
    expect(exit.governor.fields).toMatchObject({ decision: 'ALLOW', qty: '1', side: 'SELL' });
    const open = await permits(redis, await submitRaw(redis, { plan_id: 'open-1', symbol: 'LTCUSDT', action: 'OPEN', reduceOnly: false, side: 'BUY', qty: '0.5' }), ['governor']);
    expect(open.governor.fields).toMatchObject({ decision: 'DENY', reason: 'trading_state_reducing' });
    await setTradingState(redis, { symbol: 'LTCUSDT', state: 'ACTIVE', reason: 'done', by: 'test' });
    const events = await redis.xrange(STREAMS.governorEvents, '-', '+');
    expect(events.filter(([, f]) => f[1] === 'TRADING_STATE_SET')).toHaveLength(4);
  });
  it('circuit breaker: N FAILED results in the window trip the symbol to HALTED, one event per trip', async () => {
    await setSnapshot(redis, 'BNBUSDT', '3', { mark: '600', step: '0.01' });
    await setLedger(redis, 'BNBUSDT', '3');
    const ok = await permits(redis, await submit(redis, 'BNBUSDT'), ['governor']);
    expect(ok.governor.fields.decision).toBe('ALLOW');
    for (let i = 0; i < 3; i++) await redis.xadd(STREAMS.applyResult, '*', 'plan_id', `f${i}`, 'symbol', 'BNBUSDT', 'status', 'FAILED', 'error', 'boom');
    await redis.xadd(STREAMS.applyResult, '*', 'plan_id', 'other', 'symbol', 'ETHUSDT', 'status', 'FAILED');
    for (let i = 0; i < 2; i++) {
      await setSnapshot(redis, 'BNBUSDT', '3', { mark: '600', step: '0.01' });
      const p = await permits(redis, await submit(redis, 'BNBUSDT'), ['governor']);
      expect(p.governor.fields).toMatchObject({ decision: 'DENY', reason: 'circuit_breaker_open' });
    }
    const trips = (await redis.xrange(STREAMS.governorEvents, '-', '+')).filter(([, f]) => f[1] === 'CIRCUIT_BREAKER_TRIPPED');
    expect(trips).toHaveLength(1);
    expect(await redis.ttl(keys.governorBreaker('BNBUSDT'))).toBeGreaterThan(0);
    // cooldown over (key expired): the same failures do not trip it again
    await redis.del(keys.governorBreaker('BNBUSDT'));
    await setSnapshot(redis, 'BNBUSDT', '3', { mark: '600', step: '0.01' });
    const after = await permits(redis, await submit(redis, 'BNBUSDT'), ['governor']);
    expect(after.governor.fields.decision).toBe('ALLOW');
  });
});

describe('robustness', () => {
  it('a redelivered plan keeps its first decision (write-once permits)', async () => {
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    await setLedger(redis, 'BTCUSDT', '0.046');
    const id = await submit(redis, 'BTCUSDT', 'FULL_CLOSE', { planId: 'redeliver-1' });
    const first = await permits(redis, id);
    expect(first.p33.fields.decision).toBe('ALLOW');
    // the same entry again (a producer retry): the permits must not flip, even though a hold is now set
    await redis.setex(keys.hold('BTCUSDT'), 300, '1');
    const [, entries] = (await redis.xrevrange(STREAMS.applyPlan, '+', '-', 'COUNT', 20)).find(([, f]) => f[1]?.includes('redeliver-1')) ?? [];
    expect(entries).toBeDefined();
    await redis.xadd(STREAMS.applyPlan, '*', ...(entries as string[]));
    await waitFor(() => brain.logs.lines.filter((l) => String(l.msg).includes('redeliver-1 already decided')).length >= 1);
    await waitFor(() => gov.logs.lines.filter((l) => String(l.msg).includes('redeliver-1 already decided')).length >= 1);
    expect((await permits(redis, id)).p33.fields.decision).toBe('ALLOW');
    expect((await permits(redis, id)).governor.fields.decision).toBe('ALLOW');
    await redis.del(keys.hold('BTCUSDT'));
  });
  it('survives a Redis restart: groups are recreated and the next plan is decided', async () => {
    await srv.restart();
    await waitFor(async () => {
      const groups = (await redis.xinfo('GROUPS', STREAMS.applyPlan).catch(() => [])) as unknown[];
      return groups.length === 2;
    });
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    await setLedger(redis, 'BTCUSDT', '0.046');
    const p = await permits(redis, await submit(redis, 'BTCUSDT'));
    expect(p.governor.fields.decision).toBe('ALLOW');
    expect(p.p33.fields.decision).toBe('ALLOW');
    expect(gov.gov.readiness()).toEqual({ governor_loop: true });
  });
});
