import { describe, expect, it } from 'vitest';
import { BinanceHttpError, mapExchangeError } from '../../src/adapters/exchange/ccxt.js';
import { Auth, Banned, OrderRejected, OutcomeUnknown, RateLimited, ReduceOnlyRejected, Unavailable } from '../../src/adapters/exchange/errors.js';

const e = (status: number, code: number | null, msg = 'x', retry: number | null = null) => new BinanceHttpError(status, code, msg, retry);

describe('exchange error mapping (order path fails toward "look it up", never toward "did not happen")', () => {
  it('execution-status-unknown answers are OutcomeUnknown on an order, Unavailable on a read', () => {
    expect(mapExchangeError(e(408, -1007, 'Timeout waiting for response from backend server. Send status unknown; execution status unknown.'), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(400, -1006, 'An unexpected response was received from the message bus. Execution status unknown.'), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(408, null), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(403, null, 'proxy says no'), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(503, -1000, 'Unknown error'), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(408, -1007), 'read')).toBeInstanceOf(Unavailable);
    expect(mapExchangeError(e(403, null), 'read')).toBeInstanceOf(Unavailable);
  });
  it('definitive answers stay definitive', () => {
    expect(mapExchangeError(e(400, -2022, 'ReduceOnly Order is rejected.'), 'order')).toBeInstanceOf(ReduceOnlyRejected);
    const r = mapExchangeError(e(400, -1111, 'Precision is over the maximum defined for this asset.'), 'order');
    expect(r).toBeInstanceOf(OrderRejected);
    expect((r as OrderRejected).code).toBe(-1111);
    expect(mapExchangeError(e(401, -2015), 'order')).toBeInstanceOf(Auth);
    expect((mapExchangeError(e(429, -1003, 'Too many requests', 7), 'order') as RateLimited).retryAfterMs).toBe(7000);
    expect((mapExchangeError(e(418, -1003, 'Way too many requests; IP banned until 1769384278629.'), 'order') as Banned).untilMs).toBe(1769384278629);
  });
  it("Binance's documented 100% failures (503 Service Unavailable., -1001 internal error, -1008 throttled) are Unavailable (not executed), never a shared back-off", () => {
    for (const kind of ['order', 'read'] as const) {
      expect(mapExchangeError(e(503, -1001, 'Service Unavailable.'), kind)).toBeInstanceOf(Unavailable);
      expect(mapExchangeError(e(503, -1001, 'Internal error; unable to process your request. Please try again.'), kind)).toBeInstanceOf(Unavailable);
      expect(mapExchangeError(e(503, -1008, 'Request throttled by system-level protection. Reduce-only/close-position orders are exempt. Please try again.'), kind)).toBeInstanceOf(Unavailable);
      expect(mapExchangeError(e(503, -1008, 'Server is currently overloaded with other requests. Please try again in a few minutes.'), kind)).toBeInstanceOf(Unavailable);
    }
  });
  it('a 503 that is not a documented failure stays unknown on an order: the "Unknown error" variant, a bare proxy body, another code', () => {
    expect(mapExchangeError(e(503, -1000, 'Unknown error, please check your request or try again later.'), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(503, -1001, 'Unknown error, please check your request or try again later.'), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(503, null, 'Service Unavailable.'), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(503, -1007, 'Service Unavailable.'), 'order')).toBeInstanceOf(OutcomeUnknown);
    expect(mapExchangeError(e(502, -1000, 'Service Unavailable.'), 'order')).toBeInstanceOf(OutcomeUnknown);
  });
});
