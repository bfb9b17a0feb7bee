/**
 * The shared exchange back-off (quantum:exchange:backoff_until) against real Redis and the paper
 * exchange: a 429 storm gives RateLimited and NO request reaches the exchange before Retry-After has
 * passed, from this gateway or any other sharing the Redis; 418 bans are shared as Banned; the back-off
 * only ever grows; an unreadable back-off refuses the call (fail closed).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MAX_BACKOFF_MS, clearBackoff, raiseBackoff, readBackoff, withSharedBackoff } from '../../src/adapters/exchange/backoff.js';
import { Banned, RateLimited, Unavailable } from '../../src/adapters/exchange/errors.js';
import { createExchangeGateway, parseExchangeConfig } from '../../src/adapters/exchange/factory.js';
import { createRedis } from '../../src/adapters/redis/client.js';
import { keys } from '../../src/adapters/redis/keys.js';
import type { ExchangeGateway } from '../../src/ports/exchange.js';
import { startTestRedis, waitFor, type TestRedis } from '../helpers/redis.js';
import { adminFaults, adminRequests, clearFaults, clearRequests, startPaperExchange, type PaperExchange } from '../helpers/paper.js';

let px: PaperExchange;
let srv: TestRedis;
let redis: Redis;
const closers: Array<() => Promise<void> | void> = [];

function shared(r: Redis = redis): ExchangeGateway {
  const inner = createExchangeGateway(parseExchangeConfig({ EXCHANGE_BASE_URL: px.url, EXCHANGE_API_KEY: px.apiKey, EXCHANGE_API_SECRET: px.apiSecret, EXCHANGE_TIMEOUT_MS: '2000' }));
  closers.push(() => inner.close());
  return withSharedBackoff(inner, r);
}

async function thrown(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

const exchangeRequests = async () => (await adminRequests(px.url)).filter((r) => r.path.startsWith('/fapi/'));

beforeAll(async () => {
  px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
  srv = await startTestRedis();
  redis = createRedis(srv.url, { name: 'test-backoff' });
});
afterAll(async () => {
  for (const c of closers) await c();
  redis.disconnect();
  await srv.stop();
  await px.close();
});
beforeEach(async () => {
  await clearFaults(px.url);
  await redis.del(keys.exchangeBackoffUntil(), keys.exchangeBackoffReason());
});

describe('shared back-off', () => {
  it('429 storm: RateLimited, back-off shared in Redis, no request from any gateway before Retry-After, then calls resume', async () => {
    const a = shared();
    const b = shared(); // another service, same Redis
    await a.fetchPositions(); // warm-up: one-way check done
    await b.fetchPositions();
    await adminFaults(px.url, { kind: 'http_429', retry_after_s: 2 });
    const e = await thrown(a.fetchPositions());
    expect(e).toBeInstanceOf(RateLimited);
    const st = await readBackoff(redis);
    expect(st.reason).toBe('rate_limited');
    expect(st.untilMs).toBeGreaterThan(Date.now() + 1000);
    const hitAt = Date.now();
    await clearRequests(px.url);
    // while the back-off stands, both gateways refuse without calling the exchange
    let refusals = 0;
    while (Date.now() < st.untilMs - 200) {
      for (const g of [a, b]) {
        const r = await thrown(g.fetchPositions());
        expect(r).toBeInstanceOf(RateLimited);
        expect((r as RateLimited).retryAfterMs).toBeGreaterThan(0);
        expect((r as RateLimited).retryAfterMs).toBeLessThanOrEqual(st.untilMs - hitAt + 50);
        refusals++;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(refusals).toBeGreaterThan(4);
    const during = (await exchangeRequests()).filter((r) => r.ts_ms < st.untilMs);
    expect(during).toEqual([]);
    // the storm is over: after Retry-After the next call goes out
    await clearFaults(px.url);
    await waitFor(async () => (await a.fetchPositions().then(() => true, () => false)), 10_000, 100, 'calls to resume');
    expect((await exchangeRequests()).every((r) => r.ts_ms >= st.untilMs)).toBe(true);
    expect((await b.fetchPositions()).positions.has('BTCUSDT')).toBe(true);
  });

  it('418: Banned{untilMs} shared with every gateway, order placement refused without a request', async () => {
    const a = shared();
    await adminFaults(px.url, { kind: 'http_418', retry_after_s: 60, count: 1 });
    const e = await thrown(a.serverTime());
    expect(e).toBeInstanceOf(Banned);
    await clearRequests(px.url);
    const b = shared();
    const r = await thrown(b.fetchOrderByClientId('BTCUSDT', 'x'));
    expect(r).toBeInstanceOf(Banned);
    // what is left is read from the key's PTTL (the Redis server's clock): the same end within the time between the reads
    expect(Math.abs((r as Banned).untilMs - (e as Banned).untilMs)).toBeLessThan(2000);
    expect(await exchangeRequests()).toEqual([]);
  });

  it('the back-off only ever grows (a shorter Retry-After never shortens a ban)', async () => {
    expect(await raiseBackoff(redis, 120_000, 'banned')).toBe(120_000);
    const left = await raiseBackoff(redis, 1_000, 'rate_limited');
    expect(left).toBeGreaterThan(110_000);
    const st = await readBackoff(redis);
    expect(st.reason).toBe('banned');
    expect(st.untilMs - Date.now()).toBeGreaterThan(110_000);
    const pttl = await redis.pttl(keys.exchangeBackoffUntil());
    expect(pttl).toBeGreaterThan(120_000);
  });

  it('a back-off from a clock error is bounded to the longest ban (3 days), and an operator lifts it', async () => {
    // a writer whose clock jumped a year ahead: the back-off still ends within 3 days, on the Redis server's clock
    await raiseBackoff(redis, 365 * 24 * 3600_000, 'banned');
    const st = await readBackoff(redis);
    expect(st.untilMs - Date.now()).toBeLessThanOrEqual(MAX_BACKOFF_MS);
    expect(Number(await redis.get(keys.exchangeBackoffUntil()))).toBeLessThanOrEqual(Date.now() + MAX_BACKOFF_MS + 1000);
    expect(await clearBackoff(redis)).toBe(true);
    expect(await readBackoff(redis)).toEqual({ untilMs: 0, reason: null });
    // a reader whose clock runs a day behind the writer's is not blocked longer than the key lives (its PTTL)
    await raiseBackoff(redis, 5_000, 'rate_limited');
    await redis.set(keys.exchangeBackoffUntil(), String(Date.now() + 24 * 3600_000), 'KEEPTTL');
    expect((await readBackoff(redis)).untilMs - Date.now()).toBeLessThanOrEqual(5_000 + 61_000);
    await clearBackoff(redis);
    await clearRequests(px.url);
    await shared().serverTime();
    expect((await exchangeRequests()).length).toBeGreaterThan(0);
  });

  it('an operator-set back-off (redis-cli SET) is honoured', async () => {
    await redis.set(keys.exchangeBackoffUntil(), String(Date.now() + 30_000));
    await clearRequests(px.url);
    expect(await thrown(shared().fetchPositions())).toBeInstanceOf(RateLimited);
    expect(await exchangeRequests()).toEqual([]);
  });

  it('fail closed: an unparseable back-off or an unreachable Redis refuses the call without a request', async () => {
    await redis.set(keys.exchangeBackoffUntil(), 'soon');
    await clearRequests(px.url);
    expect(await thrown(shared().fetchPositions())).toBeInstanceOf(Unavailable);
    await redis.del(keys.exchangeBackoffUntil());
    const lonely = createRedis(srv.url, { name: 'test-backoff-down', overrides: { retryStrategy: () => null, maxRetriesPerRequest: 0, enableOfflineQueue: false } });
    await new Promise((r) => lonely.once('ready', r));
    const g = shared(lonely);
    lonely.disconnect();
    expect(await thrown(g.fetchPositions())).toBeInstanceOf(Unavailable);
    expect(await exchangeRequests()).toEqual([]);
  });
});
