/**
 * Typed exchange errors. Every adapter maps its library's errors to these, so services never
 * inspect ccxt or HTTP details.
 */

/** Base class of every exchange error. */
export class ExchangeError extends Error {
  override readonly name: string = 'ExchangeError';
}

/** HTTP 429: too many requests. Nothing may be sent before `retryAfterMs` has passed. */
export class RateLimited extends ExchangeError {
  override readonly name = 'RateLimited';
  constructor(
    /** Milliseconds to wait (from `Retry-After`, seconds on the wire). */
    readonly retryAfterMs: number,
    message = 'rate limited (HTTP 429)',
  ) {
    super(message);
  }
}

/** HTTP 418: IP banned until `untilMs` (epoch ms), e.g. seed 002's "IP banned until 1769384278629". */
export class Banned extends ExchangeError {
  override readonly name = 'Banned';
  constructor(
    readonly untilMs: number,
    message = 'IP banned (HTTP 418)',
  ) {
    super(message);
  }
}

/** The request was sent and the outcome is unknown (503 "Unknown error", timeout after send): look the order up. */
export class OutcomeUnknown extends ExchangeError {
  override readonly name = 'OutcomeUnknown';
}

/** The exchange refused the order (Binance `{code, msg}`). */
export class OrderRejected extends ExchangeError {
  override readonly name: string = 'OrderRejected';
  constructor(
    readonly code: number,
    readonly msg: string,
  ) {
    super(`order rejected ${code}: ${msg}`);
  }
}

/** -2022 "ReduceOnly Order is rejected": the order would increase or flip the position. */
export class ReduceOnlyRejected extends OrderRejected {
  override readonly name = 'ReduceOnlyRejected';
}

/** The exchange cannot be reached or answered with a server error before the request took effect. */
export class Unavailable extends ExchangeError {
  override readonly name = 'Unavailable';
}

/** Bad API key, signature or permissions (-2014, -2015, -1022). */
export class Auth extends ExchangeError {
  override readonly name = 'Auth';
}

/** The account is in hedge mode (dualSidePosition=true); only one-way mode (positionSide BOTH) is supported. */
export class HedgeModeRefused extends ExchangeError {
  override readonly name = 'HedgeModeRefused';
}

/**
 * The caller's last-moment check refused the order just before its request would have gone out
 * (`MarketOrderRequest.beforeSend`): nothing was sent, so the outcome is certain (never looked up).
 * `reason` is the result reason (`trading_halted`, `trading_state_reducing`, `breaker_open`, `reconcile_hold_active`,
 * `permit_expired`, `send_delayed`, ...).
 */
export class SendRefused extends ExchangeError {
  override readonly name = 'SendRefused';
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}
