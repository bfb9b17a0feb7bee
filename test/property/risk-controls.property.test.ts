/**
 * The pre-trade risk controls (src/domain/risk-controls/): over generated prices, quantities, times and
 * settings, no ALLOW ever violates a configured control, the boundary itself passes, and every DENY names
 * its own reason. Exact decimals: the checks are re-done here with integer arithmetic (prices scaled to
 * 8 decimals as BigInt), never with floats.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decimal } from '../../src/domain/decimal.js';
import { beyondBand, checkEntryRiskControls, checkFillThrottle, checkMarkAge, checkPriceCollar, MARK_FUTURE_SKEW_MS, type SymbolRiskSettings } from '../../src/domain/risk-controls/index.js';
import { params } from './runs.js';

/** A price with up to 8 decimals as [Decimal, BigInt scaled by 1e8]. */
const price = fc.bigInt({ min: 1n, max: 10n ** 15n }).map((n) => [new Decimal(n.toString()).div(1e8), n] as const);
const bps = fc.integer({ min: 1, max: 5000 });
const NOW = 1_770_000_000_000;

/** |p − r| × 10000 > bps × r, in integers. */
function outside(p: bigint, r: bigint, b: number): boolean {
  const d = p > r ? p - r : r - p;
  return d * 10000n > BigInt(b) * r;
}

describe('price collar', () => {
  it('with ref_price: ALLOW iff the mark is within the band (exact, boundary included)', () => {
    fc.assert(
      fc.property(price, price, bps, ([mark, m], [ref, r], b) => {
        const v = checkPriceCollar({ mark, refPrice: ref, indexPrice: null, collarBps: new Decimal(b), markIndexMaxBps: new Decimal(1) });
        expect(v.ok).toBe(!outside(m, r, b));
        if (!v.ok) expect(v.reason).toBe('price_collar');
      }),
      params(500),
    );
  });
  it('without ref_price: ALLOW iff the mark is within the band around the index; no index = DENY', () => {
    fc.assert(
      fc.property(price, fc.option(price), bps, ([mark, m], idx, b) => {
        const v = checkPriceCollar({ mark, refPrice: null, indexPrice: idx ? idx[0] : null, collarBps: new Decimal(1), markIndexMaxBps: new Decimal(b) });
        expect(v.ok).toBe(idx !== null && !outside(m, idx[1], b));
      }),
      params(500),
    );
  });
  it('exactly on the band passes, one unit beyond it is denied', () => {
    const ref = new Decimal('50000');
    expect(checkPriceCollar({ mark: new Decimal('50500'), refPrice: ref, indexPrice: null, collarBps: new Decimal(100), markIndexMaxBps: null }).ok).toBe(true);
    expect(checkPriceCollar({ mark: new Decimal('50500.00000001'), refPrice: ref, indexPrice: null, collarBps: new Decimal(100), markIndexMaxBps: null }).ok).toBe(false);
    expect(checkPriceCollar({ mark: new Decimal('49500'), refPrice: ref, indexPrice: null, collarBps: new Decimal(100), markIndexMaxBps: null }).ok).toBe(true);
    expect(checkPriceCollar({ mark: new Decimal('49499.99999999'), refPrice: ref, indexPrice: null, collarBps: new Decimal(100), markIndexMaxBps: null }).ok).toBe(false);
    // a 2 % move against the default 100 bps
    expect(checkPriceCollar({ mark: new Decimal('51000'), refPrice: ref, indexPrice: null, collarBps: new Decimal(100), markIndexMaxBps: null })).toMatchObject({ ok: false, reason: 'price_collar', context: { deviation_bps: '200.00' } });
    expect(beyondBand(new Decimal('1.0001'), new Decimal('1'), new Decimal('1'))).toBe(false);
    // off: passes whatever the prices
    expect(checkPriceCollar({ mark: new Decimal(1), refPrice: new Decimal(2), indexPrice: null, collarBps: null, markIndexMaxBps: null }).ok).toBe(true);
    expect(checkPriceCollar({ mark: null, refPrice: new Decimal(2), indexPrice: null, collarBps: new Decimal(100), markIndexMaxBps: null }).ok).toBe(false);
  });
});

describe('stale mark', () => {
  it('ALLOW iff the mark is known, at most maxAge old and not from the future', () => {
    fc.assert(
      fc.property(fc.option(fc.integer({ min: -20_000, max: 60_000 })), fc.integer({ min: 1, max: 30_000 }), (age, max) => {
        const v = checkMarkAge(age === null ? null : NOW - age, NOW, max);
        expect(v.ok).toBe(age !== null && age <= max && -age <= MARK_FUTURE_SKEW_MS);
        if (!v.ok) expect(v.reason).toBe('stale_mark');
      }),
      params(500),
    );
  });
});

describe('every entry control together', () => {
  const dec = (lo: number, hi: number) => fc.integer({ min: lo, max: hi }).map((n) => new Decimal(n).div(1000));
  const settings = fc.record({
    collarBps: fc.option(bps.map((b) => new Decimal(b))),
    markIndexMaxBps: fc.option(bps.map((b) => new Decimal(b))),
    markMaxAgeMs: fc.option(fc.integer({ min: 1, max: 10_000 })),
    restricted: fc.subarray(['BTCUSDT', 'ETHUSDT']),
    maxOrderQty: fc.option(dec(1, 10_000)),
    maxOrderPctOfPositionLimit: fc.option(fc.integer({ min: 1, max: 100 }).map((n) => new Decimal(n))),
    maxPositionUsd: fc.option(dec(1_000, 100_000_000)),
  }) as fc.Arbitrary<SymbolRiskSettings>;
  it('no ALLOW violates a configured control; a DENY names one of the controls', () => {
    fc.assert(
      fc.property(
        settings,
        fc.constantFrom('BTCUSDT', 'ETHUSDT', 'SOLUSDT'),
        dec(1, 10_000),
        fc.option(price),
        fc.option(price),
        fc.option(price),
        fc.option(fc.integer({ min: -5000, max: 20_000 })),
        (s, symbol, qty, mark, index, ref, age) => {
          const v = checkEntryRiskControls({ symbol, qty, mark: mark?.[0] ?? null, markTsMs: age === null ? null : NOW - age, indexPrice: index?.[0] ?? null, refPrice: ref?.[0] ?? null, nowMs: NOW, settings: s });
          if (!v.ok) {
            expect(['restricted_symbol', 'stale_mark', 'price_collar', 'max_order_qty_exceeded', 'fat_finger']).toContain(v.reason);
            return;
          }
          expect(s.restricted).not.toContain(symbol);
          if (s.markMaxAgeMs !== null) expect(age !== null && age <= s.markMaxAgeMs && age >= -MARK_FUTURE_SKEW_MS).toBe(true);
          if (ref !== null && s.collarBps !== null) expect(mark !== null && !outside(mark[1], ref[1], s.collarBps.toNumber())).toBe(true);
          if (ref === null && s.markIndexMaxBps !== null) expect(mark !== null && index !== null && !outside(mark[1], index[1], s.markIndexMaxBps.toNumber())).toBe(true);
          if (s.maxOrderQty !== null) expect(qty.lte(s.maxOrderQty)).toBe(true);
          if (s.maxOrderPctOfPositionLimit !== null && s.maxPositionUsd !== null) expect(mark !== null && qty.mul(mark[0]).mul(100).lte(s.maxPositionUsd.mul(s.maxOrderPctOfPositionLimit))).toBe(true);
        },
      ),
      params(1000),
    );
  });
});

describe('repeated-execution throttle', () => {
  it('ALLOW iff at most maxFills fills lie in the window and after the last trip', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -120_000, max: 1000 }), { maxLength: 30 }), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 100 }), fc.option(fc.integer({ min: -120_000, max: 0 })), (offsets, max, windowSec, since) => {
        const fills = offsets.map((o) => NOW + o);
        const v = checkFillThrottle(fills, NOW, max, windowSec * 1000, since === null ? null : NOW + since);
        const counted = fills.filter((t) => t > NOW - windowSec * 1000 && t <= NOW && (since === null || t > NOW + since)).length;
        expect(v.ok).toBe(counted <= max);
        if (!v.ok) expect(v.reason).toBe('fill_throttle');
        expect(checkFillThrottle(fills, NOW, null, windowSec * 1000, null).ok).toBe(true);
      }),
      params(500),
    );
  });
});
