/**
 * The paper exchange's record of every fill, as Binance USDⓈ-M documents it (harness/paper-exchange/history.ts,
 * state.ts, user-stream.ts), through the REAL ccxt `binanceusdm` client and a real WebSocket:
 * - every fill (our orders, manual trades, liquidation, ADL) is a trade with an id, realized profit and a taker
 *   commission the wallet pays; the same trade id, `rp` and `n`/`N` arrive in `ORDER_TRADE_UPDATE`;
 * - `GET /fapi/v1/userTrades` and `GET /fapi/v1/allOrders`: documented parameters, limits, the 7-day window,
 *   error codes and weights; ccxt `fetchMyTrades`, `fetchOrders` and `fetchOrder` parse them;
 * - `POST /admin/liquidate` / `POST /admin/adl`: the exchange's own order (`autoclose-…` / `adl_autoclose`),
 *   `x: CALCULATED`, order type `LIQUIDATION`, `ACCOUNT_UPDATE` reason `ORDER`, on REST and on the stream;
 * - the user stream at `/private/ws/<listenKey>` and the connection cut after `wsMaxConnectionMs` (24 h by default).
 */
import ccxt from 'ccxt';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { UserStreamClient } from '../../src/adapters/exchange/user-stream/client.js';
import { Decimal } from '../../src/domain/decimal.js';
import { hmacHex } from '../../harness/paper-exchange/auth.js';
import { adminAge, adminFaults, adminOrders, adminSetPosition, adminTrade, adminTrades, adminVenueClose, clearFaults, setMarkPrice, startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Msg = Record<string, any>;
type Client = InstanceType<typeof ccxt.binanceusdm> & Record<string, (p?: Record<string, string>) => Promise<unknown>>;

function client(px: PaperExchange): Client {
  const ex = new ccxt.binanceusdm({ apiKey: px.apiKey, secret: px.apiSecret, options: { fetchCurrencies: false, maxRetriesOnFailure: 0, timeDifference: 0 } });
  const api = ex.urls.api as Record<string, string>;
  for (const [k, v] of [['fapiPublic', 'v1'], ['fapiPublicV2', 'v2'], ['fapiPublicV3', 'v3'], ['fapiPrivate', 'v1'], ['fapiPrivateV2', 'v2'], ['fapiPrivateV3', 'v3']] as const) api[k] = `${px.url}/fapi/${v}`;
  return ex as Client;
}

/** A raw signed GET; returns status, JSON body and the used-weight header. */
async function signedGet(px: PaperExchange, path: string, query: string): Promise<{ status: number; json: Msg; weight: number }> {
  const q = `${query}${query === '' ? '' : '&'}timestamp=${Date.now()}`;
  const res = await fetch(`${px.url}${path}?${q}&signature=${hmacHex(px.apiSecret, q)}`, { headers: { 'x-mbx-apikey': px.apiKey } });
  return { status: res.status, json: (await res.json()) as Msg, weight: Number(res.headers.get('x-mbx-used-weight-1m')) };
}

async function listen(px: PaperExchange, path: string): Promise<{ ws: WebSocket; msgs: Msg[]; closed: () => { code: number } | null }> {
  const ws = new WebSocket(`${px.url.replace('http', 'ws')}${path}`);
  const msgs: Msg[] = [];
  let closed: { code: number } | null = null;
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString()) as Msg));
  ws.on('close', (code) => (closed = { code }));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, msgs, closed: () => closed };
}

async function listenKey(px: PaperExchange): Promise<string> {
  const res = await fetch(`${px.url}/fapi/v1/listenKey`, { method: 'POST', headers: { 'X-MBX-APIKEY': px.apiKey } });
  return ((await res.json()) as { listenKey: string }).listenKey;
}

let px: PaperExchange;
let ex: Client;
beforeAll(async () => {
  px = await startPaperExchange({ positions: { BTCUSDT: '0' } });
  ex = client(px);
});
afterAll(async () => {
  await ex.close();
  await px.close();
});
beforeEach(async () => {
  await clearFaults(px.url);
  await setMarkPrice(px.url, 'BTCUSDT', '95000');
  await setMarkPrice(px.url, 'ETHUSDT', '3300');
  await adminSetPosition(px.url, 'BTCUSDT', '0');
  await adminSetPosition(px.url, 'ETHUSDT', '0');
});

let n = 0;
const cid = () => `venue-rec-${++n}`;

describe('fill records: trade id, realized profit, commission', () => {
  it('our orders and a manual trade: userTrades via ccxt fetchMyTrades; the wallet pays the 0.05 % taker fee; rp on the closing fill', async () => {
    const wallet0 = new Decimal(((await ex.fapiPrivateV3GetBalance!()) as Msg[])[0]!.balance as string);
    const open = (await ex.createOrder('BTC/USDT:USDT', 'market', 'buy', 0.002, undefined, { newClientOrderId: cid() })) as { id: string };
    await setMarkPrice(px.url, 'BTCUSDT', '96000');
    await adminTrade(px.url, 'BTCUSDT', 'SELL', '0.001'); // manual, closes 0.001 at +1000
    const close = (await ex.createOrder('BTC/USDT:USDT', 'market', 'sell', 0.001, undefined, { newClientOrderId: cid(), reduceOnly: true })) as { id: string };

    const trades = await ex.fetchMyTrades('BTC/USDT:USDT');
    const mine = trades.slice(-3);
    expect(mine.map((t) => [t.order, t.side, t.amount, t.price, t.takerOrMaker])).toEqual([
      [open.id, 'buy', 0.002, 95000, 'taker'],
      [expect.any(String), 'sell', 0.001, 96000, 'taker'],
      [close.id, 'sell', 0.001, 96000, 'taker'],
    ]);
    expect(mine.map((t) => t.fee)).toEqual([
      { cost: 0.095, currency: 'USDT' },
      { cost: 0.048, currency: 'USDT' },
      { cost: 0.048, currency: 'USDT' },
    ]);
    // the raw records carry exactly the documented fields
    const raw = mine.map((t) => t.info as Msg);
    for (const r of raw) expect(Object.keys(r).sort()).toEqual(['buyer', 'commission', 'commissionAsset', 'id', 'maker', 'orderId', 'positionSide', 'price', 'qty', 'quoteQty', 'realizedPnl', 'side', 'symbol', 'time']);
    expect(raw.map((r) => [r.realizedPnl, r.commission, r.commissionAsset, r.quoteQty, r.positionSide, r.buyer, r.maker])).toEqual([
      ['0.00000000', '0.09500000', 'USDT', '190', 'BOTH', true, false],
      ['1.00000000', '0.04800000', 'USDT', '96', 'BOTH', false, false],
      ['1.00000000', '0.04800000', 'USDT', '96', 'BOTH', false, false],
    ]);
    expect(raw[1]!.id).toBe(raw[0]!.id + 1);
    expect(raw[2]!.id).toBe(raw[1]!.id + 1);
    // wallet = before + Σ realized − Σ commission
    const wallet1 = new Decimal(((await ex.fapiPrivateV3GetBalance!()) as Msg[])[0]!.balance as string);
    expect(wallet1.minus(wallet0).toString()).toBe('1.809');
    // the manual trade's order carries the same trade
    const manual = (await adminOrders(px.url)).find((o) => o.orderId === raw[1]!.orderId)!;
    expect(manual).toMatchObject({ source: 'admin', trade: { id: raw[1]!.id, realizedPnl: '1.00000000' } });
  });

  it('the fee rate is configurable: takerFeeRate 0 charges nothing; a bad rate is refused at start', async () => {
    const free = await startPaperExchange({ takerFeeRate: '0' });
    try {
      await adminTrade(free.url, 'BTCUSDT', 'BUY', '0.001');
      expect((await adminTrades(free.url))[0]).toMatchObject({ commission: '0.00000000', commissionAsset: 'USDT' });
    } finally {
      await free.close();
    }
    await expect(startPaperExchange({ takerFeeRate: '-0.1' })).rejects.toThrow(/taker fee/);
  });

  it('ORDER_TRADE_UPDATE of a fill carries the trade id t, rp, n, N and er as userTrades records them', async () => {
    await adminSetPosition(px.url, 'ETHUSDT', '0.5', '3000');
    const s = await listen(px, `/ws/${await listenKey(px)}`);
    await ex.createOrder('ETH/USDT:USDT', 'market', 'sell', 0.2, undefined, { newClientOrderId: cid(), reduceOnly: true });
    await waitFor(() => s.msgs.filter((m) => m.e === 'ORDER_TRADE_UPDATE').length >= 2, 5000, 10, 'two order updates');
    const [neu, fill] = s.msgs.filter((m) => m.e === 'ORDER_TRADE_UPDATE') as [Msg, Msg];
    const t = (await adminTrades(px.url)).pop()!;
    expect(neu.o).toMatchObject({ x: 'NEW', X: 'NEW', t: 0, n: '0', N: 'USDT', rp: '0', er: '0' });
    expect(fill.o).toMatchObject({ x: 'TRADE', X: 'FILLED', o: 'MARKET', t: t.id, i: t.orderId, l: '0.2', z: '0.2', L: '3300', rp: '60.00000000', n: '0.33000000', N: 'USDT', er: '0', R: true });
    expect(fill.T).toBe(t.time);
    expect(t).toMatchObject({ realizedPnl: '60.00000000', commission: '0.33000000', price: '3300', qty: '0.2' });
    s.ws.close();
  });

  it('a MARKET order cut short (partial_fill fault): the trade is the filled part; the EXPIRED event has er "9"', async () => {
    const s = await listen(px, `/ws/${await listenKey(px)}`);
    await adminFaults(px.url, { kind: 'partial_fill', fill_ratio: 0.5, count: 1 });
    const o = (await ex.createOrder('BTC/USDT:USDT', 'market', 'buy', 0.004, undefined, { newClientOrderId: cid() })) as { id: string };
    await waitFor(() => s.msgs.filter((m) => m.e === 'ORDER_TRADE_UPDATE').length >= 3, 5000, 10, 'three order updates');
    const [, fill, expired] = s.msgs.filter((m) => m.e === 'ORDER_TRADE_UPDATE') as [Msg, Msg, Msg];
    const t = (await ex.fetchMyTrades('BTC/USDT:USDT')).pop()!;
    expect([t.order, t.amount]).toEqual([o.id, 0.002]);
    expect(fill.o).toMatchObject({ x: 'TRADE', X: 'PARTIALLY_FILLED', l: '0.002', t: Number(t.id), n: '0.09500000', er: '0' });
    expect(expired.o).toMatchObject({ x: 'EXPIRED', X: 'EXPIRED', l: '0', t: 0, n: '0', z: '0.002', er: '9' });
    s.ws.close();
  });
});

describe('GET /fapi/v1/userTrades and GET /fapi/v1/allOrders as documented', () => {
  it('userTrades: orderId, fromId, limit, the 7-day window and its error codes; weight 5', async () => {
    for (let i = 0; i < 4; i++) await adminTrade(px.url, 'ETHUSDT', 'BUY', '0.01');
    const all = await adminTrades(px.url);
    const eth = all.filter((t) => t.symbol === 'ETHUSDT');
    const last4 = eth.slice(-4);
    const q = (query: string) => signedGet(px, '/fapi/v1/userTrades', query);

    const byOrder = await q(`symbol=ETHUSDT&orderId=${last4[1]!.orderId}`);
    expect(byOrder.json.map((t: Msg) => t.id)).toEqual([last4[1]!.id]);
    const from = await q(`symbol=ETHUSDT&fromId=${last4[2]!.id}`);
    expect(from.json.map((t: Msg) => t.id)).toEqual([last4[2]!.id, last4[3]!.id]);
    const limited = await q('symbol=ETHUSDT&limit=2'); // most recent trades first chosen, oldest first in the answer
    expect(limited.json.map((t: Msg) => t.id)).toEqual([last4[2]!.id, last4[3]!.id]);
    const fromStart = await q(`symbol=ETHUSDT&startTime=${last4[0]!.time}&limit=1`);
    expect(fromStart.json[0].time).toBeGreaterThanOrEqual(last4[0]!.time);
    // a window entirely before the trades is empty
    expect((await q(`symbol=ETHUSDT&endTime=${eth[0]!.time - 1}`)).json).toEqual([]);

    const week = 7 * 24 * 3_600_000;
    expect(await q(`symbol=ETHUSDT&startTime=${Date.now() - week - 1000}&endTime=${Date.now()}`)).toMatchObject({ status: 400, json: { code: -1127, msg: 'Lookup interval is too big.' } });
    expect(await q(`symbol=ETHUSDT&fromId=1&startTime=${Date.now() - 1000}`)).toMatchObject({ status: 400, json: { code: -1128 } });
    expect(await q('symbol=ETHUSDT&limit=1001')).toMatchObject({ status: 400, json: { code: -1130 } });
    expect(await q('')).toMatchObject({ status: 400, json: { code: -1102 } });

    const w0 = (await q('symbol=ETHUSDT')).weight;
    const w1 = (await q('symbol=ETHUSDT')).weight;
    expect(w1 - w0).toBe(5);
  });

  it('records older than REST serves: 8 days old are outside the default window but reachable by fromId; past 6 months never', async () => {
    const fresh = await startPaperExchange();
    try {
      const a = await adminTrade(fresh.url, 'ETHUSDT', 'BUY', '0.01');
      const day = 24 * 3_600_000;
      await adminAge(fresh.url, 8 * day);
      const b = await adminTrade(fresh.url, 'ETHUSDT', 'BUY', '0.01');
      const ids = async (query: string) => ((await signedGet(fresh, '/fapi/v1/userTrades', query)).json as Msg[]).map((t) => t.orderId);
      expect(await ids('symbol=ETHUSDT')).toEqual([b.order.orderId]);
      expect(await ids('symbol=ETHUSDT&fromId=1')).toEqual([a.order.orderId, b.order.orderId]);
      expect(((await signedGet(fresh, '/fapi/v1/allOrders', 'symbol=ETHUSDT')).json as Msg[]).map((o) => o.orderId)).toEqual([b.order.orderId]);
      await adminAge(fresh.url, 180 * day);
      expect(await ids('symbol=ETHUSDT&fromId=1')).toEqual([b.order.orderId]);
    } finally {
      await fresh.close();
    }
  });

  it('allOrders via ccxt fetchOrders: ours, manual and the exchange own orders, orderId >=, limit; weight 5', async () => {
    await adminSetPosition(px.url, 'BTCUSDT', '0.01');
    const ours = (await ex.createOrder('BTC/USDT:USDT', 'market', 'buy', 0.001, undefined, { newClientOrderId: cid() })) as { id: string };
    const manual = await adminTrade(px.url, 'BTCUSDT', 'SELL', '0.001');
    const liq = await adminVenueClose(px.url, 'liquidate', 'BTCUSDT', '0.002');
    const orders = await ex.fetchOrders('BTC/USDT:USDT');
    const tail = orders.slice(-3);
    expect(tail.map((o) => [o.id, o.status, o.type, o.side, o.filled])).toEqual([
      [ours.id, 'closed', 'market', 'buy', 0.001],
      [String(manual.order.orderId), 'closed', 'market', 'sell', 0.001],
      [String(liq.order.orderId), 'closed', 'limit', 'sell', 0.002],
    ]);
    expect(tail[2]!.clientOrderId).toMatch(/^autoclose-\d+$/);
    expect(tail[2]!.info).toMatchObject({ type: 'LIMIT', origType: 'LIMIT', timeInForce: 'IOC', price: '95000', avgPrice: '95000', status: 'FILLED', reduceOnly: false });
    expect(tail[2]!.info).not.toHaveProperty('cumQty');

    const since = await signedGet(px, '/fapi/v1/allOrders', `symbol=BTCUSDT&orderId=${manual.order.orderId}`);
    expect(since.json.map((o: Msg) => o.orderId)).toEqual([manual.order.orderId, liq.order.orderId]);
    expect((await signedGet(px, '/fapi/v1/allOrders', 'symbol=BTCUSDT&limit=1')).json.map((o: Msg) => o.orderId)).toEqual([liq.order.orderId]);
    const week = 7 * 24 * 3_600_000;
    expect(await signedGet(px, '/fapi/v1/allOrders', `symbol=BTCUSDT&startTime=${Date.now() - week - 1000}&endTime=${Date.now()}`)).toMatchObject({ status: 400, json: { code: -1127 } });
    const w0 = (await signedGet(px, '/fapi/v1/allOrders', 'symbol=BTCUSDT')).weight;
    const w1 = (await signedGet(px, '/fapi/v1/allOrders', 'symbol=BTCUSDT')).weight;
    expect(w1 - w0).toBe(5);
  });

  it('GET /fapi/v1/order answers every order, the exchange own included, in the Query Order shape; ccxt fetchOrder parses it', async () => {
    await adminSetPosition(px.url, 'BTCUSDT', '-0.005');
    const adl = await adminVenueClose(px.url, 'adl', 'BTCUSDT', '0.002');
    const o = await ex.fetchOrder(String(adl.order.orderId), 'BTC/USDT:USDT');
    expect([o.id, o.clientOrderId, o.status, o.side, o.filled, o.average]).toEqual([String(adl.order.orderId), 'adl_autoclose', 'closed', 'buy', 0.002, 95000]);
    expect(Object.keys(o.info as Msg).sort()).toEqual(
      ['avgPrice', 'clientOrderId', 'closePosition', 'cumQuote', 'executedQty', 'goodTillDate', 'orderId', 'origQty', 'origType', 'positionSide', 'price', 'priceMatch', 'priceProtect', 'reduceOnly', 'selfTradePreventionMode', 'side', 'status', 'stopPrice', 'symbol', 'time', 'timeInForce', 'type', 'updateTime', 'workingType'].sort(),
    );
    const byCid = await signedGet(px, '/fapi/v1/order', 'symbol=BTCUSDT&origClientOrderId=adl_autoclose');
    expect(byCid.json.orderId).toBe(adl.order.orderId);
  });
});

describe('liquidation and ADL: the exchange reduces the position with its own order', () => {
  it('POST /admin/liquidate: autoclose- order, NEW then CALCULATED/FILLED with type LIQUIDATION, ACCOUNT_UPDATE m=ORDER; userTrades keeps the fill', async () => {
    await adminSetPosition(px.url, 'BTCUSDT', '0.005', '96000');
    const s = await listen(px, `/ws/${await listenKey(px)}`);
    const { order, position } = await adminVenueClose(px.url, 'liquidate', 'BTCUSDT', '0.003');
    expect(position.positionAmt).toBe('0.002');
    expect(order).toMatchObject({ source: 'liquidation', side: 'SELL', type: 'LIMIT', timeInForce: 'IOC', status: 'FILLED', executedQty: '0.003' });
    await waitFor(() => s.msgs.length >= 3, 5000, 10, 'three events');
    const [neu, acc, fill] = s.msgs as [Msg, Msg, Msg];
    expect(neu).toMatchObject({ e: 'ORDER_TRADE_UPDATE', o: { c: order.clientOrderId, x: 'NEW', X: 'NEW', o: 'LIQUIDATION', ot: 'LIQUIDATION', f: 'IOC', S: 'SELL', q: '0.003' } });
    expect(order.clientOrderId).toMatch(/^autoclose-\d+$/);
    expect(acc).toMatchObject({ e: 'ACCOUNT_UPDATE', a: { m: 'ORDER', P: [{ s: 'BTCUSDT', pa: '0.002', ps: 'BOTH' }] } });
    const t = (await ex.fetchMyTrades('BTC/USDT:USDT')).pop()!;
    expect(fill).toMatchObject({ e: 'ORDER_TRADE_UPDATE', o: { c: order.clientOrderId, i: order.orderId, x: 'CALCULATED', X: 'FILLED', o: 'LIQUIDATION', l: '0.003', z: '0.003', L: '95000', t: Number(t.id), rp: '-3.00000000', n: '0.14250000', N: 'USDT' } });
    expect([t.order, (t.info as Msg).realizedPnl, (t.info as Msg).commission]).toEqual([String(order.orderId), '-3.00000000', '0.14250000']);
    s.ws.close();
  });

  it('POST /admin/adl on a short: adl_autoclose BUY, CALCULATED; the admin API refuses a flat symbol and a qty past the position', async () => {
    await adminSetPosition(px.url, 'ETHUSDT', '-1');
    const s = await listen(px, `/private/ws/${await listenKey(px)}`);
    const { order, position } = await adminVenueClose(px.url, 'adl', 'ETHUSDT', '0.4');
    expect(position.positionAmt).toBe('-0.6');
    await waitFor(() => s.msgs.length >= 3, 5000, 10, 'three events');
    expect(s.msgs.map((m) => [m.e, m.o?.c ?? m.a?.m, m.o?.x ?? null])).toEqual([
      ['ORDER_TRADE_UPDATE', 'adl_autoclose', 'NEW'],
      ['ACCOUNT_UPDATE', 'ORDER', null],
      ['ORDER_TRADE_UPDATE', 'adl_autoclose', 'CALCULATED'],
    ]);
    expect(s.msgs[2]!.o).toMatchObject({ S: 'BUY', i: order.orderId, X: 'FILLED' });
    await expect(adminVenueClose(px.url, 'adl', 'ETHUSDT', '0.7')).rejects.toThrow(/400.*qty/);
    await expect(adminVenueClose(px.url, 'liquidate', 'BTCUSDT', '0.001')).rejects.toThrow(/400.*no position/);
    const settle = await adminVenueClose(px.url, 'settle', 'ETHUSDT');
    expect(settle.order.clientOrderId).toMatch(/^settlement_autoclose-\d+$/);
    expect(settle.position.positionAmt).toBe('0');
    s.ws.close();
  });
});

describe('user stream: /private/ws/<listenKey> and the 24-hour connection cut', () => {
  it('a connection is closed (1001) after wsMaxConnectionMs; the key stays valid; our client on a /private base reconnects', async () => {
    const short = await startPaperExchange({ wsMaxConnectionMs: 400 });
    const states: string[] = [];
    const c = new UserStreamClient(
      { restBaseUrl: short.url, wsBaseUrl: `${short.url.replace('http', 'ws')}/private`, apiKey: short.apiKey, logger: pino({ level: 'silent' }), backoffInitialMs: 20 },
      { onEvent: () => {}, onParseError: () => {}, onState: (st, reason) => states.push(`${st}:${reason}`) },
    );
    try {
      const key = await listenKey(short);
      const s = await listen(short, `/private/ws/${key}`);
      await waitFor(() => s.closed() !== null, 5000, 10, 'cut');
      expect(s.closed()).toEqual({ code: 1001 });
      const again = await listen(short, `/ws/${key}`); // same key, a new connection works
      expect(again.closed()).toBeNull();
      again.ws.close();
      c.start();
      await waitFor(() => c.reconnects >= 1 && states[states.length - 1]!.startsWith('open'), 5000, 10, 'client reconnected after the cut');
    } finally {
      await c.stop();
      await short.close();
    }
  });
});
