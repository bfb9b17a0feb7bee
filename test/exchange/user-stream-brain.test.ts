/**
 * The position brain on the user data stream, against the paper exchange and a private Redis,
 * with a reconcile engine reading the snapshots:
 * - a manual trade is written by the stream (`source=stream`) without any REST poll (REST verify period long);
 * - `ws_silence` for 20 s: REST keeps every snapshot fresh, no hold; a trade the stream missed is found by
 *   REST (`source=rest`) and the stream is distrusted (`missed_event`);
 * - `ws_drop` and `listen_key_expire`: the brain reconnects by itself and stream detection resumes;
 * - stream silent AND REST failing: nothing stays fresh, the engine holds `stale_exchange`.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { keys } from '../../src/adapters/redis/keys.js';
import { writeSnapshot } from '../../src/services/position-state-brain/snapshot.js';
import { buildServices } from '../../src/services/index.js';
import type { Service } from '../../src/host/service.js';
import { userStreamStateKey } from '../../src/services/position-state-brain/user-stream.js';
import { collectStatus } from '../../src/read-model/symbol-status.js';
import { collectStatusExtras, renderStatusExtras } from '../../src/read-model/status-extras.js';
import { checkUserStream } from '../../src/read-model/user-streams.js';
import { adminFaults, adminPositions, adminRequests, adminTrade, adminWsFault, clearFaults, setPositionMode, startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';

let px: PaperExchange;
let srv: TestRedis;
let redis: Redis;
let services: Service[] = [];

const baseEnv = () => ({
  REDIS_URL: srv.url,
  P3_ALLOWLIST: 'BTCUSDT,ETHUSDT',
  EXCHANGE: 'paper',
  EXCHANGE_BASE_URL: px.url,
  EXCHANGE_API_KEY: px.apiKey,
  EXCHANGE_API_SECRET: px.apiSecret,
  EXCHANGE_TIMEOUT_MS: '2000',
  P33_PERMITS_ENABLED: 'false',
  P33_PROMETHEUS_PORT: '0',
  P34_PROMETHEUS_PORT: '0',
  P33_LOG_LEVEL: process.env.DEBUG_LOG ?? 'silent',
  P34_LOG_LEVEL: 'silent',
  P3_INSTANCE_ID: 'brain-t',
});

async function start(names: Array<'position-state-brain' | 'reconcile-engine'>, env: Record<string, string>): Promise<void> {
  for (const n of names) {
    const [svc] = await buildServices([n], { ...baseEnv(), ...env, P3_INSTANCE_ID: `${n}-t` });
    await svc!.start();
    services.push(svc!);
  }
}
const streamState = () => redis.hgetall(userStreamStateKey('position-state-brain-t'));
const snap = (sym: string) => redis.hgetall(keys.snapshot(sym));
const waitHealthy = (what = 'stream healthy') => waitFor(async () => (await streamState()).state === 'healthy', 20_000, 20, what);
const exchangeAmt = async (sym: string) => (await adminPositions(px.url))[sym]!.positionAmt;

beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test-user-stream' });
});
afterEach(async () => {
  for (const s of services.reverse()) await s.stop();
  services = [];
  await px?.close();
  await redis.flushall();
});
afterAll(async () => {
  redis.disconnect();
  await srv.stop();
});

describe('stream snapshots', () => {
  it('a manual trade is in the snapshot with source=stream without waiting for a REST poll', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
    // REST: the baseline poll after the socket opens, then nothing for 60 s while the stream is healthy
    await start(['position-state-brain'], { P33_SNAPSHOT_INTERVAL_MS: '1000', P33_REST_VERIFY_INTERVAL_MS: '60000' });
    await waitHealthy();
    const restBefore = (await adminRequests(px.url)).filter((r) => r.path.includes('positionRisk')).length;
    await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.004');
    const s = await waitFor(async () => {
      const h = await snap('BTCUSDT');
      return h.position_amt === '0.011' ? h : null;
    }, 10_000, 10, 'stream snapshot');
    expect(s).toMatchObject({ source: 'stream', side: 'LONG', step_size: '0.001', mark_price: '95000' });
    expect(Number(s.ts_ms)).toBeLessThanOrEqual(Number(s.received_ts_ms));
    expect((await adminRequests(px.url)).filter((r) => r.path.includes('positionRisk')).length).toBe(restBefore);
    // a one-way close (ps=BOTH, pa=0) is written FLAT
    await adminTrade(px.url, 'BTCUSDT', 'SELL', '0.011');
    const flat = await waitFor(async () => {
      const h = await snap('BTCUSDT');
      return h.position_amt === '0' ? h : null;
    }, 10_000, 10, 'flat stream snapshot');
    expect(flat).toMatchObject({ side: 'FLAT', source: 'stream' });
    // p3 status and p3 doctor show it
    const now = Date.now();
    const [row] = await collectStatus(redis, ['BTCUSDT'], now);
    expect(row!.snapshot_source).toBe('stream');
    const extras = await collectStatusExtras(redis, now);
    expect(extras.user_streams).toEqual([expect.objectContaining({ instance: 'position-state-brain-t', state: 'healthy', rest_interval_ms: 60000 })]);
    expect(renderStatusExtras(extras, now)).toMatch(/User data stream \(position brain\):\n {2}position-state-brain-t +HEALTHY: connected/);
    expect(await checkUserStream(redis, {}, 10)).toMatchObject({ check: 'user-stream', status: 'OK' });
    expect(await checkUserStream(redis, { P33_REST_VERIFY_INTERVAL_MS: '10000' }, 10)).toMatchObject({ status: 'FAIL' });
    expect(await checkUserStream(redis, { P33_USER_STREAM: 'false' }, 10)).toMatchObject({ status: 'OK', detail: expect.stringMatching(/^off/) });
  });

  it('a snapshot never moves back in time: a push older than the stored snapshot is not written', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
    await start(['position-state-brain'], { P33_SNAPSHOT_INTERVAL_MS: '1000', P33_REST_VERIFY_INTERVAL_MS: '60000' });
    await waitHealthy();
    // a newer snapshot (1.5 s ahead, within the future tolerance) is already stored
    const ahead = Date.now() + 1500;
    expect(await writeSnapshot(redis, 'BTCUSDT', ahead, { position_amt: '0.007', side: 'LONG', ts_ms: String(ahead), ts_epoch: (ahead / 1000).toFixed(3), source: 'rest' })).toBe(true);
    const older = async () => (await services[0]!.registry.getSingleMetric('p33_user_stream_snapshots_total')?.get())?.values.find((v) => v.labels.result === 'older')?.value ?? 0;
    const before = await older();
    await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.001');
    await waitFor(async () => (await older()) > before, 10_000, 10, 'push refused as older');
    expect(await snap('BTCUSDT')).toMatchObject({ position_amt: '0.007', ts_ms: String(ahead), source: 'rest' });
  });

  it('ws_drop and listen_key_expire: the brain reconnects by itself and stream detection resumes', async () => {
    px = await startPaperExchange({ positions: { ETHUSDT: '0.05' } });
    await start(['position-state-brain'], { P33_SNAPSHOT_INTERVAL_MS: '300', P33_REST_VERIFY_INTERVAL_MS: '60000' });
    await waitHealthy();
    for (const kind of ['ws_drop', 'listen_key_expire'] as const) {
      const before = Number((await streamState()).reconnects);
      await adminWsFault(px.url, { kind });
      await waitFor(async () => Number((await streamState()).reconnects) > before, 20_000, 20, `reconnect after ${kind}`);
      await waitHealthy(`healthy after ${kind}`);
      await adminTrade(px.url, 'ETHUSDT', 'BUY', '0.01');
      const want = await exchangeAmt('ETHUSDT');
      const s = await waitFor(async () => {
        const h = await snap('ETHUSDT');
        return h.position_amt === want ? h : null;
      }, 10_000, 10, `snapshot after ${kind}`);
      expect(s.source).toBe('stream');
    }
  });
});

describe('shared exchange back-off', () => {
  it('a 429 on the listen key raises the shared back-off; no listen key request is sent until it ends; then the stream connects', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
    await adminFaults(px.url, { kind: 'http_429', endpoints: ['listenKey'], count: 1, retry_after_s: 2 });
    await start(['position-state-brain'], { P33_SNAPSHOT_INTERVAL_MS: '1000' });
    await waitHealthy('healthy after the back-off');
    expect(await redis.get(keys.exchangeBackoffReason())).toBe('rate_limited');
    const until = Number(await redis.get(keys.exchangeBackoffUntil()));
    const lk = (await adminRequests(px.url)).filter((r) => r.path === '/fapi/v1/listenKey');
    expect(lk[0]!.status).toBe(429);
    expect(lk.slice(1).length).toBeGreaterThan(0);
    for (const r of lk.slice(1)) expect(r.ts_ms).toBeGreaterThanOrEqual(until);
  });
});

describe('fail closed', () => {
  it('ws_silence for 20 s: REST keeps snapshots fresh (no hold); a missed trade is found by REST and the stream is distrusted', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
    await start(['position-state-brain', 'reconcile-engine'], { P34_LOOP_CADENCE_SEC: '1' });
    await waitHealthy();
    await waitFor(async () => (await redis.hget(keys.reconcileState('BTCUSDT'), 'status')) === 'OK', 20_000, 50, 'engine OK');
    await adminWsFault(px.url, { kind: 'ws_silence', duration_ms: 20_000 });
    const until = Date.now() + 20_000;
    const seen = new Set<string>();
    let lastTs = 0;
    let advanced = 0;
    while (Date.now() < until - 3000) {
      const [hold, ts] = await Promise.all([redis.get(keys.holdReason('BTCUSDT')), redis.hget(keys.snapshot('BTCUSDT'), 'ts_ms')]);
      if (hold) seen.add(hold);
      if (Number(ts) > lastTs) {
        if (lastTs > 0) advanced++;
        lastTs = Number(ts);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...seen]).toEqual([]); // no hold at all while only the stream is silent
    expect(advanced).toBeGreaterThanOrEqual(2); // REST kept verifying
    expect((await snap('BTCUSDT')).source).toBe('rest');
    // a trade the silent stream never announces: REST finds it, the stream is distrusted
    await adminTrade(px.url, 'ETHUSDT', 'SELL', '0.02');
    const s = await waitFor(async () => {
      const h = await snap('ETHUSDT');
      return h.position_amt === '-0.02' ? h : null;
    }, 15_000, 20, 'REST finds the missed trade');
    expect(s.source).toBe('rest');
    const st = await waitFor(async () => {
      const h = await streamState();
      return h.state !== 'healthy' ? h : null;
    }, 10_000, 20, 'stream distrusted');
    expect(st.reason).toMatch(/missed_event|waiting for a REST baseline|socket closed/);
  }, 60_000);

  it('a hedge-mode leg (ps=LONG) is never written: the stream is distrusted and the snapshot keeps the old amount until it goes stale', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
    await start(['position-state-brain'], { P33_SNAPSHOT_INTERVAL_MS: '200', P33_REST_VERIFY_INTERVAL_MS: '60000' });
    await waitHealthy();
    await setPositionMode(px.url, true);
    await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.003');
    const st = await waitFor(async () => {
      const h = await streamState();
      return /position_mode/.test(h.reason ?? '') ? h : null;
    }, 10_000, 20, 'position_mode reported');
    expect(st.state).not.toBe('healthy');
    await new Promise((r) => setTimeout(r, 500));
    expect((await snap('BTCUSDT')).position_amt).toBe('0.007'); // REST refuses hedge mode too: nothing newer
  });

  it('stream silent and REST failing: snapshots go stale and the engine holds stale_exchange', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
    await start(['position-state-brain', 'reconcile-engine'], { P33_SNAPSHOT_INTERVAL_MS: '200', P33_REST_VERIFY_INTERVAL_MS: '1000', P34_EXCHANGE_FRESHNESS_SEC: '3', P34_LOOP_CADENCE_SEC: '1' });
    await waitHealthy();
    await waitFor(async () => (await redis.hget(keys.reconcileState('BTCUSDT'), 'status')) === 'OK', 20_000, 50, 'engine OK');
    await adminWsFault(px.url, { kind: 'ws_silence', duration_ms: 30_000 });
    await adminFaults(px.url, { kind: 'http_503_unknown', endpoints: ['positionRisk'], duration_ms: 30_000 });
    const frozen = (await snap('BTCUSDT')).ts_ms;
    await waitFor(async () => (await redis.get(keys.holdReason('BTCUSDT'))) === 'stale_exchange', 20_000, 50, 'stale_exchange hold');
    // nothing made the snapshot look fresh: at most the poll in flight when the fault went in landed
    const now = await snap('BTCUSDT');
    expect(Date.now() - Number(now.ts_ms)).toBeGreaterThan(3000);
    expect(Number(now.ts_ms) - Number(frozen)).toBeLessThan(1500);
    await clearFaults(px.url);
    await waitFor(async () => (await redis.get(keys.hold('BTCUSDT'))) === null, 20_000, 50, 'hold cleared after recovery');
  }, 60_000);
});
