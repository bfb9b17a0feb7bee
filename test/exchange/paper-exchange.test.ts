/**
 * The paper exchange, driven by the REAL ccxt `binanceusdm` client (unified and implicit API) and by raw
 * HTTP where a client cannot produce the request (tampered signature): every endpoint, exact decimal
 * positions and entry prices, every rejection, the order log and the admin API.
 */
import ccxt from 'ccxt';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { adminOrders, adminPositions, adminRequests, adminSetPosition, adminTrade, clearFaults, setMarkPrice, startPaperExchange, type PaperExchange } from '../helpers/paper.js';

type Client = InstanceType<typeof ccxt.binanceusdm> & Record<string, (p?: Record<string, string>) => Promise<unknown>>;

/** A real ccxt client pointed at the paper exchange. */
function client(px: PaperExchange, o: { apiKey?: string; secret?: string; timeDifference?: number } = {}): Client {
  const ex = new ccxt.binanceusdm({
    apiKey: o.apiKey ?? px.apiKey,
    secret: o.secret ?? px.apiSecret,
    options: { fetchCurrencies: false, maxRetriesOnFailure: 0, timeDifference: o.timeDifference ?? 0 },
  });
  const api = ex.urls.api as Record<string, string>;
  for (const [k, v] of [['fapiPublic', 'v1'], ['fapiPublicV2', 'v2'], ['fapiPublicV3', 'v3'], ['fapiPrivate', 'v1'], ['fapiPrivateV2', 'v2'], ['fapiPrivateV3', 'v3']] as const) api[k] = `${px.url}/fapi/${v}`;
  return ex as Client;
}

/** Binance error body carried in a ccxt error message (`binanceusdm {"code":-2022,...}`). */
async function binanceError(p: Promise<unknown>): Promise<{ code: number; msg: string }> {
  try {
    await p;
  } catch (err) {
    const m = /\{.*\}/.exec((err as Error).message);
    if (!m) throw err;
    return JSON.parse(m[0]) as { code: number; msg: string };
  }
  throw new Error('expected a rejection');
}

let px: PaperExchange;
let ex: Client;
beforeAll(async () => {
  px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
  ex = client(px);
});
afterAll(async () => {
  await ex.close();
  await px.close();
});
beforeEach(async () => {
  await clearFaults(px.url);
  await adminSetPosition(px.url, 'BTCUSDT', '0.007');
  await adminSetPosition(px.url, 'ETHUSDT', '0');
  await setMarkPrice(px.url, 'BTCUSDT', '95000');
  await setMarkPrice(px.url, 'ETHUSDT', '3300');
});

describe('public endpoints', () => {
  it('time, exchangeInfo and unified loadMarkets (lot step 0.001, min qty 0.001, min notional)', async () => {
    const t = (await ex.fapiPublicGetTime()) as { serverTime: number };
    expect(Math.abs(t.serverTime - Date.now())).toBeLessThan(60_000);
    const info = (await ex.fapiPublicGetExchangeInfo()) as { symbols: Array<{ symbol: string; filters: Array<Record<string, string>> }> };
    const btc = info.symbols.find((s) => s.symbol === 'BTCUSDT');
    const byType = Object.fromEntries((btc?.filters ?? []).map((f) => [f.filterType, f]));
    expect(byType.LOT_SIZE).toMatchObject({ stepSize: '0.001', minQty: '0.001' });
    expect(byType.MARKET_LOT_SIZE).toMatchObject({ stepSize: '0.001', minQty: '0.001' });
    expect(byType.PRICE_FILTER?.tickSize).toBeDefined();
    expect(byType.MIN_NOTIONAL?.notional).toBeDefined();
    const markets = await ex.loadMarkets();
    expect(Object.keys(markets).sort()).toEqual(['BTC/USDT:USDT', 'ETH/USDT:USDT']);
    expect(markets['BTC/USDT:USDT']?.limits.amount?.min).toBe(0.001);
    expect(markets['ETH/USDT:USDT']?.precision.amount).toBe(0.001);
  });
});

describe('signed endpoints', () => {
  it('unified fetchPositions (leverageBracket then v3 positionRisk) sees the signed position', async () => {
    await adminSetPosition(px.url, 'ETHUSDT', '-0.25');
    const positions = await ex.fetchPositions();
    const bySym = Object.fromEntries(positions.map((p) => [p.symbol, p]));
    expect(bySym['BTC/USDT:USDT']?.side).toBe('long');
    expect(bySym['BTC/USDT:USDT']?.info.positionAmt).toBe('0.007');
    expect(bySym['ETH/USDT:USDT']?.side).toBe('short');
    expect(bySym['ETH/USDT:USDT']?.info.positionAmt).toBe('-0.25');
    const paths = (await adminRequests(px.url)).map((r) => r.path);
    expect(paths).toContain('/fapi/v1/leverageBracket');
    expect(paths).toContain('/fapi/v3/positionRisk');
  });

  it('v3 positionRisk omits flat symbols, v2 lists every symbol', async () => {
    const v3 = (await ex.fapiPrivateV3GetPositionRisk()) as Array<{ symbol: string; positionAmt: string; positionSide: string }>;
    expect(v3.map((p) => p.symbol)).toEqual(['BTCUSDT']);
    expect(v3[0]).toMatchObject({ positionAmt: '0.007', positionSide: 'BOTH' });
    const v2 = (await ex.fapiPrivateV2GetPositionRisk()) as Array<{ symbol: string; positionAmt: string }>;
    expect(Object.fromEntries(v2.map((p) => [p.symbol, p.positionAmt]))).toEqual({ BTCUSDT: '0.007', ETHUSDT: '0' });
    const one = (await ex.fapiPrivateV3GetPositionRisk({ symbol: 'ETHUSDT' })) as unknown[];
    expect(one).toEqual([]);
  });

  it('leverageBracket lists brackets per symbol', async () => {
    const lb = (await ex.fapiPrivateGetLeverageBracket()) as Array<{ symbol: string; brackets: unknown[] }>;
    expect(lb.map((b) => b.symbol).sort()).toEqual(['BTCUSDT', 'ETHUSDT']);
    expect(lb[0]?.brackets.length).toBeGreaterThan(0);
  });

  it('positionSide/dual reports one-way mode and can be switched', async () => {
    expect(await ex.fapiPrivateGetPositionSideDual()).toEqual({ dualSidePosition: false });
    await ex.setPositionMode(true);
    expect(await ex.fapiPrivateGetPositionSideDual()).toEqual({ dualSidePosition: true });
    const legs = (await ex.fapiPrivateV2GetPositionRisk({ symbol: 'BTCUSDT' })) as Array<{ positionSide: string; positionAmt: string }>;
    expect(legs.map((l) => `${l.positionSide}:${l.positionAmt}`)).toEqual(['LONG:0.007', 'SHORT:0']);
    expect((await binanceError(ex.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.001' }))).code).toBe(-4061);
    await ex.setPositionMode(false);
  });

  it('MARKET order ACK then RESULT, looked up by orderId and by client order id; fills at the mark price with exact decimals', async () => {
    const ack = (await ex.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.002', newClientOrderId: 'ack-1' })) as Record<string, unknown>;
    expect(ack).toMatchObject({ status: 'NEW', executedQty: '0', clientOrderId: 'ack-1' });
    await setMarkPrice(px.url, 'BTCUSDT', '96000');
    const res = (await ex.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.001', newClientOrderId: 'res-1', newOrderRespType: 'RESULT' })) as Record<string, unknown>;
    expect(res).toMatchObject({ status: 'FILLED', executedQty: '0.001', avgPrice: '96000', origQty: '0.001', reduceOnly: false, positionSide: 'BOTH' });
    // 0.007 @95000 + 0.002 @95000 + 0.001 @96000 = 0.01 @95100
    const pos = await adminPositions(px.url);
    expect(pos.BTCUSDT).toMatchObject({ positionAmt: '0.01', entryPrice: '95100' });
    const byId = (await ex.fapiPrivateGetOrder({ symbol: 'BTCUSDT', orderId: String(ack.orderId) })) as Record<string, unknown>;
    expect(byId).toMatchObject({ status: 'FILLED', clientOrderId: 'ack-1', executedQty: '0.002', avgPrice: '95000' });
    const byClient = (await ex.fapiPrivateGetOrder({ symbol: 'BTCUSDT', origClientOrderId: 'res-1' })) as Record<string, unknown>;
    expect(byClient.orderId).toBe(res.orderId);
    expect((await binanceError(ex.fapiPrivateGetOrder({ symbol: 'BTCUSDT', origClientOrderId: 'nope' }))).code).toBe(-2013);
    // unified createOrder + fetchOrder work too
    const o = await ex.createOrder('BTC/USDT:USDT', 'market', 'sell', 0.003, undefined, { reduceOnly: true, newClientOrderId: 'uni-1' });
    expect(o.status).toBe('closed');
    expect((await ex.fetchOrder(o.id as string, 'BTC/USDT:USDT')).clientOrderId).toBe('uni-1');
    expect((await adminPositions(px.url)).BTCUSDT?.positionAmt).toBe('0.007');
  });

  it('0.007 - 0.002 is exactly 0.005; a reduce keeps the entry, a flip re-opens at the mark, flat has entry 0', async () => {
    await adminSetPosition(px.url, 'BTCUSDT', '0.007', '90000');
    await ex.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: '0.002', reduceOnly: 'true' });
    expect((await adminPositions(px.url)).BTCUSDT).toMatchObject({ positionAmt: '0.005', entryPrice: '90000' });
    await ex.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'SELL', type: 'MARKET', quantity: '0.008' });
    expect((await adminPositions(px.url)).BTCUSDT).toMatchObject({ positionAmt: '-0.003', entryPrice: '95000' });
    await ex.fapiPrivatePostOrder({ symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.003', reduceOnly: 'true' });
    expect((await adminPositions(px.url)).BTCUSDT).toMatchObject({ positionAmt: '0', entryPrice: '0' });
  });
});

describe('rejections', () => {
  const order = { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.001' };

  it('-1022 for a tampered request (signature of other parameters) and for a wrong secret', async () => {
    const ts = Date.now();
    const signedPart = `symbol=BTCUSDT&side=BUY&type=MARKET&quantity=0.001&timestamp=${ts}`;
    const sig = createHmac('sha256', px.apiSecret).update(signedPart).digest('hex');
    const tampered = signedPart.replace('quantity=0.001', 'quantity=0.100');
    const res = await fetch(`${px.url}/fapi/v1/order`, { method: 'POST', headers: { 'X-MBX-APIKEY': px.apiKey, 'content-type': 'application/x-www-form-urlencoded' }, body: `${tampered}&signature=${sig}` });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: -1022, msg: 'Signature for this request is not valid.' });
    // the untampered request is accepted (proves the signature scheme itself is Binance's)
    const ok = await fetch(`${px.url}/fapi/v1/order`, { method: 'POST', headers: { 'X-MBX-APIKEY': px.apiKey, 'content-type': 'application/x-www-form-urlencoded' }, body: `${signedPart}&signature=${sig}` });
    expect(ok.status).toBe(200);
    const wrongSecret = client(px, { secret: 'not-the-secret' });
    expect((await binanceError(wrongSecret.fapiPrivateV3GetPositionRisk())).code).toBe(-1022);
    expect((await binanceError(wrongSecret.fapiPrivatePostOrder(order))).code).toBe(-1022);
  });

  it('-2015 for an unknown key, -2014 for a missing key', async () => {
    const wrongKey = client(px, { apiKey: 'AAAAAAAAAAAAAAAAAAAAAAAA' });
    const e = await binanceError(wrongKey.fapiPrivateV3GetPositionRisk());
    expect(e.code).toBe(-2015);
    const res = await fetch(`${px.url}/fapi/v3/positionRisk?timestamp=${Date.now()}&signature=00`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { code: number }).code).toBe(-2014);
  });

  it('-1021 for a timestamp outside recvWindow (client clock behind or ahead)', async () => {
    const behind = client(px, { timeDifference: 10_000 }); // local clock reads 10 s ahead of what is sent
    expect((await binanceError(behind.fapiPrivateV3GetPositionRisk())).code).toBe(-1021);
    const ahead = client(px, { timeDifference: -5_000 });
    expect((await binanceError(ahead.fapiPrivatePostOrder(order))).code).toBe(-1021);
  });

  it('-1111 for a quantity finer than the lot step, -4003 for zero, -1121 for an unknown symbol, -1116 for a non-MARKET type', async () => {
    expect(await binanceError(ex.fapiPrivatePostOrder({ ...order, quantity: '0.0015' }))).toEqual({ code: -1111, msg: 'Precision is over the maximum defined for this asset.' });
    expect((await binanceError(ex.fapiPrivatePostOrder({ ...order, quantity: '0' }))).code).toBe(-4003);
    expect((await binanceError(ex.fapiPrivatePostOrder({ ...order, symbol: 'DOGEUSDT' }))).code).toBe(-1121);
    expect((await binanceError(ex.fapiPrivatePostOrder({ ...order, type: 'LIMIT', price: '90000', timeInForce: 'GTC' }))).code).toBe(-1116);
  });

  it('-2022 for a reduce-only order that would increase, flip, or act on a flat position', async () => {
    expect(await binanceError(ex.fapiPrivatePostOrder({ ...order, reduceOnly: 'true' }))).toEqual({ code: -2022, msg: 'ReduceOnly Order is rejected.' }); // long + BUY
    expect((await binanceError(ex.fapiPrivatePostOrder({ ...order, side: 'SELL', quantity: '0.008', reduceOnly: 'true' }))).code).toBe(-2022); // flip
    expect((await binanceError(ex.fapiPrivatePostOrder({ ...order, symbol: 'ETHUSDT', side: 'SELL', reduceOnly: 'true' }))).code).toBe(-2022); // flat
    expect((await adminPositions(px.url)).BTCUSDT?.positionAmt).toBe('0.007');
  });

  it('client order ids are unique among OPEN orders only: the id of a filled MARKET order is accepted again; a lookup answers the latest', async () => {
    const first = (await ex.fapiPrivatePostOrder({ ...order, newClientOrderId: 'dup-1', newOrderRespType: 'RESULT' })) as { orderId: number; status: string };
    expect(first.status).toBe('FILLED');
    const second = (await ex.fapiPrivatePostOrder({ ...order, newClientOrderId: 'dup-1', newOrderRespType: 'RESULT' })) as { orderId: number; status: string };
    expect(second.orderId).toBeGreaterThan(first.orderId);
    expect((await adminPositions(px.url)).BTCUSDT?.positionAmt).toBe('0.009');
    const looked = (await ex.fapiPrivateGetOrder({ symbol: 'BTCUSDT', origClientOrderId: 'dup-1' })) as { orderId: number };
    expect(looked.orderId).toBe(second.orderId);
  });

  it('-4164 below min notional unless reduce-only', async () => {
    await setMarkPrice(px.url, 'BTCUSDT', '1000'); // 0.001 * 1000 = 1 < 5
    expect((await binanceError(ex.fapiPrivatePostOrder(order))).code).toBe(-4164);
    await ex.fapiPrivatePostOrder({ ...order, side: 'SELL', reduceOnly: 'true' });
    expect((await adminPositions(px.url)).BTCUSDT?.positionAmt).toBe('0.006');
  });

  it('the order log lists every order received, accepted or not', async () => {
    await ex.fapiPrivatePostOrder({ ...order, newClientOrderId: 'log-ok' });
    await binanceError(ex.fapiPrivatePostOrder({ ...order, newClientOrderId: 'log-bad', quantity: '0.0001' }));
    const log = await adminOrders(px.url);
    const ok = log.find((o) => o.clientOrderId === 'log-ok');
    const bad = log.find((o) => o.clientOrderId === 'log-bad');
    expect(ok).toMatchObject({ symbol: 'BTCUSDT', side: 'BUY', qty: '0.001', reduceOnly: false, status: 'FILLED' });
    expect(ok?.orderId).toBeGreaterThan(0);
    expect(ok?.ts_ms).toBeGreaterThan(0);
    expect(bad).toMatchObject({ status: 'REJECTED', qty: '0.0001', code: -1111 });
  });
});

describe('admin API', () => {
  it('manual trade, mark price, positions', async () => {
    const t = await adminTrade(px.url, 'ETHUSDT', 'SELL', '0.5');
    expect(t.position).toEqual({ positionAmt: '-0.5', entryPrice: '3300', markPrice: '3300' });
    expect(t.order).toMatchObject({ status: 'FILLED', source: 'admin', side: 'SELL', qty: '0.5' });
    await setMarkPrice(px.url, 'ETHUSDT', '3400');
    await adminTrade(px.url, 'ETHUSDT', 'SELL', '0.5');
    expect((await adminPositions(px.url)).ETHUSDT).toEqual({ positionAmt: '-1', entryPrice: '3350', markPrice: '3400' });
    const v3 = (await ex.fapiPrivateV3GetPositionRisk({ symbol: 'ETHUSDT' })) as Array<{ positionAmt: string; entryPrice: string; markPrice: string }>;
    expect(v3[0]).toMatchObject({ positionAmt: '-1', entryPrice: '3350', markPrice: '3400' });
  });

  it('refuses bad admin input with 400', async () => {
    await expect(adminTrade(px.url, 'ETHUSDT', 'HOLD' as 'BUY', '1')).rejects.toThrow(/400/);
    await expect(adminTrade(px.url, 'NOPEUSDT', 'BUY', '1')).rejects.toThrow(/400/);
    await expect(setMarkPrice(px.url, 'BTCUSDT', '-1')).rejects.toThrow(/400/);
  });
});
