/**
 * The paper exchange's user data stream as Binance documents it (User Data Streams: Connect, Event: Balance
 * and Position Update, Event: Order Update, Event: User Data Stream Expired): listen key lifecycle
 * (same key while valid, PUT extends, DELETE closes, -1125 for an expired key), both WebSocket layouts,
 * exact field names and types, only changed positions, one-way close as ps=BOTH pa=0, manual trades
 * pushed too, rejected orders not pushed, and the four user-stream faults.
 */
import ccxt from 'ccxt';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { adminFaults, adminSetPosition, adminTrade, adminWsFault, clearFaults, setMarkPrice, startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { waitFor } from '../helpers/redis.js';
import { createExchangeGateway } from '../../src/adapters/exchange/factory.js';
import { Decimal } from '../../src/domain/decimal.js';
import type { ExchangeGateway } from '../../src/ports/exchange.js';

/** A pushed event as JSON (shapes are asserted field by field). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Msg = Record<string, any>;

let px: PaperExchange;
let gw: ExchangeGateway;

const lk = async (method: 'POST' | 'PUT' | 'DELETE', key?: string) => {
  const res = await fetch(`${px.url}/fapi/v1/listenKey`, { method, headers: key === undefined ? { 'X-MBX-APIKEY': px.apiKey } : { 'X-MBX-APIKEY': key } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/** Opens a socket and collects its JSON messages. */
async function listen(path: string): Promise<{ ws: WebSocket; msgs: Array<Msg>; closed: () => boolean }> {
  const ws = new WebSocket(`${px.url.replace('http', 'ws')}${path}`);
  const msgs: Array<Msg> = [];
  let closed = false;
  ws.on('message', (d) => msgs.push(JSON.parse(d.toString()) as Msg));
  ws.on('close', () => (closed = true));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, msgs, closed: () => closed };
}

beforeAll(async () => {
  px = await startPaperExchange({ positions: { BTCUSDT: '0.007' } });
  gw = createExchangeGateway({ exchange: 'paper', baseUrl: px.url, apiKey: px.apiKey, apiSecret: px.apiSecret, demo: false, recvWindowMs: 5000, timeoutMs: 5000, syncTime: true });
});
afterAll(async () => {
  await gw.close();
  await px.close();
});
beforeEach(async () => {
  await clearFaults(px.url);
});

describe('listen key endpoints', () => {
  it('POST returns the same key while valid, PUT extends it, DELETE invalidates it, then PUT is -1125', async () => {
    const a = await lk('POST');
    expect(a.status).toBe(200);
    expect(typeof a.body.listenKey).toBe('string');
    expect((await lk('POST')).body.listenKey).toBe(a.body.listenKey);
    expect(await lk('PUT')).toEqual({ status: 200, body: { listenKey: a.body.listenKey } });
    expect(await lk('DELETE')).toEqual({ status: 200, body: {} });
    expect(await lk('PUT')).toEqual({ status: 400, body: { code: -1125, msg: 'This listenKey does not exist.' } });
    const b = await lk('POST');
    expect(b.body.listenKey).not.toBe(a.body.listenKey);
    expect((await lk('POST', 'wrongkey123')).body.code).toBe(-2015);
  });

  it('an unknown key refuses the WebSocket handshake', async () => {
    await expect(listen('/ws/nope')).rejects.toThrow(/400/);
  });
});

describe('events', () => {
  it('an API order: ORDER_TRADE_UPDATE NEW, ACCOUNT_UPDATE with only the changed position, ORDER_TRADE_UPDATE TRADE/FILLED', async () => {
    const key = (await lk('POST')).body.listenKey as string;
    const s = await listen(`/ws/${key}`);
    await gw.placeMarketOrder({ symbol: 'BTCUSDT', side: 'BUY', qty: new Decimal('0.002'), reduceOnly: false, clientOrderId: 'p3-shape-1' });
    await waitFor(() => s.msgs.length >= 3, 5000, 10, '3 events');
    const [n, acc, t] = s.msgs as [Msg, Msg, Msg];
    expect(n.e).toBe('ORDER_TRADE_UPDATE');
    expect(n.o).toMatchObject({ s: 'BTCUSDT', c: 'p3-shape-1', S: 'BUY', o: 'MARKET', q: '0.002', x: 'NEW', X: 'NEW', l: '0', z: '0', R: false, ps: 'BOTH' });
    expect(typeof n.E).toBe('number');
    expect(typeof n.o.i).toBe('number');
    expect(acc.e).toBe('ACCOUNT_UPDATE');
    expect(typeof acc.E).toBe('number');
    expect(typeof acc.T).toBe('number');
    expect(acc.a.m).toBe('ORDER');
    expect(acc.a.B[0]).toEqual({ a: 'USDT', wb: expect.any(String), cw: expect.any(String), bc: '0' });
    expect(acc.a.P).toHaveLength(1); // ETHUSDT did not change: not pushed
    expect(acc.a.P[0]).toEqual({ s: 'BTCUSDT', pa: '0.009', ep: expect.any(String), bep: expect.any(String), cr: '0', up: expect.any(String), mt: 'cross', iw: '0', ps: 'BOTH', ma: 'USDT' });
    expect(t.o).toMatchObject({ c: 'p3-shape-1', x: 'TRADE', X: 'FILLED', l: '0.002', z: '0.002', L: '95000', ap: '95000' });
    s.ws.close();
  });

  it('a manual trade is pushed; a one-way close arrives as ps=BOTH pa=0; a rejected order pushes nothing; /private/ws layout works', async () => {
    await adminSetPosition(px.url, 'ETHUSDT', '0');
    const key = (await lk('POST')).body.listenKey as string;
    const s = await listen(`/private/ws?listenKey=${key}`);
    await adminTrade(px.url, 'ETHUSDT', 'SELL', '0.05');
    await waitFor(() => s.msgs.filter((m) => m.e === 'ACCOUNT_UPDATE').length >= 1, 5000, 10, 'manual trade pushed');
    await expect(gw.placeMarketOrder({ symbol: 'ETHUSDT', side: 'SELL', qty: new Decimal('0.01'), reduceOnly: true, clientOrderId: 'p3-shape-rej' })).rejects.toThrow();
    await gw.placeMarketOrder({ symbol: 'ETHUSDT', side: 'BUY', qty: new Decimal('0.05'), reduceOnly: true, clientOrderId: 'p3-shape-close' });
    await waitFor(() => s.msgs.filter((m) => m.e === 'ACCOUNT_UPDATE').length >= 2, 5000, 10, 'close pushed');
    const accs = s.msgs.filter((m) => m.e === 'ACCOUNT_UPDATE');
    expect(accs[0]!.a.P[0]).toMatchObject({ s: 'ETHUSDT', pa: '-0.05', ps: 'BOTH' });
    expect(accs[1]!.a.P[0]).toMatchObject({ s: 'ETHUSDT', pa: '0', ep: '0', ps: 'BOTH' });
    const orders = s.msgs.filter((m) => m.e === 'ORDER_TRADE_UPDATE').map((m) => `${m.o.c}:${m.o.x}`);
    expect(orders.some((c) => c.startsWith('web_'))).toBe(true);
    expect(orders).toContain('p3-shape-close:TRADE');
    expect(orders.some((c) => c.startsWith('p3-shape-rej'))).toBe(false);
    s.ws.close();
  });
});

describe('partly filled MARKET order (partial_fill fault)', () => {
  it('pushes TRADE with X=PARTIALLY_FILLED and the filled quantity, then EXPIRED; the position moves by the filled part only', async () => {
    await adminSetPosition(px.url, 'ETHUSDT', '0');
    const key = (await lk('POST')).body.listenKey as string;
    const s = await listen(`/ws/${key}`);
    await adminFaults(px.url, { kind: 'partial_fill', fill_ratio: 0.5, count: 1 });
    await gw.placeMarketOrder({ symbol: 'ETHUSDT', side: 'BUY', qty: new Decimal('0.01'), reduceOnly: false, clientOrderId: 'p3-shape-partial' }).catch(() => undefined);
    await waitFor(() => s.msgs.filter((m) => m.e === 'ORDER_TRADE_UPDATE').length >= 3, 5000, 10, 'NEW, TRADE, EXPIRED');
    const o = s.msgs.filter((m) => m.e === 'ORDER_TRADE_UPDATE').map((m) => `${m.o.x}/${m.o.X}/${m.o.l}/${m.o.z}`);
    expect(o).toEqual(['NEW/NEW/0/0', 'TRADE/PARTIALLY_FILLED/0.005/0.005', 'EXPIRED/EXPIRED/0/0.005']);
    expect(s.msgs.find((m) => m.e === 'ACCOUNT_UPDATE')!.a.P[0]).toMatchObject({ s: 'ETHUSDT', pa: '0.005', ps: 'BOTH' });
    s.ws.close();
  });
});

describe('user-stream faults', () => {
  it('listen_key_expire pushes listenKeyExpired and nothing more; PUT then answers -1125', async () => {
    const key = (await lk('POST')).body.listenKey as string;
    const s = await listen(`/ws/${key}`);
    await adminWsFault(px.url, { kind: 'listen_key_expire' });
    await waitFor(() => s.msgs.length >= 1, 5000, 10, 'expiry event');
    expect(s.msgs[0]).toEqual({ e: 'listenKeyExpired', E: expect.stringMatching(/^\d+$/), listenKey: key });
    expect((await lk('PUT')).body.code).toBe(-1125);
    await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.001');
    await new Promise((r) => setTimeout(r, 200));
    expect(s.msgs).toHaveLength(1);
    s.ws.close();
  });

  it('ws_drop closes the socket; ws_silence drops pushes while REST answers; ws_delay delays them', async () => {
    const key = (await lk('POST')).body.listenKey as string;
    const a = await listen(`/ws/${key}`);
    await adminWsFault(px.url, { kind: 'ws_drop' });
    await waitFor(() => a.closed(), 5000, 10, 'socket closed');

    const b = await listen(`/ws/${key}`);
    // a silence far longer than the test needs (a stalled event loop cannot let the trade fall outside it),
    // ended by clearing the faults rather than by its own expiry
    await adminWsFault(px.url, { kind: 'ws_silence', duration_ms: 30_000 });
    await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.001');
    expect((await gw.fetchPositions()).positions.get('BTCUSDT')).toBeDefined();
    await new Promise((r) => setTimeout(r, 400));
    expect(b.msgs).toHaveLength(0);
    await clearFaults(px.url);
    await adminTrade(px.url, 'BTCUSDT', 'SELL', '0.001');
    await waitFor(() => b.msgs.length >= 1, 5000, 10, 'pushes resume');

    b.msgs.length = 0;
    // a delay long enough that the admin reply always comes first, even on a loaded machine
    await adminWsFault(px.url, { kind: 'ws_delay', latency_ms: 3000 });
    await adminTrade(px.url, 'BTCUSDT', 'BUY', '0.001');
    expect(b.msgs).toHaveLength(0); // without the delay the push precedes the admin reply
    await waitFor(() => b.msgs.length >= 1, 15_000, 5, 'delayed push');
    b.ws.close();
  });
});

describe('account and balance endpoints', () => {
  it('ccxt fetchBalance and the raw v3 account/balance agree with the wallet pushed in ACCOUNT_UPDATE (10000 USDT + realized PnL − commissions)', async () => {
    const ex = new ccxt.binanceusdm({ apiKey: px.apiKey, secret: px.apiSecret, options: { fetchCurrencies: false, maxRetriesOnFailure: 0 } });
    const api = ex.urls.api as Record<string, string>;
    for (const [k, v] of [['fapiPublic', 'v1'], ['fapiPublicV2', 'v2'], ['fapiPublicV3', 'v3'], ['fapiPrivate', 'v1'], ['fapiPrivateV2', 'v2'], ['fapiPrivateV3', 'v3']] as const) api[k] = `${px.url}/fapi/${v}`;
    try {
      await adminSetPosition(px.url, 'ETHUSDT', '0');
      await setMarkPrice(px.url, 'ETHUSDT', '3300');
      const key = (await lk('POST')).body.listenKey as string;
      const s = await listen(`/ws/${key}`);
      await adminTrade(px.url, 'ETHUSDT', 'BUY', '1');
      await setMarkPrice(px.url, 'ETHUSDT', '3310');
      const acct = (await (ex as unknown as Record<string, () => Promise<Record<string, unknown>>>).fapiPrivateV3GetAccount!()) as Record<string, unknown>;
      expect(acct.totalUnrealizedProfit).toBe('10.00000000');
      expect((acct.positions as Array<Record<string, unknown>>).map((p) => [p.symbol, p.positionAmt, p.positionSide])).toContainEqual(['ETHUSDT', '1', 'BOTH']);
      const before = new Decimal((acct.totalWalletBalance as string));
      await adminTrade(px.url, 'ETHUSDT', 'SELL', '1'); // +10 realized, minus the taker fee 0.05 % of 3310 = 1.655
      const bal = (await (ex as unknown as Record<string, () => Promise<unknown>>).fapiPrivateV3GetBalance!()) as Array<Record<string, unknown>>;
      expect(new Decimal(bal[0]!.balance as string).minus(before).toString()).toBe('8.345');
      expect(bal[0]).toMatchObject({ asset: 'USDT', marginAvailable: true, crossUnPnl: expect.any(String), availableBalance: expect.any(String) });
      const unified = await ex.fetchBalance();
      expect((unified.total as unknown as Record<string, number>).USDT).toBe(Number(bal[0]!.balance));
      await waitFor(() => s.msgs.filter((m) => m.e === 'ACCOUNT_UPDATE').length >= 2, 5000, 10, 'two account updates');
      const last = s.msgs.filter((m) => m.e === 'ACCOUNT_UPDATE').pop()!;
      expect(last.a.B[0].wb).toBe(new Decimal(bal[0]!.balance as string).toString());
      expect(last.a.P[0]).toMatchObject({ s: 'ETHUSDT', pa: '0', cr: '10' });
      s.ws.close();
    } finally {
      await ex.close();
    }
  });
});
