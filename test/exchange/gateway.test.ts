/**
 * The ccxt gateway (the adapter production uses) against the paper exchange: every port method, every
 * fault kind and every rejection mapped to the typed errors of src/adapters/exchange/errors.ts, hedge
 * mode refused, and configuration errors naming the variable.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { Auth, Banned, HedgeModeRefused, OrderRejected, OutcomeUnknown, RateLimited, ReduceOnlyRejected, Unavailable } from '../../src/adapters/exchange/errors.js';
import { BinanceHttpError, mapExchangeError, parsePositions } from '../../src/adapters/exchange/ccxt.js';
import { createExchangeGateway, parseExchangeConfig } from '../../src/adapters/exchange/factory.js';
import { ConfigError } from '../../src/config/env.js';
import { Decimal, fmt } from '../../src/domain/decimal.js';
import type { ExchangeGateway, MarketOrderRequest } from '../../src/ports/exchange.js';
import { freePort } from '../helpers/redis.js';
import { adminFaults, adminOrders, adminPositions, adminRequests, adminSetPosition, clearFaults, clearRequests, setPositionMode, startPaperExchange, type PaperExchange } from '../helpers/paper.js';

let px: PaperExchange;
let gw: ExchangeGateway;
const extra: ExchangeGateway[] = [];

function gateway(env: Record<string, string> = {}, test: { timeDifferenceMs?: number } = {}): ExchangeGateway {
  const g = createExchangeGateway(
    parseExchangeConfig({ EXCHANGE: 'paper', EXCHANGE_BASE_URL: px.url, EXCHANGE_API_KEY: px.apiKey, EXCHANGE_API_SECRET: px.apiSecret, EXCHANGE_TIMEOUT_MS: '1500', ...env }),
    test,
  );
  extra.push(g);
  return g;
}

let n = 0;
const order = (o: Partial<MarketOrderRequest> = {}): MarketOrderRequest => ({ symbol: 'BTCUSDT', side: 'BUY', qty: new Decimal('0.001'), reduceOnly: false, clientOrderId: `gw-${++n}`, ...o });

async function thrown(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

beforeAll(async () => {
  px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
  gw = gateway();
});
afterAll(async () => {
  for (const g of extra) await g.close();
  await px.close();
});
beforeEach(async () => {
  await clearFaults(px.url);
  await adminSetPosition(px.url, 'BTCUSDT', '0.007');
  await adminSetPosition(px.url, 'ETHUSDT', '0');
});

describe('port methods', () => {
  it('fetchPositions: signed exact amounts; flat symbols absent', async () => {
    await adminSetPosition(px.url, 'ETHUSDT', '-1.234');
    const a = await gw.fetchPositions();
    expect([...a.positions.keys()].sort()).toEqual(['BTCUSDT', 'ETHUSDT']);
    expect(fmt(a.positions.get('BTCUSDT')!.amount)).toBe('0.007');
    expect(fmt(a.positions.get('ETHUSDT')!.amount)).toBe('-1.234');
    expect(fmt(a.positions.get('ETHUSDT')!.markPrice!)).toBe('3300');
    await adminSetPosition(px.url, 'ETHUSDT', '0');
    expect((await gw.fetchPositions()).positions.has('ETHUSDT')).toBe(false);
  });

  it('symbolRules: lot step, min qty, tick, min notional as exact decimals; unknown symbol → Unavailable', async () => {
    const r = await gw.symbolRules('BTCUSDT');
    expect([fmt(r.stepSize), fmt(r.minQty), fmt(r.tickSize!), fmt(r.minNotional!)]).toEqual(['0.001', '0.001', '0.1', '5']);
    expect(await thrown(gw.symbolRules('XRPUSDT'))).toBeInstanceOf(Unavailable);
  });

  it('placeMarketOrder (RESULT) and fetchOrderByClientId; unknown client id → null', async () => {
    const o = await gw.placeMarketOrder(order({ side: 'SELL', qty: new Decimal('0.002'), reduceOnly: true, clientOrderId: 'plan-abc' }));
    expect(o).toMatchObject({ clientOrderId: 'plan-abc', symbol: 'BTCUSDT', side: 'SELL', status: 'FILLED', reduceOnly: true });
    expect([fmt(o.qty), fmt(o.filledQty), fmt(o.avgPrice!)]).toEqual(['0.002', '0.002', '95000']);
    const again = await gw.fetchOrderByClientId('BTCUSDT', 'plan-abc');
    expect(again?.orderId).toBe(o.orderId);
    expect(await gw.fetchOrderByClientId('BTCUSDT', 'never-sent')).toBeNull();
    expect((await adminPositions(px.url)).BTCUSDT?.positionAmt).toBe('0.005');
  });

  it('serverTime', async () => {
    expect(Math.abs((await gw.serverTime()) - Date.now())).toBeLessThan(60_000);
  });
});

describe('rejections → typed errors', () => {
  it('-2022 → ReduceOnlyRejected (increase and flip); position unchanged', async () => {
    const inc = await thrown(gw.placeMarketOrder(order({ reduceOnly: true })));
    expect(inc).toBeInstanceOf(ReduceOnlyRejected);
    expect((inc as ReduceOnlyRejected).code).toBe(-2022);
    expect(await thrown(gw.placeMarketOrder(order({ side: 'SELL', qty: new Decimal('0.008'), reduceOnly: true })))).toBeInstanceOf(ReduceOnlyRejected);
    expect((await adminPositions(px.url)).BTCUSDT?.positionAmt).toBe('0.007');
  });

  it('-1111 → OrderRejected{code, msg}; -4116 (client id of an OPEN order) → OrderRejected', async () => {
    const p = await thrown(gw.placeMarketOrder(order({ qty: new Decimal('0.0015') })));
    expect(p).toBeInstanceOf(OrderRejected);
    expect(p).not.toBeInstanceOf(ReduceOnlyRejected);
    expect((p as OrderRejected).code).toBe(-1111);
    // client order ids are unique among OPEN orders only (New Order, newClientOrderId): a paper MARKET order is
    // never open, so -4116 cannot be provoked here; its mapping is checked on the answer itself
    const d = mapExchangeError(new BinanceHttpError(400, -4116, 'ClientOrderId is duplicated.', null), 'order');
    expect(d).toBeInstanceOf(OrderRejected);
    expect((d as OrderRejected).code).toBe(-4116);
    expect((d as OrderRejected).msg).toBe('ClientOrderId is duplicated.');
  });

  it('-1021 timestamp: nothing is executed; Unavailable for reads, OrderRejected(-1021) for an order answer', async () => {
    const skewed = gateway({ EXCHANGE_SYNC_TIME: 'false' }, { timeDifferenceMs: 20_000 });
    await clearRequests(px.url);
    const e = await thrown(skewed.placeMarketOrder(order()));
    // the one-way-mode check (a signed read) is refused first, so the order is never sent
    expect(e).toBeInstanceOf(Unavailable);
    expect(e.message).toContain('-1021');
    expect((await adminRequests(px.url)).some((r) => r.path === '/fapi/v1/order')).toBe(false);
    expect(await thrown(skewed.fetchPositions())).toBeInstanceOf(Unavailable);
    const mapped = mapExchangeError(new BinanceHttpError(400, -1021, 'Timestamp for this request is outside of the recvWindow.', null), 'order');
    expect(mapped).toBeInstanceOf(OrderRejected);
    expect((mapped as OrderRejected).code).toBe(-1021);
    // with EXCHANGE_SYNC_TIME (default) the same clock offset is corrected from /fapi/v1/time
    const synced = gateway({}, { timeDifferenceMs: 20_000 });
    expect((await synced.fetchPositions()).positions.has('BTCUSDT')).toBe(true);
    expect((await synced.placeMarketOrder(order())).status).toBe('FILLED');
  });

  it('wrong key and wrong secret (bad signature) → Auth, nothing executed', async () => {
    const before = (await adminOrders(px.url)).filter((o) => o.status === 'FILLED').length;
    expect(await thrown(gateway({ EXCHANGE_API_KEY: 'BBBBBBBBBBBBBBBBBBBBBBBB' }).fetchPositions())).toBeInstanceOf(Auth);
    expect(await thrown(gateway({ EXCHANGE_API_SECRET: 'wrong-secret' }).fetchPositions())).toBeInstanceOf(Auth);
    expect(await thrown(gateway({ EXCHANGE_API_SECRET: 'wrong-secret', EXCHANGE_SYNC_TIME: 'false' }).placeMarketOrder(order()))).toBeInstanceOf(Auth);
    expect((await adminOrders(px.url)).filter((o) => o.status === 'FILLED').length).toBe(before);
  });

  it('hedge mode → HedgeModeRefused for positions and orders; no order sent', async () => {
    await setPositionMode(px.url, true);
    try {
      const g = gateway();
      expect(await thrown(g.fetchPositions())).toBeInstanceOf(HedgeModeRefused);
      await clearRequests(px.url);
      expect(await thrown(g.placeMarketOrder(order()))).toBeInstanceOf(HedgeModeRefused);
      expect((await adminRequests(px.url)).some((r) => r.path === '/fapi/v1/order')).toBe(false);
    } finally {
      await setPositionMode(px.url, false);
    }
  });

  it('a hedge-mode leg in a positions answer is refused even when the mode check passed', () => {
    expect(() => parsePositions([{ symbol: 'BTCUSDT', positionSide: 'LONG', positionAmt: '0.001' }])).toThrow(HedgeModeRefused);
  });

  it('an unparseable positions answer is never read as flat', () => {
    expect(() => parsePositions({ code: 0 })).toThrow(Unavailable);
    expect(() => parsePositions([{ symbol: 'BTCUSDT', positionAmt: 'abc' }])).toThrow(Unavailable);
    expect(() => parsePositions([{ positionAmt: '0.1' }])).toThrow(Unavailable);
    expect(() => parsePositions([{ symbol: 'BTCUSDT', positionAmt: '0.1' }, { symbol: 'BTCUSDT', positionAmt: '0.2' }])).toThrow(Unavailable);
    expect(parsePositions([]).size).toBe(0);
  });
});

describe('faults → typed errors', () => {
  it('http_429 → RateLimited{retryAfterMs from Retry-After}, nothing executed', async () => {
    await adminFaults(px.url, { kind: 'http_429', retry_after_s: 7 });
    const e = await thrown(gw.placeMarketOrder(order({ clientOrderId: 'rl-1' })));
    expect(e).toBeInstanceOf(RateLimited);
    expect((e as RateLimited).retryAfterMs).toBe(7000);
    expect(await thrown(gw.fetchPositions())).toBeInstanceOf(RateLimited);
    await clearFaults(px.url);
    expect(await gw.fetchOrderByClientId('BTCUSDT', 'rl-1')).toBeNull();
  });

  it('http_418 → Banned{untilMs}', async () => {
    await adminFaults(px.url, { kind: 'http_418', retry_after_s: 30, count: 1 });
    const e = await thrown(gw.fetchPositions());
    expect(e).toBeInstanceOf(Banned);
    expect((e as Banned).untilMs).toBeGreaterThan(Date.now() + 20_000);
    expect((e as Banned).untilMs).toBeLessThan(Date.now() + 40_000);
  });

  it('http_503_unknown on an order → OutcomeUnknown, and the order DID execute (found by client id)', async () => {
    await adminFaults(px.url, { kind: 'http_503_unknown', count: 1, endpoints: ['order'] });
    const e = await thrown(gw.placeMarketOrder(order({ clientOrderId: 'u503' })));
    expect(e).toBeInstanceOf(OutcomeUnknown);
    const found = await gw.fetchOrderByClientId('BTCUSDT', 'u503');
    expect(found?.status).toBe('FILLED');
    expect((await adminPositions(px.url)).BTCUSDT?.positionAmt).toBe('0.008');
  });

  it('http_503_unknown on a read → Unavailable', async () => {
    await adminFaults(px.url, { kind: 'http_503_unknown', endpoints: ['positionRisk'] });
    expect(await thrown(gw.fetchPositions())).toBeInstanceOf(Unavailable);
  });

  it('timeout on an order → OutcomeUnknown, and the order DID execute', async () => {
    await adminFaults(px.url, { kind: 'timeout', count: 1, endpoints: ['order'] });
    const e = await thrown(gw.placeMarketOrder(order({ clientOrderId: 'tmo' })));
    expect(e).toBeInstanceOf(OutcomeUnknown);
    expect((await gw.fetchOrderByClientId('BTCUSDT', 'tmo'))?.status).toBe('FILLED');
  });

  it('timeout on a read → Unavailable', async () => {
    await adminFaults(px.url, { kind: 'timeout', count: 1, endpoints: ['positionRisk'] });
    expect(await thrown(gw.fetchPositions())).toBeInstanceOf(Unavailable);
  });

  it('latency below the timeout is served; above it, a read is Unavailable', async () => {
    await adminFaults(px.url, { kind: 'latency', latency_ms: 300, count: 1, endpoints: ['positionRisk'] });
    expect((await gw.fetchPositions()).positions.has('BTCUSDT')).toBe(true);
    await adminFaults(px.url, { kind: 'latency', latency_ms: 3000, count: 1, endpoints: ['positionRisk'] });
    expect(await thrown(gw.fetchPositions())).toBeInstanceOf(Unavailable);
  });

  it('fault count and endpoints: only matching paths, only `count` times', async () => {
    await adminFaults(px.url, { kind: 'http_503_unknown', count: 2, endpoints: ['positionRisk'] });
    expect(fmt((await gw.symbolRules('ETHUSDT')).stepSize)).toBe('0.001');
    expect(await thrown(gw.fetchPositions())).toBeInstanceOf(Unavailable);
    expect(await thrown(gw.fetchPositions())).toBeInstanceOf(Unavailable);
    expect((await gw.fetchPositions()).positions.has('BTCUSDT')).toBe(true);
  });

  it('nothing listening → Unavailable for an order (connection refused: nothing was sent)', async () => {
    const port = await freePort();
    const dead = createExchangeGateway(parseExchangeConfig({ EXCHANGE_BASE_URL: `http://127.0.0.1:${port}`, EXCHANGE_API_KEY: 'k', EXCHANGE_API_SECRET: 's', EXCHANGE_SYNC_TIME: 'false' }));
    extra.push(dead);
    const e = await thrown(dead.placeMarketOrder(order()));
    expect(e).toBeInstanceOf(Unavailable);
  });
});

describe('configuration', () => {
  it('names the bad variable', () => {
    const base = { EXCHANGE_BASE_URL: 'http://127.0.0.1:1', EXCHANGE_API_KEY: 'k', EXCHANGE_API_SECRET: 's' };
    const bad = (env: Record<string, string>) => {
      try {
        parseExchangeConfig(env);
      } catch (err) {
        return err instanceof ConfigError ? err.variable : 'not a ConfigError';
      }
      return 'accepted';
    };
    expect(bad({ ...base, EXCHANGE: 'kraken' })).toBe('EXCHANGE');
    expect(bad({ EXCHANGE_API_KEY: 'k', EXCHANGE_API_SECRET: 's' })).toBe('EXCHANGE_BASE_URL');
    expect(bad({ ...base, EXCHANGE_API_KEY: '' })).toBe('EXCHANGE_API_KEY');
    expect(bad({ ...base, EXCHANGE_API_SECRET: '' })).toBe('EXCHANGE_API_SECRET');
    expect(bad({ ...base, EXCHANGE_RECV_WINDOW_MS: '70000' })).toBe('EXCHANGE_RECV_WINDOW_MS');
    expect(bad({ ...base, EXCHANGE_TIMEOUT_MS: 'soon' })).toBe('EXCHANGE_TIMEOUT_MS');
    expect(bad({ ...base, EXCHANGE_DEMO: 'maybe' })).toBe('EXCHANGE_DEMO');
    expect(bad({ EXCHANGE: 'binanceusdm', EXCHANGE_API_KEY: 'k', EXCHANGE_API_SECRET: 's' })).toBe('accepted');
    expect(parseExchangeConfig({ EXCHANGE: 'binanceusdm', EXCHANGE_TESTNET: 'true', EXCHANGE_API_KEY: 'k', EXCHANGE_API_SECRET: 's' })).toMatchObject({ exchange: 'binanceusdm', demo: true, recvWindowMs: 5000, timeoutMs: 10000, syncTime: true });
  });
});
