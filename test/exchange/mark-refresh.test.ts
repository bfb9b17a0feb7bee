/**
 * Marks between slow position polls (docs/risk-controls.md#stale-mark): while the brain polls positions
 * less often than its mark refresh (here every 10 s, as with a healthy user data stream), it refreshes
 * `mark_price`, `mark_ts_ms` and `index_price` of the existing snapshots from premiumIndex in between
 * (`snapshotMark-1.lua`), leaving the position fields and `ts_ms` as they were; the mark never goes back in time.
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { keys } from '../../src/adapters/redis/keys.js';
import { snapshotMark } from '../../src/adapters/redis/scripts/index.js';
import { createPositionStateBrainService } from '../../src/services/position-state-brain/index.js';
import type { Service } from '../../src/host/service.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { setIndexPrice, setMarkPrice, startPaperExchange, type PaperExchange } from '../helpers/paper.js';

let px: PaperExchange;
let srv: TestRedis;
let redis: Redis;
let service: Service;

beforeAll(async () => {
  px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test-mark-refresh' });
  service = await createPositionStateBrainService({
    REDIS_URL: srv.url,
    P3_ALLOWLIST: 'BTCUSDT,ETHUSDT',
    EXCHANGE: 'paper',
    EXCHANGE_BASE_URL: px.url,
    EXCHANGE_API_KEY: px.apiKey,
    EXCHANGE_API_SECRET: px.apiSecret,
    P33_SNAPSHOT_INTERVAL_MS: '10000',
    P33_USER_STREAM: 'false',
    P33_PROMETHEUS_PORT: '0',
    P33_LOG_LEVEL: 'silent',
    P33_PERMITS_ENABLED: 'false',
  });
  await service.start();
});
afterAll(async () => {
  await service?.stop();
  redis.disconnect();
  await srv?.stop();
  await px?.close();
});

describe('mark refresh between polls', () => {
  it('the mark and index of every snapshot follow the exchange between polls; the position fields stay', async () => {
    const first = await waitFor(async () => {
      const h = await redis.hgetall(keys.snapshot('ETHUSDT'));
      return h.mark_ts_ms ? h : null;
    }, 10_000, 25, 'first snapshot');
    await setMarkPrice(px.url, 'ETHUSDT', '3400');
    await setIndexPrice(px.url, 'ETHUSDT', '3390');
    await setMarkPrice(px.url, 'BTCUSDT', '96000');
    const eth = await waitFor(async () => {
      const h = await redis.hgetall(keys.snapshot('ETHUSDT'));
      return h.mark_price === '3400' && h.index_price === '3390' ? h : null;
    }, 8000, 50, 'ETHUSDT mark refreshed');
    expect(eth.ts_ms).toBe(first.ts_ms); // no position poll in between
    expect(Number(eth.mark_ts_ms)).toBeGreaterThan(Number(first.mark_ts_ms));
    const btc = await waitFor(async () => {
      const h = await redis.hgetall(keys.snapshot('BTCUSDT'));
      return h.mark_price === '96000' ? h : null;
    }, 8000, 50, 'BTCUSDT mark refreshed');
    expect(btc).toMatchObject({ position_amt: '0.007', side: 'LONG' });
  });

  it('never moves a mark back in time, never creates a snapshot', async () => {
    const cur = await redis.hgetall(keys.snapshot('ETHUSDT'));
    expect(await snapshotMark(redis, { symbol: 'ETHUSDT', mark: '1', markTsMs: Number(cur.mark_ts_ms) - 1, indexPrice: '' })).toBe('not_written');
    expect(await snapshotMark(redis, { symbol: 'SOLUSDT', mark: '1', markTsMs: Date.now(), indexPrice: '' })).toBe('not_written');
    expect(await redis.exists(keys.snapshot('SOLUSDT'))).toBe(0);
  });
});
