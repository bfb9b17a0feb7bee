/**
 * The position-state-brain service (`p3 run position-state-brain`) with EXCHANGE_BASE_URL at a running
 * paper exchange and a private Redis: snapshots stay fresh; a manual trade shows up in the first snapshot
 * whose request was sent after the fill (never an older amount under a newer timestamp); a 503 storm
 * stops updates (ts_ms stops advancing, readiness fails) and they resume after `DELETE /admin/faults`;
 * the shared back-off stops polling; a snapshot never moves back in time.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { snapshotWrite } from '../../src/adapters/redis/scripts/index.js';
import { ConfigError } from '../../src/config/env.js';
import { readSnapshot } from '../../src/domain/position.js';
import { createPositionStateBrainService } from '../../src/services/position-state-brain/index.js';
import type { Service } from '../../src/host/service.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { adminFaults, adminRequests, adminTrade, clearFaults, startPaperExchange, type PaperExchange } from '../helpers/paper.js';

const INTERVAL_MS = 250;
let px: PaperExchange;
let srv: TestRedis;
let redis: Redis;
let service: Service;
let env: Record<string, string>;

const snap = (sym: string) => redis.hgetall(keys.snapshot(sym));
const tsOf = async (sym: string) => Number((await snap(sym)).ts_ms ?? 0);
const metric = async (name: string, labels: Record<string, string>) => {
  const m = await service.registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, val]) => x.labels[k] === val));
  return v?.value ?? 0;
};

beforeAll(async () => {
  px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test-snapshot' });
  env = {
    REDIS_URL: srv.url,
    P3_ALLOWLIST: 'BTCUSDT,ETHUSDT',
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: px.url,
    EXCHANGE_API_KEY: px.apiKey,
    EXCHANGE_API_SECRET: px.apiSecret,
    EXCHANGE_TIMEOUT_MS: '2000',
    P33_SNAPSHOT_INTERVAL_MS: String(INTERVAL_MS),
    P33_USER_STREAM: 'false', // the REST publisher alone (the stream has its own tests)
    P33_SNAPSHOT_READY_MAX_AGE_MS: '1500',
    P33_PROMETHEUS_PORT: '0',
    P33_LOG_LEVEL: 'silent',
    P33_PERMITS_ENABLED: 'false',
  };
  service = await createPositionStateBrainService(env);
  await service.start();
});
afterAll(async () => {
  await service?.stop();
  redis.disconnect();
  await srv.stop();
  await px.close();
});

describe('snapshot publisher', () => {
  it('keeps snapshots fresh: signed amount, side, prices, lot step, ts; flat symbol written as FLAT; one notification per write', async () => {
    const first = await waitFor(() => tsOf('BTCUSDT'), 20_000, 25, 'first snapshot');
    await waitFor(async () => (await tsOf('BTCUSDT')) > first, 20_000, 25, 'snapshot to advance');
    const second = await tsOf('BTCUSDT');
    await waitFor(async () => (await tsOf('BTCUSDT')) > second, 20_000, 25, 'snapshot to advance again');
    const btc = await snap('BTCUSDT');
    expect(btc).toMatchObject({ position_amt: '0.007', side: 'LONG', entry_price: '95000', mark_price: '95000', step_size: '0.001', source: 'rest' });
    expect(Number(btc.ts_epoch)).toBeCloseTo(Number(btc.ts_ms) / 1000, 2);
    expect(Number(btc.received_ts_ms)).toBeGreaterThanOrEqual(Number(btc.ts_ms));
    const eth = await snap('ETHUSDT');
    expect(eth).toMatchObject({ position_amt: '0', side: 'FLAT', step_size: '0.001' });
    expect(eth.mark_price).toBe('3300'); // a flat symbol has no position row: its mark comes from premiumIndex (entries need it)
    expect(eth).toMatchObject({ min_qty: '0.001', min_notional: '5' });
    const read = readSnapshot(btc);
    expect(read.kind === 'ok' && read.snapshot.stepSize?.toFixed()).toBe('0.001');
    // the notification stream carries {symbol, ts_ms} of every write, written in the same atomic step
    // as the hash: read both in one MULTI, the newest BTCUSDT entry has the hash's ts_ms
    const res = await redis.multi().hget(keys.snapshot('BTCUSDT'), 'ts_ms').xrevrange(STREAMS.positionSnapshot, '+', '-', 'COUNT', 20).exec();
    const hashTs = res?.[0]?.[1] as string;
    const entries = (res?.[1]?.[1] ?? []) as Array<[string, string[]]>;
    const btcEntries = entries.map(([, f]) => ({ symbol: f[1], ts_ms: f[3] })).filter((f) => f.symbol === 'BTCUSDT');
    expect(btcEntries.length).toBeGreaterThanOrEqual(2);
    expect(btcEntries[0]?.ts_ms).toBe(hashTs);
    expect(await redis.xlen(STREAMS.positionSnapshot)).toBeGreaterThanOrEqual(6);
    expect(await metric('p33_snapshot_written_total', { symbol: 'BTCUSDT' })).toBeGreaterThanOrEqual(3);
    expect(service.readiness()).toMatchObject({ redis: true, p33_snapshot_loop: true });
  });

  it('a manual trade shows up in the next snapshot; no snapshot sent after the fill shows the old amount', async () => {
    const seen: Array<{ ts: number; amt: string }> = [];
    const { order } = await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.016');
    const fillTs = order.ts_ms;
    const after = await waitFor(
      async () => {
        const h = await snap('BTCUSDT');
        seen.push({ ts: Number(h.ts_ms), amt: h.position_amt ?? '' });
        return Number(h.ts_ms) > fillTs ? h : null;
      },
      20_000,
      10,
      'a snapshot sent after the fill',
    );
    expect(after).toMatchObject({ position_amt: '0.023', side: 'LONG' });
    expect(seen.filter((s) => s.ts > fillTs && s.amt !== '0.023')).toEqual([]);
    // the manual trade flips ETH short
    await adminTrade(px.url, 'ETHUSDT', 'SELL', '0.5');
    await waitFor(async () => (await snap('ETHUSDT')).side === 'SHORT', 20_000, 25, 'ETH short');
    expect(await snap('ETHUSDT')).toMatchObject({ position_amt: '-0.5', side: 'SHORT', mark_price: '3300' });
  });

  it('a 503 storm stops updates (ts_ms stops advancing, not ready, errors counted) and they resume after DELETE /admin/faults', async () => {
    await adminFaults(px.url, { kind: 'http_503_unknown', endpoints: ['positionRisk'] });
    const faultAt = Date.now();
    const count503 = async () => (await adminRequests(px.url)).filter((r) => r.path === '/fapi/v3/positionRisk' && r.ts_ms >= faultAt && r.status === 503).length;
    // let a poll that was already in flight land, then freeze the reference: polls run one at a time, so a
    // snapshot still unchanged after two more 503s (two later polls) has no write of an earlier poll to come
    const frozen = await waitFor(
      async () => {
        const h = await snap('BTCUSDT');
        const n = await count503();
        await waitFor(async () => (await count503()) >= n + 2, 20_000, 25, 'two more 503s');
        return isDeepStrictEqual(await snap('BTCUSDT'), h) ? h : null;
      },
      20_000,
      0,
      'the snapshot to stop changing',
    );
    const errorsBefore = await metric('p33_snapshot_errors_total', { kind: 'unavailable' });
    // a manual trade during the storm must not appear, and nothing else is written
    await adminTrade(px.url, 'BTCUSDT', 'SELL', '0.003');
    const afterTrade = await count503();
    await waitFor(async () => (await count503()) >= afterTrade + 3, 20_000, 25, 'three 503s after the trade');
    expect(await snap('BTCUSDT')).toEqual(frozen);
    expect(await metric('p33_snapshot_errors_total', { kind: 'unavailable' })).toBeGreaterThan(errorsBefore);
    await waitFor(() => service.readiness().p33_snapshot_loop === false, 20_000, 25, 'not ready during the storm');
    await clearFaults(px.url);
    await waitFor(async () => (await tsOf('BTCUSDT')) > Number(frozen.ts_ms), 20_000, 25, 'snapshots to resume');
    expect((await snap('BTCUSDT')).position_amt).toBe('0.02');
    await waitFor(() => service.readiness().p33_snapshot_loop === true, 20_000, 25, 'ready again');
  });

  it('honours the shared back-off: no positions request while it stands, then resumes', async () => {
    const refusedBefore = await metric('p33_snapshot_errors_total', { kind: 'rate_limited' });
    const until = Date.now() + 3000;
    await redis.set(keys.exchangeBackoffUntil(), String(until), 'PX', 60_000);
    const frozenTs = await waitFor(async () => {
      // a poll already in flight may still land: wait for a stable ts
      const a = await tsOf('BTCUSDT');
      await new Promise((r) => setTimeout(r, INTERVAL_MS * 2));
      return (await tsOf('BTCUSDT')) === a ? a : null;
    }, 20_000, 0, 'polling to stop');
    expect(frozenTs).toBeLessThan(until);
    // polls run one at a time: once one has been refused by the back-off (counted as rate_limited), every
    // poll started before the back-off has finished, so no exchange request may be logged from then until
    // the back-off ends (the window starts at an observed point, not at a guessed slack after the SET)
    await waitFor(async () => (await metric('p33_snapshot_errors_total', { kind: 'rate_limited' })) > refusedBefore, 20_000, 10, 'a poll refused by the back-off');
    const refusedSeenAt = Date.now();
    await waitFor(async () => (await tsOf('BTCUSDT')) > until, 20_000, 25, 'polling to resume after the back-off');
    const during = (await adminRequests(px.url)).filter((r) => r.path.startsWith('/fapi/') && r.ts_ms > refusedSeenAt && r.ts_ms < until);
    expect(during).toEqual([]);
  });

  it('a snapshot never moves back in time (an older poll landing late is dropped)', async () => {
    const cur = await snap('BTCUSDT');
    const older = Number(cur.ts_ms) - 10_000;
    const res = await snapshotWrite(redis, { symbol: 'BTCUSDT', tsMs: older, maxlen: 10000, nowMs: Date.now(), futureToleranceMs: 60_000, fields: { position_amt: '9', side: 'LONG', ts_ms: String(older) } });
    expect(res).toEqual({ kind: 'superseded' });
    expect((await snap('BTCUSDT')).position_amt).not.toBe('9');
  });
});

describe('configuration', () => {
  it('names the bad variable', async () => {
    const bad = async (over: Record<string, string | undefined>) => {
      try {
        const s = await createPositionStateBrainService({ ...env, ...over });
        await s.stop();
      } catch (err) {
        return err instanceof ConfigError ? err.variable : `not a ConfigError: ${(err as Error).message}`;
      }
      return 'accepted';
    };
    expect(await bad({ P3_ALLOWLIST: undefined })).toBe('P3_ALLOWLIST');
    expect(await bad({ EXCHANGE_BASE_URL: undefined })).toBe('EXCHANGE_BASE_URL');
    expect(await bad({ P33_SNAPSHOT_INTERVAL_MS: '10' })).toBe('P33_SNAPSHOT_INTERVAL_MS');
    expect(await bad({ P33_PROMETHEUS_PORT: 'x' })).toBe('P33_PROMETHEUS_PORT');
    expect(await bad({ P33_LOG_LEVEL: 'loud' })).toBe('P33_LOG_LEVEL');
    expect(await bad({ P33_USER_STREAM: 'maybe' })).toBe('P33_USER_STREAM');
    expect(await bad({ P33_USER_STREAM: 'true', P33_REST_VERIFY_INTERVAL_MS: '100' })).toBe('P33_REST_VERIFY_INTERVAL_MS'); // below the 250 ms interval
    expect(await bad({ P33_REST_VERIFY_INTERVAL_MS: 'soon' })).toBe('P33_REST_VERIFY_INTERVAL_MS');
    expect(await bad({ P33_USER_STREAM_WS_URL: 'http://x' })).toBe('P33_USER_STREAM_WS_URL');
    expect(await bad({ P33_SNAPSHOTS_ENABLED: 'false', P3_ALLOWLIST: undefined, EXCHANGE_BASE_URL: undefined })).toBe('accepted');
  });
});
