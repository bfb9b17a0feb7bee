/**
 * The venue journal against the paper exchange and a private Redis, through the position brain (user data
 * stream + REST verifier):
 * - every fill on the account is recorded once (trade id) with its origin: ours (a client order id of our
 *   apply layer), foreign (a manual trade), liquidation, adl, settlement; the REST verifier re-reads them
 *   and records nothing twice;
 * - a fill the stream never delivered (`ws_silence`) is recorded by REST (`source=rest`);
 * - Redis losing the journal (keys deleted: a rollback) → the verifier re-records every fill once;
 * - a gap the verifier cannot close (REST userTrades failing after a disconnect) stays open.
 */
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '../../src/adapters/redis/client.js';
import { STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { createExchangeGateway, parseExchangeConfig } from '../../src/adapters/exchange/factory.js';
import { clientOrderIdFor } from '../../src/domain/apply.js';
import { Decimal } from '../../src/domain/decimal.js';
import { venueFillFromFields } from '../../src/domain/venue-fill.js';
import { formatVenueFill } from '../../src/cli/commands/events.js';
import { buildServices } from '../../src/services/index.js';
import type { Service } from '../../src/host/service.js';
import { userStreamStateKey } from '../../src/services/position-state-brain/user-stream.js';
import { adminFaults, adminTrade, adminTrades, adminVenueClose, adminWsFault, clearFaults, startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';

let px: PaperExchange;
let srv: TestRedis;
let redis: Redis;
let services: Service[] = [];

const env = (extra: Record<string, string> = {}) => ({
  REDIS_URL: srv.url,
  P3_ALLOWLIST: 'BTCUSDT',
  EXCHANGE: 'paper',
  EXCHANGE_BASE_URL: px.url,
  EXCHANGE_API_KEY: px.apiKey,
  EXCHANGE_API_SECRET: px.apiSecret,
  EXCHANGE_TIMEOUT_MS: '2000',
  P33_PERMITS_ENABLED: 'false',
  P33_PROMETHEUS_PORT: '0',
  P33_LOG_LEVEL: process.env.DEBUG_LOG ?? 'silent',
  P3_INSTANCE_ID: 'brain-v',
  P33_SNAPSHOT_INTERVAL_MS: '1000',
  P33_REST_VERIFY_INTERVAL_MS: '5000',
  P33_VENUE_VERIFY_INTERVAL_MS: '1000',
  ...extra,
});

async function startBrain(extra: Record<string, string> = {}): Promise<Service> {
  const [svc] = await buildServices(['position-state-brain'], env(extra));
  await svc!.start();
  services.push(svc!);
  await waitFor(async () => (await redis.hget(userStreamStateKey('brain-v'), 'state')) === 'healthy', 20_000, 20, 'stream healthy');
  return svc!;
}

const journal = async () => (await redis.xrange(STREAMS.exchangeFills, '-', '+')).map(([, f]) => {
  const o: Record<string, string> = {};
  for (let i = 0; i < f.length; i += 2) o[f[i]!] = f[i + 1]!;
  return o;
});
const metric = async (svc: Service, name: string, labels: Record<string, string>) => (await svc.registry.getSingleMetric(name)?.get())?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value ?? 0;

beforeAll(async () => {
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test-venue-journal' });
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

describe('venue journal', () => {
  it('records every fill once with its origin; the REST verifier adds no duplicate', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.010' } });
    const svc = await startBrain();
    const gw = createExchangeGateway(parseExchangeConfig(env()));
    const ours = clientOrderIdFor('plan-venue-1');
    try {
      await gw.placeMarketOrder({ symbol: 'BTCUSDT', side: 'BUY', qty: new Decimal('0.002'), reduceOnly: false, clientOrderId: ours });
    } finally {
      await gw.close();
    }
    await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.001');
    await adminVenueClose(px.url, 'liquidate', 'BTCUSDT', '0.004');
    await adminVenueClose(px.url, 'adl', 'BTCUSDT', '0.003');
    await adminVenueClose(px.url, 'settle', 'BTCUSDT');
    const trades = await adminTrades(px.url);
    const rows = await waitFor(async () => {
      const j = await journal();
      return j.length >= trades.length ? j : null;
    }, 10_000, 20, 'journal complete').catch(async (e) => { console.log(JSON.stringify(await journal()), JSON.stringify(trades)); throw e; });
    expect(rows.map((r) => r.origin)).toEqual(['ours', 'foreign', 'liquidation', 'adl', 'settlement']);
    expect(new Set(rows.map((r) => r.trade_id)).size).toBe(rows.length);
    // `p3 events --fills` shows them
    expect(formatVenueFill('1-0', rows[1]!)).toMatch(/ FILL foreign +BTCUSDT +BUY 0\.001 @95000 trade=2 order=4000000002 client_order_id=web_4000000002 /);
    const first = venueFillFromFields(rows[0]!)!;
    expect(first).toMatchObject({ symbol: 'BTCUSDT', clientOrderId: ours, side: 'BUY', source: 'stream', reduceOnly: false });
    expect(first.lastQty.toString()).toBe('0.002');
    expect(first.commission?.gt(0)).toBe(true);
    expect(rows[2]).toMatchObject({ side: 'SELL', last_qty: '0.004', client_order_id: expect.stringMatching(/^autoclose-/) });
    expect(rows[4]).toMatchObject({ last_qty: '0.006', client_order_id: expect.stringMatching(/^settlement_autoclose-/) });
    // the verifier re-read them (duplicates counted) and wrote nothing more
    await waitFor(async () => (await metric(svc, 'p33_venue_fills_duplicate_total', { source: 'rest' })) >= 1 || (await redis.hget(keys.venueCursor('BTCUSDT'), 'verified_ms')) !== null, 10_000, 50, 'verified');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await journal()).length).toBe(trades.length);
    expect(await metric(svc, 'p33_venue_fills_total', { symbol: 'BTCUSDT', origin: 'foreign' })).toBe(1);
    expect(await metric(svc, 'p33_venue_fills_total', { symbol: 'BTCUSDT', origin: 'liquidation' })).toBe(1);
    expect(await redis.hget(keys.venueCursor('BTCUSDT'), 'gap_since_ms')).toBeNull();
    expect(await redis.hget(keys.venueCursor('BTCUSDT'), 'last_trade_id')).toBe(String(trades[trades.length - 1]!.id));
  });

  it('a fill the stream never delivered is recorded by REST; a Redis rollback of the journal is re-read once', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.010' } });
    await startBrain();
    await adminWsFault(px.url, { kind: 'ws_silence', duration_ms: 3000 });
    await adminTrade(px.url, 'BTCUSDT', 'SELL', '0.003');
    const rows = await waitFor(async () => {
      const j = await journal();
      return j.length === 1 ? j : null;
    }, 10_000, 20, 'REST records the silent fill');
    expect(rows[0]).toMatchObject({ origin: 'foreign', source: 'rest', side: 'SELL', last_qty: '0.003' });
    await clearFaults(px.url);
    await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.001');
    await waitFor(async () => ((await journal()).length === 2 ? true : null), 10_000, 20, 'second fill');
    // Redis loses the journal (a failover to a replica that never had it)
    await redis.del(STREAMS.exchangeFills, keys.venueTrades('BTCUSDT'), keys.venueCursor('BTCUSDT'));
    const again = await waitFor(async () => {
      const j = await journal();
      return j.length >= 2 ? j : null;
    }, 10_000, 20, 're-recorded after the rollback');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await journal()).length).toBe(2);
    expect(again.every((r) => r.source === 'rest')).toBe(true);
  });

  it('a gap the verifier cannot close stays open (REST userTrades failing after a disconnect)', async () => {
    px = await startPaperExchange({ positions: { BTCUSDT: '0.010' } });
    await startBrain();
    await waitFor(async () => ((await redis.hget(keys.venueCursor('BTCUSDT'), 'verified_ms')) !== null ? true : null), 10_000, 20, 'first verification');
    await adminFaults(px.url, { kind: 'http_503_unavailable', endpoints: ['userTrades'] });
    await adminWsFault(px.url, { kind: 'ws_drop' });
    const gap = await waitFor(async () => redis.hget(keys.venueCursor('BTCUSDT'), 'gap_since_ms'), 10_000, 20, 'gap marked');
    await new Promise((r) => setTimeout(r, 2500));
    expect(await redis.hget(keys.venueCursor('BTCUSDT'), 'gap_since_ms')).toBe(gap);
    await clearFaults(px.url);
    await waitFor(async () => ((await redis.hget(keys.venueCursor('BTCUSDT'), 'gap_since_ms')) === null ? true : null), 10_000, 20, 'gap closed once REST answers');
  });
});
