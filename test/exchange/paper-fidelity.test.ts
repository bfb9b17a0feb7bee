/**
 * The paper exchange answers as Binance USDⓈ-M documents (docs/architecture.md#exchange-and-paper-exchange-fidelity), checked through the ccxt
 * gateway production uses and through raw signed HTTP where a client cannot produce the request:
 * per-filter order codes, `X-MBX-USED-WEIGHT-1M` by documented weight, query string over body, and the
 * fault kinds of Binance's HTTP return codes with the typed error each one becomes.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OrderRejected, OutcomeUnknown, Unavailable } from '../../src/adapters/exchange/errors.js';
import { createExchangeGateway, parseExchangeConfig } from '../../src/adapters/exchange/factory.js';
import { Decimal } from '../../src/domain/decimal.js';
import { hmacHex } from '../../harness/paper-exchange/auth.js';
import type { ExchangeGateway, MarketOrderRequest } from '../../src/ports/exchange.js';
import { adminFaults, adminOrders, adminPositions, adminSetPosition, clearFaults, startPaperExchange, type PaperExchange } from '../helpers/paper.js';

let px: PaperExchange;
let gw: ExchangeGateway;

beforeAll(async () => {
  // ETHUSDT: lot step 0.002 with min qty 0.004, so "below min" and "not a step multiple" are distinct cases
  px = await startPaperExchange({ positions: { BTCUSDT: '0.007' }, rules: { ETHUSDT: { stepSize: '0.002', minQty: '0.004' } } });
  gw = createExchangeGateway(parseExchangeConfig({ EXCHANGE: 'paper', EXCHANGE_BASE_URL: px.url, EXCHANGE_API_KEY: px.apiKey, EXCHANGE_API_SECRET: px.apiSecret, EXCHANGE_TIMEOUT_MS: '1500' }));
});
afterAll(async () => {
  await gw.close();
  await px.close();
});
beforeEach(async () => {
  await clearFaults(px.url);
  await adminSetPosition(px.url, 'BTCUSDT', '0.007');
  await adminSetPosition(px.url, 'ETHUSDT', '0');
});

let n = 0;
const order = (o: Partial<MarketOrderRequest> = {}): MarketOrderRequest => ({ symbol: 'BTCUSDT', side: 'BUY', qty: new Decimal('0.001'), reduceOnly: false, clientOrderId: `fid-${++n}`, ...o });

async function thrown(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

/** A raw request; SIGNED when `sign` (timestamp appended to the body, or to the query when there is no body). */
async function raw(method: string, path: string, o: { query?: string; body?: string; sign?: boolean } = {}): Promise<{ status: number; weight: number; text: string; json: unknown }> {
  let query = o.query ?? '';
  let body = o.body ?? '';
  if (o.sign) {
    const ts = `timestamp=${Date.now()}`;
    if (body !== '' || method !== 'GET') body = body === '' ? ts : `${body}&${ts}`;
    else query = query === '' ? ts : `${query}&${ts}`;
    const sig = `signature=${hmacHex(px.apiSecret, query + body)}`;
    if (body !== '') body = `${body}&${sig}`;
    else query = query === '' ? sig : `${query}&${sig}`;
  }
  const res = await fetch(`${px.url}${path}${query === '' ? '' : `?${query}`}`, {
    method,
    headers: { 'x-mbx-apikey': px.apiKey, ...(body === '' ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
    ...(body === '' ? {} : { body }),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // an HTML page (WAF)
  }
  return { status: res.status, weight: Number(res.headers.get('x-mbx-used-weight-1m')), text, json };
}

describe('per-filter order codes (error-code page, 40xx - Filters and other Issues)', () => {
  it('-4004 below min qty, -4023 not a step multiple, -1111 finer than the step, -4164 notional; nothing executed', async () => {
    const code = async (o: Partial<MarketOrderRequest>) => {
      const e = await thrown(gw.placeMarketOrder(order(o)));
      expect(e).toBeInstanceOf(OrderRejected);
      return { code: (e as OrderRejected).code, msg: (e as OrderRejected).msg };
    };
    expect(await code({ symbol: 'ETHUSDT', qty: new Decimal('0.002') })).toEqual({ code: -4004, msg: 'Quantity less than min quantity.' });
    expect(await code({ symbol: 'ETHUSDT', qty: new Decimal('0.005') })).toEqual({ code: -4023, msg: 'Qty not increased by step size.' });
    expect(await code({ symbol: 'ETHUSDT', qty: new Decimal('0.0041') })).toEqual({ code: -1111, msg: 'Precision is over the maximum defined for this asset.' });
    expect((await code({ symbol: 'ETHUSDT', qty: new Decimal('0.0001') })).code).toBe(-1111);
    // 0.004 * 1000 = 4 < 5 USDT: the notional filter, unless reduce-only
    await fetch(`${px.url}/admin/mark-price`, { method: 'POST', body: JSON.stringify({ symbol: 'ETHUSDT', price: '1000' }) });
    expect((await code({ symbol: 'ETHUSDT', qty: new Decimal('0.004') })).code).toBe(-4164);
    await fetch(`${px.url}/admin/mark-price`, { method: 'POST', body: JSON.stringify({ symbol: 'ETHUSDT', price: '3300' }) });
    expect((await adminPositions(px.url)).ETHUSDT?.positionAmt).toBe('0');
    // a valid multiple of the step fills
    const ok = await gw.placeMarketOrder(order({ symbol: 'ETHUSDT', qty: new Decimal('0.006') }));
    expect(ok.filledQty.toFixed()).toBe('0.006');
  });
});

describe('X-MBX-USED-WEIGHT-1M by documented weight', () => {
  it('each endpoint adds its documented weight; a new order adds 0', async () => {
    let last = (await raw('GET', '/fapi/v1/ping')).weight;
    const delta = async (method: string, path: string, o: Parameters<typeof raw>[2] = {}) => {
      const r = await raw(method, path, o);
      expect(r.status).toBe(200);
      const d = r.weight - last;
      last = r.weight;
      return d;
    };
    expect(await delta('GET', '/fapi/v1/time')).toBe(1);
    expect(await delta('GET', '/fapi/v1/exchangeInfo')).toBe(1);
    expect(await delta('GET', '/fapi/v1/premiumIndex', { query: 'symbol=BTCUSDT' })).toBe(1);
    expect(await delta('GET', '/fapi/v1/premiumIndex')).toBe(10);
    expect(await delta('GET', '/fapi/v1/leverageBracket', { sign: true })).toBe(1);
    expect(await delta('GET', '/fapi/v2/positionRisk', { sign: true })).toBe(5);
    expect(await delta('GET', '/fapi/v3/positionRisk', { sign: true })).toBe(5);
    expect(await delta('GET', '/fapi/v3/balance', { sign: true })).toBe(5);
    expect(await delta('GET', '/fapi/v3/account', { sign: true })).toBe(5);
    expect(await delta('GET', '/fapi/v1/positionSide/dual', { sign: true })).toBe(30);
    expect(await delta('POST', '/fapi/v1/order', { body: 'symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&newClientOrderId=w-1', sign: true })).toBe(0);
    expect(await delta('GET', '/fapi/v1/order', { query: 'symbol=BTCUSDT&origClientOrderId=w-1', sign: true })).toBe(1);
    expect(await delta('POST', '/fapi/v1/listenKey')).toBe(1);
  });

  it('"Service Unavailable." and -1008 are not counted', async () => {
    const before = (await raw('GET', '/fapi/v1/ping')).weight;
    await adminFaults(px.url, { kind: 'http_503_unavailable', count: 1 });
    expect((await raw('GET', '/fapi/v3/positionRisk', { sign: true })).status).toBe(503);
    await adminFaults(px.url, { kind: 'http_1008', count: 1 });
    expect((await raw('POST', '/fapi/v1/order', { body: 'symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001', sign: true })).status).toBe(503);
    expect((await raw('GET', '/fapi/v1/ping')).weight - before).toBe(1); // only the ping itself
  });
});

describe('query string over body', () => {
  it('a parameter in both: the query string is used (General Information on Endpoints)', async () => {
    const r = await raw('POST', '/fapi/v1/order', { query: 'quantity=0.002&newClientOrderId=q-wins', body: 'symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&newClientOrderId=b-loses&newOrderRespType=RESULT', sign: true });
    expect(r.status).toBe(200);
    expect(r.json).toMatchObject({ clientOrderId: 'q-wins', origQty: '0.002', executedQty: '0.002' });
    expect((await adminPositions(px.url)).BTCUSDT?.positionAmt).toBe('0.009');
  });
});

describe('fault kinds of Binance error pages, through the ccxt gateway', () => {
  const btc = async () => (await adminPositions(px.url)).BTCUSDT?.positionAmt;

  it('http_408 (-1007): executed, outcome unknown, the lookup finds it; with executed:false the lookup finds nothing', async () => {
    await adminFaults(px.url, { kind: 'http_408', count: 1, endpoints: ['/fapi/v1/order'] });
    const o = order();
    expect(await thrown(gw.placeMarketOrder(o))).toBeInstanceOf(OutcomeUnknown);
    expect(await btc()).toBe('0.008');
    expect((await gw.fetchOrderByClientId('BTCUSDT', o.clientOrderId))?.status).toBe('FILLED');
    await adminFaults(px.url, { kind: 'http_408', count: 1, executed: false, endpoints: ['/fapi/v1/order'] });
    const o2 = order();
    expect(await thrown(gw.placeMarketOrder(o2))).toBeInstanceOf(OutcomeUnknown);
    expect(await btc()).toBe('0.008');
    expect(await gw.fetchOrderByClientId('BTCUSDT', o2.clientOrderId)).toBeNull();
  });

  it('http_503_unavailable and http_1001: nothing executed, Unavailable for an order and for a read', async () => {
    for (const kind of ['http_503_unavailable', 'http_1001'] as const) {
      await adminFaults(px.url, { kind, count: 2, endpoints: ['/fapi/v1/order', '/positionRisk'] });
      const o = order();
      expect(await thrown(gw.placeMarketOrder(o))).toBeInstanceOf(Unavailable);
      expect(await thrown(gw.fetchPositions())).toBeInstanceOf(Unavailable);
      expect(await btc()).toBe('0.007');
      expect(await gw.fetchOrderByClientId('BTCUSDT', o.clientOrderId)).toBeNull();
    }
  });

  it('http_1008: a new order is refused (Unavailable, nothing executed); a reduce-only order is exempt and does not use the fault up', async () => {
    await adminFaults(px.url, { kind: 'http_1008', count: 1 });
    expect((await gw.fetchPositions()).positions.get('BTCUSDT')?.amount.toFixed()).toBe('0.007'); // reads are not throttled
    const close = await gw.placeMarketOrder(order({ side: 'SELL', qty: new Decimal('0.002'), reduceOnly: true }));
    expect(close.filledQty.toFixed()).toBe('0.002');
    expect(await btc()).toBe('0.005');
    const e = await thrown(gw.placeMarketOrder(order()));
    expect(e).toBeInstanceOf(Unavailable);
    expect(e.message).toContain('-1008');
    expect(await btc()).toBe('0.005');
    const rejected = (await adminOrders(px.url)).filter((x) => x.clientOrderId === `fid-${n}`);
    expect(rejected).toEqual([]); // throttled before the matching engine: not in the order log
  });

  it('http_403 (WAF): an HTML page without a Binance code; an order is looked up (OutcomeUnknown), a read is Unavailable; nothing executed', async () => {
    await adminFaults(px.url, { kind: 'http_403', count: 1 });
    const r = await raw('GET', '/fapi/v1/time');
    expect(r.status).toBe(403);
    expect(r.text).toContain('403 Forbidden');
    await adminFaults(px.url, { kind: 'http_403', count: 2, endpoints: ['/fapi/v1/order', '/positionRisk'] });
    const o = order();
    expect(await thrown(gw.placeMarketOrder(o))).toBeInstanceOf(OutcomeUnknown);
    expect(await thrown(gw.fetchPositions())).toBeInstanceOf(Unavailable);
    expect(await btc()).toBe('0.007');
    expect(await gw.fetchOrderByClientId('BTCUSDT', o.clientOrderId)).toBeNull();
  });
});
