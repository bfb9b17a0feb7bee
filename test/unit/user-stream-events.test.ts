/**
 * Parsing of user data stream messages (src/adapters/exchange/user-stream/events.ts): Binance's documented
 * shapes parse to exact decimals; anything malformed is `{ok: false}`, never a position and never flat.
 */
import { describe, expect, it } from 'vitest';
import { parseUserStreamMessage } from '../../src/adapters/exchange/user-stream/events.js';

const acc = (p: Record<string, unknown>[], extra: Record<string, unknown> = {}) => JSON.stringify({ e: 'ACCOUNT_UPDATE', E: 1564745798939, T: 1564745798938, a: { m: 'ORDER', B: [], P: p }, ...extra });

describe('parseUserStreamMessage', () => {
  it("parses Binance's ACCOUNT_UPDATE example exactly; a one-way close is ps=BOTH, amount 0", () => {
    const r = parseUserStreamMessage(acc([{ s: 'BTCUSDT', pa: '0', ep: '0.00000', bep: '0', cr: '200', up: '0', mt: 'isolated', iw: '0.00000000', ps: 'BOTH' }, { s: 'ethusdt', pa: '-0.089', ep: '19700.03933', ps: 'BOTH' }]));
    expect(r.ok).toBe(true);
    if (!r.ok || r.event.type !== 'ACCOUNT_UPDATE') throw new Error('not an account update');
    expect(r.event.txTimeMs).toBe(1564745798938);
    expect(r.event.positions.map((p) => [p.symbol, p.amount.toString(), p.positionSide])).toEqual([
      ['BTCUSDT', '0', 'BOTH'],
      ['ETHUSDT', '-0.089', 'BOTH'],
    ]);
  });

  it('ORDER_TRADE_UPDATE and listenKeyExpired (E as a string, as the current docs show)', () => {
    const o = parseUserStreamMessage(JSON.stringify({ e: 'ORDER_TRADE_UPDATE', E: 2, T: 1, o: { s: 'BTCUSDT', c: 'p3-x', S: 'SELL', o: 'MARKET', q: '0.001', x: 'TRADE', X: 'FILLED', i: 8886774, l: '0.001', z: '0.001', L: '95000', T: 1, R: true, ps: 'BOTH' } }));
    expect(o.ok && o.event.type === 'ORDER_TRADE_UPDATE' && [o.event.order.clientOrderId, o.event.order.orderId, o.event.order.lastQty.toString(), o.event.order.reduceOnly]).toEqual(['p3-x', '8886774', '0.001', true]);
    const x = parseUserStreamMessage(JSON.stringify({ e: 'listenKeyExpired', E: '1736996475556', listenKey: 'abc' }));
    expect(x).toEqual({ ok: true, event: { type: 'listenKeyExpired', eventTimeMs: 1736996475556, listenKey: 'abc' } });
    expect(parseUserStreamMessage(JSON.stringify({ e: 'MARGIN_CALL', E: 5 }))).toEqual({ ok: true, event: { type: 'other', name: 'MARGIN_CALL', eventTimeMs: 5 } });
  });

  it.each([
    ['not JSON', '{oops'],
    ['no event type', JSON.stringify({ E: 1 })],
    ['pa missing', acc([{ s: 'BTCUSDT', ps: 'BOTH' }])],
    ['pa a number (Binance sends strings)', acc([{ s: 'BTCUSDT', pa: 0.5, ps: 'BOTH' }])],
    ['pa not a decimal', acc([{ s: 'BTCUSDT', pa: 'NaN', ps: 'BOTH' }])],
    ['ps missing', acc([{ s: 'BTCUSDT', pa: '0' }])],
    ['T missing', JSON.stringify({ e: 'ACCOUNT_UPDATE', E: 1, a: { m: 'ORDER', P: [] } })],
    ['P not a list', JSON.stringify({ e: 'ACCOUNT_UPDATE', E: 1, T: 1, a: { m: 'ORDER', P: {} } })],
    ['order without client id', JSON.stringify({ e: 'ORDER_TRADE_UPDATE', E: 1, T: 1, o: { s: 'BTCUSDT', S: 'BUY', x: 'TRADE', X: 'FILLED', i: 1, l: '1', z: '1' } })],
  ])('%s → not ok (never a position, never flat)', (_name, text) => {
    expect(parseUserStreamMessage(text).ok).toBe(false);
  });
});
