/**
 * The exchange port (docs/architecture.md#exchange-and-paper-exchange-fidelity). Adapters: ccxt (`binanceusdm`, production/demo/any base URL, including
 * the paper exchange). Every quantity is an exact decimal base-asset quantity; every time is epoch ms.
 */
import type { Decimal } from '../domain/decimal.js';

/** One position, one-way mode (positionSide BOTH): signed amount, + long, - short. */
export interface ExchangePosition {
  symbol: string;
  /** Signed base-asset amount. */
  amount: Decimal;
  entryPrice: Decimal | null;
  markPrice: Decimal | null;
}

/** A successful positions answer. Symbols absent from `positions` are flat (v3 omits flat symbols). */
export interface PositionsAnswer {
  positions: Map<string, ExchangePosition>;
  /** When the answer was received, epoch ms (local clock). */
  tsMs: number;
}

/** Trading rules of a symbol from exchangeInfo (`LOT_SIZE`/`MARKET_LOT_SIZE`, `PRICE_FILTER`, `MIN_NOTIONAL`). */
export interface SymbolRules {
  symbol: string;
  /** MARKET_LOT_SIZE stepSize when present, else LOT_SIZE stepSize. */
  stepSize: Decimal;
  minQty: Decimal;
  maxQty: Decimal | null;
  tickSize: Decimal | null;
  /** MIN_NOTIONAL `notional`, quote currency. */
  minNotional: Decimal | null;
}

/** One symbol of premiumIndex: mark and index price, USD per base unit. */
export interface PremiumIndexEntry {
  markPrice: Decimal;
  indexPrice: Decimal | null;
}

/** A MARKET order request. */
export interface MarketOrderRequest {
  symbol: string;
  side: 'BUY' | 'SELL';
  /** Base-asset quantity, already rounded to the lot step. */
  qty: Decimal;
  reduceOnly: boolean;
  /** Deterministic client order id (`^[\.A-Z\:/a-z0-9_-]{1,36}$`). */
  clientOrderId: string;
  /**
   * Called by the adapter at the last moment before the order request goes out on the wire: after any
   * client-side throttle queue (ccxt's `enableRateLimit` can hold a request for seconds) and after the request was
   * built and signed, before it is sent. It throws `SendRefused` to stop the order (nothing is sent, and the
   * adapter rethrows it unchanged); any other error it throws also stops the order, nothing sent.
   */
  beforeSend?: () => Promise<void>;
}

/** An order as known to the exchange. */
export interface OrderInfo {
  orderId: string;
  clientOrderId: string;
  symbol: string;
  side: 'BUY' | 'SELL';
  status: 'NEW' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELED' | 'REJECTED' | 'EXPIRED' | string;
  /** Ordered base-asset quantity. */
  qty: Decimal;
  /** Filled base-asset quantity. */
  filledQty: Decimal;
  avgPrice: Decimal | null;
  reduceOnly: boolean;
  /** Exchange update time, epoch ms. */
  updateTimeMs: number | null;
  /** Order type (`type`: MARKET, LIMIT, LIQUIDATION, ...), when the answer carries it. */
  type?: string;
}

/** One trade of the account's trade list (`GET /fapi/v1/userTrades`; src/adapters/exchange/venue-records.ts). */
export interface VenueTrade {
  symbol: string;
  /** Trade id (integer string). */
  id: string;
  orderId: string;
  side: 'BUY' | 'SELL';
  /** Base quantity, > 0. */
  qty: Decimal;
  price: Decimal | null;
  realizedPnl: Decimal | null;
  commission: Decimal | null;
  commissionAsset: string;
  /** Trade time, exchange clock, epoch ms. */
  timeMs: number;
}

/** The exchange, as every service sees it. Errors are the typed errors of `src/adapters/exchange/errors.ts`. */
export interface ExchangeGateway {
  /** Positions of all symbols (one-way mode). @throws HedgeModeRefused, RateLimited, Banned, Unavailable, Auth */
  fetchPositions(): Promise<PositionsAnswer>;
  /** Trading rules of `symbol`. @throws Unavailable when the symbol is unknown */
  symbolRules(symbol: string): Promise<SymbolRules>;
  /** Places a MARKET order. Never retried internally. @throws OutcomeUnknown, OrderRejected, ReduceOnlyRejected, RateLimited, Banned, Unavailable, Auth */
  placeMarketOrder(req: MarketOrderRequest): Promise<OrderInfo>;
  /** Looks an order up by client order id; null when the exchange does not know it. */
  fetchOrderByClientId(symbol: string, clientOrderId: string): Promise<OrderInfo | null>;
  /**
   * The account's trades of `symbol` from trade id `fromId` on (inclusive), oldest first, at most `limit`
   * (`GET /fapi/v1/userTrades`; `fromId` null: the newest `limit` of the last 7 days). Optional: a gateway
   * without it has no REST verifier for the venue journal.
   * @throws RateLimited, Banned, Unavailable, Auth
   */
  fetchTrades?(symbol: string, fromId: string | null, limit: number): Promise<VenueTrade[]>;
  /** Looks an order up by exchange order id (`GET /fapi/v1/order`); null when unknown. @throws RateLimited, Banned, Unavailable, Auth */
  fetchOrderById?(symbol: string, orderId: string): Promise<OrderInfo | null>;
  /** Exchange server time, epoch ms. */
  serverTime(): Promise<number>;
  /**
   * Mark prices of every symbol (USD per base unit; Binance `GET /fapi/v1/premiumIndex`), for sizing and
   * limiting entries on flat symbols (a flat symbol has no position row to carry its mark).
   * @throws RateLimited, Banned, Unavailable
   */
  fetchMarkPrices?(): Promise<Map<string, Decimal>>;
  /**
   * Mark and index prices of every symbol (Binance `GET /fapi/v1/premiumIndex`, fields `markPrice`,
   * `indexPrice`; USD per base unit), for the price collar's mark-vs-index check and the stale-mark check
   * (docs/risk-controls.md). `indexPrice` is null when absent or not positive.
   * @throws RateLimited, Banned, Unavailable
   */
  fetchPremiumIndex?(): Promise<Map<string, PremiumIndexEntry>>;
  /** Releases connections. */
  close(): Promise<void>;
}
