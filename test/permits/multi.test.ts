/**
 * Several instances against one Redis: governors share one rate budget; with two governors and two
 * brains every plan is decided exactly once per group; an instance that dies holding plans has them
 * taken over (XAUTOCLAIM) by the other.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS } from '../../src/adapters/redis/keys.js';
import { createGovernorService } from '../../src/services/governor/index.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { baseEnv, permits, setLedger, setSnapshot, startBrain, startGovernor, submit } from './helpers.js';

let srv: TestRedis;
let redis: Redis;

beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test' });
});
afterAll(async () => {
  redis?.disconnect();
  await srv?.stop();
});

const RATE = { GOVERNOR_RATE_PER_MIN: '0.001', GOVERNOR_RATE_BURST: '3', GOVERNOR_SYMBOL_RATE_BURST: '100' };

describe('rate budget', () => {
  it('two governors share one global token bucket (the second sees what the first used)', async () => {
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    await setLedger(redis, 'BTCUSDT', '0.046');
    const a = await startGovernor(srv.url, 'rate-a', { ...RATE, GOVERNOR_CONSUMER_GROUP: 'rate' });
    const first = [await submit(redis, 'BTCUSDT'), await submit(redis, 'BTCUSDT')];
    for (const id of first) expect((await permits(redis, id, ['governor'])).governor.fields.decision).toBe('ALLOW');
    await a.stop();
    const b = await startGovernor(srv.url, 'rate-b', { ...RATE, GOVERNOR_CONSUMER_GROUP: 'rate' });
    try {
      const third = await permits(redis, await submit(redis, 'BTCUSDT'), ['governor']);
      expect(third.governor.fields.decision).toBe('ALLOW');
      const fourth = await permits(redis, await submit(redis, 'BTCUSDT'), ['governor']);
      expect(fourth.governor.fields).toMatchObject({ decision: 'DENY', reason: 'rate_limited_global', qty: '0.034', side: 'SELL' });
      expect(b.logs.lines.some((l) => String(l.msg).includes('reason=rate_limited_global'))).toBe(true);
    } finally {
      await b.stop();
    }
  });
  it('the per-symbol bucket limits one symbol without touching another', async () => {
    await redis.del('quantum:governor:rate:global', 'quantum:governor:rate:ETHUSDT', 'quantum:governor:rate:SOLUSDT');
    await setSnapshot(redis, 'ETHUSDT', '1', { mark: '3000', step: '0.01' });
    await setSnapshot(redis, 'SOLUSDT', '1', { mark: '100', step: '0.01' });
    const g = await startGovernor(srv.url, 'sym-a', { GOVERNOR_RATE_PER_MIN: '600', GOVERNOR_RATE_BURST: '50', GOVERNOR_SYMBOL_RATE_BURST: '1', GOVERNOR_RATE_PER_MIN_ETHUSDT: '0.001', GOVERNOR_CONSUMER_GROUP: 'symrate' });
    try {
      expect((await permits(redis, await submit(redis, 'ETHUSDT'), ['governor'])).governor.fields.decision).toBe('ALLOW');
      expect((await permits(redis, await submit(redis, 'ETHUSDT'), ['governor'])).governor.fields.reason).toBe('rate_limited_symbol');
      expect((await permits(redis, await submit(redis, 'SOLUSDT'), ['governor'])).governor.fields.decision).toBe('ALLOW');
    } finally {
      await g.stop();
    }
  });
});

describe('rate budget: corrupt bucket', () => {
  it('an unreadable bucket is empty (fail closed), then refills like any other', async () => {
    await redis.del('quantum:governor:rate:global', 'quantum:governor:rate:ADAUSDT');
    await setSnapshot(redis, 'ADAUSDT', '100', { mark: '1', step: '1' });
    await redis.hset('quantum:governor:rate:global', { tokens: 'lots', ts_ms: 'yesterday' });
    const g = await startGovernor(srv.url, 'corrupt-a', { GOVERNOR_RATE_PER_MIN: '600', GOVERNOR_RATE_BURST: '5', GOVERNOR_SYMBOL_RATE_BURST: '5', GOVERNOR_CONSUMER_GROUP: 'corrupt' });
    try {
      expect((await permits(redis, await submit(redis, 'ADAUSDT'), ['governor'])).governor.fields.reason).toBe('rate_limited_global');
      expect(await redis.hget('quantum:governor:rate:global', 'tokens')).toBe('0');
      await new Promise((r) => setTimeout(r, 250)); // 600/min = one token per 100 ms
      expect((await permits(redis, await submit(redis, 'ADAUSDT'), ['governor'])).governor.fields.decision).toBe('ALLOW');
    } finally {
      await g.stop();
    }
  });
});

describe('rate budget: infinite bucket', () => {
  it('a bucket whose tokens read `inf` is empty (fail closed), never full (review finding)', async () => {
    await redis.del('quantum:governor:rate:global', 'quantum:governor:rate:ADAUSDT');
    await setSnapshot(redis, 'ADAUSDT', '100', { mark: '1', step: '1' });
    await redis.hset('quantum:governor:rate:global', { tokens: 'inf', ts_ms: String(Date.now()) });
    const g = await startGovernor(srv.url, 'inf-a', { GOVERNOR_RATE_PER_MIN: '6', GOVERNOR_RATE_BURST: '5', GOVERNOR_SYMBOL_RATE_BURST: '5', GOVERNOR_CONSUMER_GROUP: 'inf' });
    try {
      expect((await permits(redis, await submit(redis, 'ADAUSDT'), ['governor'])).governor.fields.reason).toBe('rate_limited_global');
      expect(await redis.hget('quantum:governor:rate:global', 'tokens')).toBe('0');
    } finally {
      await g.stop();
    }
  });
});

describe('two instances of each', () => {
  it('every plan is decided exactly once per group', async () => {
    await redis.del('quantum:governor:rate:global', 'quantum:governor:rate:BTCUSDT');
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    await setLedger(redis, 'BTCUSDT', '0.046');
    const extra = { GOVERNOR_CONSUMER_GROUP: 'pair-gov', P33_CONSUMER_GROUP: 'pair-p33', GOVERNOR_RATE_PER_MIN: '6000', GOVERNOR_RATE_BURST: '1000', GOVERNOR_SYMBOL_RATE_BURST: '1000', GOVERNOR_SYMBOL_RATE_PER_MIN: '6000' };
    const govs = [await startGovernor(srv.url, 'g1', extra), await startGovernor(srv.url, 'g2', extra)];
    const brains = [await startBrain(srv.url, 'b1', extra), await startBrain(srv.url, 'b2', extra)];
    try {
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push(await submit(redis, 'BTCUSDT', 'PARTIAL_50', { planId: `pair-${i}` }));
      for (const id of ids) {
        const p = await permits(redis, id);
        expect(p.governor.fields).toMatchObject({ decision: 'ALLOW', qty: '0.023' });
        expect(p.p33.fields).toMatchObject({ decision: 'ALLOW', qty: '0.023' });
      }
      for (const group of [govs, brains]) {
        const evaluations = group.flatMap((c) => c.logs.lines.filter((l) => String(l.msg).includes('Evaluating plan pair-')).map((l) => l.plan_id));
        expect(evaluations.sort()).toEqual([...ids].sort());
      }
    } finally {
      for (const c of [...govs, ...brains]) await c.stop();
    }
  });
  it('plans pending on a dead instance are taken over by the other (XAUTOCLAIM)', async () => {
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    await setLedger(redis, 'BTCUSDT', '0.046');
    // a "dead" brain: read two plans into its pending list and never acknowledge them
    await redis.xgroup('CREATE', STREAMS.applyPlan, 'claim-p33', '$', 'MKSTREAM');
    const ids = [await submit(redis, 'BTCUSDT'), await submit(redis, 'BTCUSDT')];
    const read = (await redis.call('XREADGROUP', 'GROUP', 'claim-p33', 'dead', 'COUNT', 10, 'STREAMS', STREAMS.applyPlan, '>')) as unknown[];
    expect(read).toHaveLength(1);
    const alive = await startBrain(srv.url, 'alive', { P33_CONSUMER_GROUP: 'claim-p33', P33_CLAIM_IDLE_MS: '300' });
    try {
      for (const id of ids) expect((await permits(redis, id, ['p33'])).p33.fields.decision).toBe('ALLOW');
      await waitFor(async () => ((await redis.xpending(STREAMS.applyPlan, 'claim-p33')) as [number])[0] === 0);
    } finally {
      await alive.stop();
    }
  });
});

describe('governor service', () => {
  it('createGovernorService starts, reports ready, decides, and stops', async () => {
    await redis.del('quantum:governor:rate:global', 'quantum:governor:rate:BTCUSDT');
    await setSnapshot(redis, 'BTCUSDT', '0.046');
    const svc = await createGovernorService(baseEnv(srv.url, { GOVERNOR_LOG_LEVEL: 'silent', GOVERNOR_CONSUMER_GROUP: 'svc', GOVERNOR_MODE: 'paper', P3_ALLOWLIST: 'BTCUSDT' }));
    expect(svc.name).toBe('governor');
    expect(svc.metricsPort).toBe(8044);
    await svc.start();
    try {
      await waitFor(() => Object.values(svc.readiness()).every(Boolean));
      const p = await permits(redis, await submit(redis, 'BTCUSDT', 'FULL_CLOSE'), ['governor']);
      expect(p.governor.fields).toMatchObject({ decision: 'ALLOW', reason: 'auto_approve', mode: 'paper', qty: '0.046' });
      const denied = await permits(redis, await submit(redis, 'ETHUSDT', 'FULL_CLOSE'), ['governor']);
      expect(denied.governor.fields.reason).toBe('symbol_not_allowed');
      const metrics = await svc.registry.metrics();
      expect(metrics).toMatch(/governor_decisions_total\{symbol="BTCUSDT",decision="DENY",reason="reconcile_hold_active",service="governor"\} 0/);
    } finally {
      await svc.stop();
    }
  });
  it('a bad variable is a ConfigError naming it', async () => {
    await expect(createGovernorService(baseEnv(srv.url, { GOVERNOR_MODE: 'yolo' }))).rejects.toThrow(/GOVERNOR_MODE/);
    await expect(createGovernorService(baseEnv(srv.url, { GOVERNOR_MAX_NOTIONAL_USD_BTCUSDT: 'lots' }))).rejects.toThrow(/GOVERNOR_MAX_NOTIONAL_USD_BTCUSDT/);
  });
});
