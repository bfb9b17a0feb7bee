/**
 * The ccxt-shaped facade: the SAME bot function (ccxt's unified API) runs against `new ccxt.binanceusdm()`
 * pointed at a paper exchange and against `P3Exchange` over the gates (test/client/stack.ts, as `p3-strategy`)
 * and places the same orders (symbol, type, side, amount, filled, average, status, reduce-only). Then the
 * unsupported parts throw ccxt's NotSupported by name, and a governor DENY is ccxt's InsufficientFunds.
 */
import ccxt from 'ccxt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { P3Exchange } from '../../src/client/ccxt-entry.js';
import { adminOrders, setMarkPrice, startPaperExchange, type PaperExchange } from '../helpers/paper.js';
import { CLIENT_KEYS, startClientStack, type ClientStack } from './stack.js';

/** The subset of ccxt's unified API the bot uses (ccxt's binanceusdm and P3Exchange both have it). */
interface UnifiedExchange {
  loadMarkets(): Promise<unknown>;
  createOrder(symbol: string, type: string, side: 'buy' | 'sell', amount: number, price?: number, params?: Record<string, unknown>): Promise<OrderLike>;
  fetchOrder(id: string, symbol?: string): Promise<OrderLike>;
  fetchPositions(symbols?: string[]): Promise<Array<{ symbol: string; contracts?: number | undefined; side?: string | undefined }>>;
}
interface OrderLike {
  id?: string;
  symbol?: string;
  type?: string;
  side?: string;
  amount?: number;
  filled?: number;
  average?: number;
  status?: string;
  reduceOnly?: boolean;
}

/**
 * A small bot: opens 0.002 long, reads its position, closes it reduce-only, reads the close back.
 * (`fetchOpenOrders` is left out: the paper exchange has no `GET /fapi/v1/openOrders`; P3Exchange's is checked below.)
 */
async function bot(ex: UnifiedExchange): Promise<{ orders: OrderLike[]; contracts: number }> {
  const sym = 'BTC/USDT:USDT';
  await ex.loadMarkets();
  const open = await ex.createOrder(sym, 'market', 'buy', 0.002);
  const pos = (await ex.fetchPositions([sym])).find((p) => p.symbol === sym && (p.contracts ?? 0) > 0);
  const close = await ex.createOrder(sym, 'market', 'sell', pos?.contracts ?? 0, undefined, { reduceOnly: true });
  const fetched = await ex.fetchOrder(close.id ?? '', sym);
  return { orders: [open, close, fetched], contracts: pos?.contracts ?? 0 };
}

const shape = (o: OrderLike) => ({ symbol: o.symbol, type: o.type, side: o.side, amount: o.amount, filled: o.filled, average: o.average, status: o.status, reduceOnly: o.reduceOnly });

let s: ClientStack;
let px: PaperExchange;
let p3: P3Exchange;

beforeAll(async () => {
  s = await startClientStack({ symbols: ['BTCUSDT', 'ETHUSDT'], extraEnv: { GOVERNOR_MAX_POSITION_USD_ETHUSDT: '600' } });
  px = await startPaperExchange({ symbols: ['BTCUSDT', 'ETHUSDT'], positions: { BTCUSDT: '0', ETHUSDT: '0' } });
  await setMarkPrice(px.url, 'BTCUSDT', '50000');
  p3 = new P3Exchange({ redis: s.strategyUrl, key: CLIENT_KEYS.P3_KEY_EXIT_BRAIN, symbols: ['BTCUSDT', 'ETHUSDT'] });
});
afterAll(async () => {
  await p3?.close();
  await px?.close();
  await s?.stop();
});

function binanceusdm(paper: PaperExchange): InstanceType<typeof ccxt.binanceusdm> {
  const ex = new ccxt.binanceusdm({ apiKey: paper.apiKey, secret: paper.apiSecret, options: { fetchCurrencies: false, maxRetriesOnFailure: 0 } });
  const api = ex.urls.api as Record<string, string>;
  for (const [k, v] of [['fapiPublic', 'v1'], ['fapiPublicV2', 'v2'], ['fapiPublicV3', 'v3'], ['fapiPrivate', 'v1'], ['fapiPrivateV2', 'v2'], ['fapiPrivateV3', 'v3']] as const) api[k] = `${paper.url}/fapi/${v}`;
  return ex;
}

describe('P3Exchange: a ccxt bot switches by changing its exchange object', () => {
  it('the same bot places the same orders on ccxt.binanceusdm (paper exchange) and on P3Exchange (through the gates)', async () => {
    const direct = binanceusdm(px);
    let viaCcxt;
    try {
      viaCcxt = await bot(direct as unknown as UnifiedExchange);
    } finally {
      await direct.close();
    }
    const viaP3 = await bot(p3);
    expect(viaP3.orders.map(shape)).toEqual(viaCcxt.orders.map(shape));
    expect(viaP3.orders.map(shape)[0]).toMatchObject({ symbol: 'BTC/USDT:USDT', type: 'market', side: 'buy', amount: 0.002, filled: 0.002, status: 'closed' });
    expect(viaP3.orders.map(shape)[1]).toMatchObject({ side: 'sell', amount: 0.002, filled: 0.002, average: 50000, reduceOnly: true });
    expect(viaP3.contracts).toBe(viaCcxt.contracts);
    expect(await p3.fetchOpenOrders('BTC/USDT:USDT')).toEqual([]);
    // and the exchanges saw the same orders
    const seen = async (url: string) => (await adminOrders(url)).filter((o) => o.source === 'api').map((o) => `${o.symbol} ${o.side} ${o.qty} reduceOnly=${o.reduceOnly}`);
    expect(await seen(s.paper.url)).toEqual(await seen(px.url));
  });

  it('what is not supported throws NotSupported by name; a governor DENY is InsufficientFunds; an unknown symbol BadSymbol', async () => {
    await expect(p3.createOrder('BTC/USDT:USDT', 'limit', 'buy', 0.002, 40000)).rejects.toBeInstanceOf(ccxt.NotSupported);
    await expect(p3.cancelOrder('1')).rejects.toBeInstanceOf(ccxt.NotSupported);
    await expect(p3.fetchBalance()).rejects.toBeInstanceOf(ccxt.NotSupported);
    await expect(p3.createOrder('BTC/USDT:USDT', 'market', 'buy', 0.002, undefined, { positionSide: 'LONG' })).rejects.toBeInstanceOf(ccxt.NotSupported);
    await expect(p3.createOrder('DOGE/USDT:USDT', 'market', 'buy', 1)).rejects.toBeInstanceOf(ccxt.BadSymbol);
    const denied = await p3.createOrder('ETH/USDT:USDT', 'market', 'buy', 0.02).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(ccxt.InsufficientFunds);
    expect((denied as { p3Result: { status: string; reason: string } }).p3Result).toMatchObject({ status: 'DENY', reason: 'max_position_exceeded' });
    await expect(p3.fetchOrder('no-such-order')).rejects.toBeInstanceOf(ccxt.OrderNotFound);
    expect((await adminOrders(s.paper.url)).filter((o) => o.symbol === 'ETHUSDT' && o.source === 'api')).toEqual([]);
  });
});
