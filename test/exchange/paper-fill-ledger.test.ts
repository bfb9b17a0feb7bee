/**
 * Property test of the paper exchange's fill accounting (harness/paper-exchange/state.ts): for any sequence of
 * manual trades, API orders, mark moves, liquidations, ADL and settlements on one symbol,
 * - every fill is exactly one trade, ids strictly increasing, and the trades sum to the position;
 * - wallet = 10000 + Σ realizedPnl − Σ commission, and commission = quote quantity × fee rate (8 decimals);
 * - realized PnL is conserved: whenever the position is flat, Σ realizedPnl = Σ −signedQty × price (to the
 *   rounding of the 8-decimal entry price);
 * - the exchange's own orders only reduce |position|, never flip it, and carry Binance's client order ids.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decimal } from '../../src/domain/decimal.js';
import { PaperBook } from '../../harness/paper-exchange/state.js';

type Step =
  | { k: 'trade'; side: 'BUY' | 'SELL'; milli: number }
  | { k: 'order'; side: 'BUY' | 'SELL'; milli: number; reduceOnly: boolean }
  | { k: 'mark'; price: number }
  | { k: 'venue'; kind: 'liquidation' | 'adl' | 'settlement'; fraction: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ k: fc.constant('trade' as const), side: fc.constantFrom('BUY' as const, 'SELL' as const), milli: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ k: fc.constant('order' as const), side: fc.constantFrom('BUY' as const, 'SELL' as const), milli: fc.integer({ min: 1, max: 50 }), reduceOnly: fc.boolean() }),
  fc.record({ k: fc.constant('mark' as const), price: fc.integer({ min: 90_000, max: 100_000 }) }),
  fc.record({ k: fc.constant('venue' as const), kind: fc.constantFrom('liquidation' as const, 'adl' as const, 'settlement' as const), fraction: fc.double({ min: 0.01, max: 1, noNaN: true }) }),
);

describe('paper fill ledger (property)', () => {
  it('trades sum to the position, the wallet pays commissions and receives realized PnL, PnL is conserved at flat, venue orders only reduce', () => {
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 40 }), fc.constantFrom('0', '0.0005', '0.0004'), (steps, fee) => {
        const book = new PaperBook(['BTCUSDT'], {}, { BTCUSDT: '95000' });
        book.takerFeeRate = new Decimal(fee);
        let n = 0;
        for (const s of steps) {
          const before = book.positionOf('BTCUSDT').amt;
          if (s.k === 'trade') book.adminTrade('BTCUSDT', s.side, new Decimal(s.milli).div(1000).toString());
          else if (s.k === 'mark') book.setMark('BTCUSDT', String(s.price));
          else if (s.k === 'order') {
            try {
              book.placeOrder({ symbol: 'BTCUSDT', side: s.side, type: 'MARKET', quantity: new Decimal(s.milli).div(1000).toString(), reduceOnly: s.reduceOnly, clientOrderId: `p-${++n}` });
            } catch {
              // a refused order (reduce-only against the position) fills nothing
            }
          } else if (!before.isZero()) {
            const qty = Decimal.max(new Decimal('0.001'), before.abs().mul(s.fraction).toDecimalPlaces(3, Decimal.ROUND_DOWN));
            const o = book.venueClose(s.kind, 'BTCUSDT', qty.toString());
            const after = book.positionOf('BTCUSDT').amt;
            expect(after.abs().lte(before.abs())).toBe(true);
            expect(after.isZero() || after.isPos() === before.isPos()).toBe(true);
            expect(o.clientOrderId).toMatch(s.kind === 'adl' ? /^adl_autoclose$/ : s.kind === 'liquidation' ? /^autoclose-\d+$/ : /^settlement_autoclose-\d+$/);
          }
          // after every step
          const trades = book.trades;
          const pos = trades.reduce((a, t) => a.plus(t.side === 'BUY' ? t.qty : new Decimal(t.qty).neg()), new Decimal(0));
          expect(pos.eq(book.positionOf('BTCUSDT').amt)).toBe(true);
          for (let i = 1; i < trades.length; i++) expect(trades[i]!.id).toBeGreaterThan(trades[i - 1]!.id);
          const rp = trades.reduce((a, t) => a.plus(t.realizedPnl), new Decimal(0));
          const fees = trades.reduce((a, t) => a.plus(t.commission), new Decimal(0));
          expect(book.wallet.eq(new Decimal(10000).plus(rp).minus(fees))).toBe(true);
          for (const t of trades) expect(new Decimal(t.commission).eq(new Decimal(t.quoteQty).mul(fee).toDecimalPlaces(8, Decimal.ROUND_HALF_UP))).toBe(true);
          if (book.positionOf('BTCUSDT').amt.isZero()) {
            const cash = trades.reduce((a, t) => a.plus(new Decimal(t.qty).mul(t.price).mul(t.side === 'BUY' ? -1 : 1)), new Decimal(0));
            const volume = trades.reduce((a, t) => a.plus(t.qty), new Decimal(0));
            expect(cash.minus(rp).abs().lte(volume.mul('0.00000002').plus('0.00000001'))).toBe(true);
          }
          expect(book.orders.filter((o) => o.trade).length).toBe(trades.length);
        }
      }),
      { numRuns: 200 },
    );
  });
});
