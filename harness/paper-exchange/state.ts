/**
 * The paper exchange's book: symbols and their trading rules, one-way positions, mark prices and the log
 * of every order received (accepted or not). Pure in-memory state with exact decimals (docs/architecture.md#quantities, docs/architecture.md#exchange-and-paper-exchange-fidelity).
 *
 * Invariants:
 * - A position is one signed decimal per symbol (one-way mode); fills happen at the symbol's mark price.
 * - Entry price: weighted average when a position grows, unchanged when it shrinks, 0 when it becomes
 *   flat, the fill price when it flips (Binance USDⓈ-M semantics).
 * - Client order ids are unique among OPEN orders only (Binance -4116 "ClientOrderId is duplicated." for an
 *   open one): `newClientOrderId` is "A unique id among open orders"
 *   (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api, New Order). A paper
 *   MARKET order is final at once (FILLED, or EXPIRED when cut short), so an id whose order already filled is
 *   accepted again; a lookup by client order id answers the latest order with that id. Rejected orders are
 *   logged but do not reserve their client order id (Binance does not store rejected orders).
 */
import { Decimal, fmt, parseDecimal, roundDownToStep, signOf } from '../../src/domain/decimal.js';

/** Trading rules of one paper symbol (strings are exact decimals). */
export interface PaperSymbolRules {
  /** LOT_SIZE / MARKET_LOT_SIZE `stepSize`, base asset. */
  stepSize: string;
  /** LOT_SIZE `minQty`, base asset. */
  minQty: string;
  /** LOT_SIZE `maxQty`, base asset. */
  maxQty: string;
  /** PRICE_FILTER `tickSize`, quote asset. */
  tickSize: string;
  /** MIN_NOTIONAL `notional`, quote asset (reduce-only orders are exempt, as on Binance). */
  minNotional: string;
}

/** Defaults per symbol: lot step 0.001 / min qty 0.001 for BTCUSDT and ETHUSDT (Binance's own values). */
export const DEFAULT_RULES: Record<string, PaperSymbolRules> = {
  BTCUSDT: { stepSize: '0.001', minQty: '0.001', maxQty: '1000', tickSize: '0.10', minNotional: '5' },
  ETHUSDT: { stepSize: '0.001', minQty: '0.001', maxQty: '10000', tickSize: '0.01', minNotional: '5' },
};
/** Rules for any other symbol. */
export const FALLBACK_RULES: PaperSymbolRules = { stepSize: '0.001', minQty: '0.001', maxQty: '100000', tickSize: '0.01', minNotional: '5' };
/** Default mark prices (quote per base). */
export const DEFAULT_MARK_PRICES: Record<string, string> = { BTCUSDT: '95000', ETHUSDT: '3300' };
/** Mark price of any other symbol. */
export const FALLBACK_MARK_PRICE = '100';

/** One order as logged by the paper exchange (`GET /admin/orders`). */
export interface PaperOrder {
  orderId: number;
  clientOrderId: string;
  symbol: string;
  side: string;
  /** Requested quantity as sent (string, may be invalid for rejected orders). */
  qty: string;
  reduceOnly: boolean;
  /**
   * FILLED for accepted orders, REJECTED for refused ones, EXPIRED for a MARKET order that filled only
   * partly (the `partial_fill` fault; `executedQty` < `qty`, possibly 0).
   */
  status: 'FILLED' | 'REJECTED' | 'EXPIRED';
  /** Epoch ms when the order was received. */
  ts_ms: number;
  /** `api` (signed request) or `admin` (manual trade). */
  source: 'api' | 'admin';
  avgPrice: string;
  executedQty: string;
  /** Binance error code / message of a rejected order. */
  code?: number;
  msg?: string;
}

/** A Binance-style refusal: HTTP status plus `{code, msg}` body. */
export class BinanceError extends Error {
  constructor(
    readonly httpStatus: number,
    readonly code: number,
    readonly msg: string,
  ) {
    super(`${code} ${msg}`);
  }
}

interface Position {
  amt: Decimal;
  entry: Decimal;
  updateTime: number;
}

/** Statuses of an order still working on the book (Binance Order Status NEW, PARTIALLY_FILLED); paper orders never are. */
const OPEN_STATUSES: ReadonlySet<string> = new Set(['NEW', 'PARTIALLY_FILLED']);

const QTY_RE = /^([0-9]{1,20})(\.[0-9]{1,20})?$/;

/** Number of decimals of a step such as `0.001` (3) or `1` (0). */
export function decimalsOf(step: string): number {
  const d = new Decimal(step);
  return Math.max(0, d.decimalPlaces());
}

/** The in-memory book of the paper exchange. */
export class PaperBook {
  readonly rules = new Map<string, PaperSymbolRules>();
  readonly marks = new Map<string, Decimal>();
  /** Index prices set apart from the mark (`POST /admin/index-price`); a symbol without one has index = mark. */
  readonly indexes = new Map<string, Decimal>();
  readonly positions = new Map<string, Position>();
  readonly orders: PaperOrder[] = [];
  private readonly byClientId = new Map<string, PaperOrder>();
  private nextOrderId = 4_000_000_001;
  /** Hedge mode flag (`GET /fapi/v1/positionSide/dual`). */
  dualSidePosition = false;

  constructor(symbols: string[], positions: Record<string, string>, markPrices: Record<string, string>, rules: Record<string, Partial<PaperSymbolRules>> = {}) {
    const all = new Set([...symbols, ...Object.keys(positions), ...Object.keys(markPrices), ...Object.keys(rules)].map((s) => s.toUpperCase()));
    for (const sym of all) {
      this.rules.set(sym, { ...(DEFAULT_RULES[sym] ?? FALLBACK_RULES), ...(rules[sym] ?? {}) });
      const mark = parseDecimal(markPrices[sym] ?? DEFAULT_MARK_PRICES[sym] ?? FALLBACK_MARK_PRICE);
      if (!mark || mark.lte(0)) throw new Error(`bad mark price for ${sym}`);
      this.marks.set(sym, mark);
      this.positions.set(sym, { amt: new Decimal(0), entry: new Decimal(0), updateTime: 0 });
    }
    for (const [sym, raw] of Object.entries(positions)) this.setPosition(sym.toUpperCase(), raw);
  }

  /** Rules of a symbol. @throws BinanceError -1121 for an unknown symbol */
  rulesOf(symbol: string): PaperSymbolRules {
    const r = this.rules.get(symbol);
    if (!r) throw new BinanceError(400, -1121, 'Invalid symbol.');
    return r;
  }

  /** Mark price of a known symbol. */
  markOf(symbol: string): Decimal {
    this.rulesOf(symbol);
    return this.marks.get(symbol) as Decimal;
  }

  /** Index price of a known symbol (premiumIndex `indexPrice`): the one set by the admin API, else the mark. */
  indexOf(symbol: string): Decimal {
    return this.indexes.get(symbol) ?? this.markOf(symbol);
  }

  /** Sets the index price apart from the mark. @throws BinanceError for an unknown symbol, Error for a non-positive price */
  setIndex(symbol: string, price: string): void {
    this.rulesOf(symbol);
    const p = parseDecimal(price);
    if (!p || p.lte(0)) throw new Error(`bad index price ${price}`);
    this.indexes.set(symbol, p);
  }

  /** Signed position and entry price of a known symbol. */
  positionOf(symbol: string): { amt: Decimal; entry: Decimal; updateTime: number } {
    this.rulesOf(symbol);
    return this.positions.get(symbol) as Position;
  }

  /** Sets a position directly (admin / start-up), entry at the mark price unless given. @throws Error on a bad amount */
  setPosition(symbol: string, amount: string, entryPrice?: string): void {
    const amt = parseDecimal(amount);
    if (!amt) throw new Error(`bad position amount for ${symbol}: ${amount}`);
    const entry = amt.isZero() ? new Decimal(0) : (parseDecimal(entryPrice ?? '') ?? this.markOf(symbol));
    this.rulesOf(symbol);
    this.positions.set(symbol, { amt, entry, updateTime: Date.now() });
  }

  /** Sets the mark price. @throws BinanceError for an unknown symbol, Error for a non-positive price */
  setMark(symbol: string, price: string): void {
    this.rulesOf(symbol);
    const p = parseDecimal(price);
    if (!p || p.lte(0)) throw new Error(`bad mark price ${price}`);
    this.marks.set(symbol, p);
  }

  /** Applies a fill of `signedQty` at the mark price; returns the fill price. */
  private fill(symbol: string, signedQty: Decimal): Decimal {
    const price = this.markOf(symbol);
    const pos = this.positionOf(symbol);
    const next = pos.amt.plus(signedQty);
    let entry: Decimal;
    if (next.isZero()) entry = new Decimal(0);
    else if (pos.amt.isZero() || signOf(pos.amt) === signOf(signedQty)) {
      // growing (or opening): weighted average of |old| at entry and |qty| at price
      entry = pos.amt.abs().mul(pos.entry).plus(signedQty.abs().mul(price)).div(next.abs()).toDecimalPlaces(8);
    } else if (signOf(next) === signOf(pos.amt)) entry = pos.entry; // shrinking
    else entry = price; // flipped: the remainder opened at the fill price
    this.positions.set(symbol, { amt: next, entry, updateTime: Date.now() });
    return price;
  }

  private newOrderId(): number {
    return this.nextOrderId++;
  }

  /** Logs a refused order (status REJECTED) and rethrows the refusal. */
  reject(partial: Pick<PaperOrder, 'clientOrderId' | 'symbol' | 'side' | 'qty' | 'reduceOnly'>, err: BinanceError): never {
    this.orders.push({ ...partial, orderId: 0, status: 'REJECTED', ts_ms: Date.now(), source: 'api', avgPrice: '0', executedQty: '0', code: err.code, msg: err.msg });
    throw err;
  }

  /**
   * Validates and executes a MARKET order as Binance USDⓈ-M does in one-way mode.
   * @throws BinanceError -1121 symbol, -1117 side, -1116 type, -4061 position side, -1102/-1100 quantity,
   *   -1111 precision over the lot step's decimals, -4004 below min qty, -4023 not a multiple of the step, -4003 qty <= 0,
   *   -4005 over max qty, -2022 reduce-only that would increase or flip, -4164 min notional, -4116 client id of an OPEN order
   */
  placeOrder(p: { symbol: string; side: string; type: string; quantity: string | undefined; reduceOnly: boolean; clientOrderId: string; positionSide?: string; fillRatio?: number }): PaperOrder {
    const base = { clientOrderId: p.clientOrderId, symbol: p.symbol, side: p.side, qty: p.quantity ?? '', reduceOnly: p.reduceOnly };
    try {
      const rules = this.rulesOf(p.symbol);
      if (p.side !== 'BUY' && p.side !== 'SELL') throw new BinanceError(400, -1117, 'Invalid side.');
      if (p.type !== 'MARKET') throw new BinanceError(400, -1116, 'Invalid orderType.');
      const ps = p.positionSide ?? 'BOTH';
      if (this.dualSidePosition ? ps === 'BOTH' : ps !== 'BOTH') throw new BinanceError(400, -4061, "Order's position side does not match user's setting.");
      if (p.quantity === undefined) throw new BinanceError(400, -1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.");
      if (!QTY_RE.test(p.quantity)) throw new BinanceError(400, -1100, "Illegal characters found in parameter 'quantity'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.");
      const qty = new Decimal(p.quantity);
      if (qty.lte(0)) throw new BinanceError(400, -4003, 'Quantity less than or equal to zero.');
      if (qty.decimalPlaces() > decimalsOf(rules.stepSize)) throw new BinanceError(400, -1111, 'Precision is over the maximum defined for this asset.');
      // Per-filter codes of https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code
      // (40xx - Filters and other Issues): -4004 QTY_LESS_THAN_MIN_QTY, -4023 QTY_NOT_INCREASED_BY_STEP_SIZE.
      // USDⓈ-M futures do not answer the spot-style -1013 "Filter failure: LOT_SIZE".
      if (qty.lt(rules.minQty)) throw new BinanceError(400, -4004, 'Quantity less than min quantity.');
      if (!qty.mod(rules.stepSize).isZero()) throw new BinanceError(400, -4023, 'Qty not increased by step size.');
      if (qty.gt(rules.maxQty)) throw new BinanceError(400, -4005, 'Quantity greater than max quantity.');
      const same = this.byClientId.get(p.clientOrderId);
      if (same && OPEN_STATUSES.has(same.status)) throw new BinanceError(400, -4116, 'ClientOrderId is duplicated.');
      const signed = p.side === 'BUY' ? qty : qty.neg();
      const pos = this.positionOf(p.symbol);
      if (p.reduceOnly) {
        // reduce-only must move toward flat without crossing it
        if (pos.amt.isZero() || signOf(pos.amt) === signOf(signed) || qty.gt(pos.amt.abs())) {
          throw new BinanceError(400, -2022, 'ReduceOnly Order is rejected.');
        }
      } else if (qty.mul(this.markOf(p.symbol)).lt(rules.minNotional)) {
        throw new BinanceError(400, -4164, `Order's notional must be no smaller than ${rules.minNotional} (unless you choose reduce only).`);
      }
      if (p.fillRatio !== undefined) {
        // the `partial_fill` fault: part fills (rounded down to the lot step), the rest EXPIRED
        const part = roundDownToStep(qty.mul(p.fillRatio), new Decimal(rules.stepSize));
        return this.execute({ ...base, qty: fmt(qty) }, p.side === 'BUY' ? part : part.neg(), 'api', 'EXPIRED');
      }
      return this.execute({ ...base, qty: fmt(qty) }, signed, 'api');
    } catch (err) {
      if (err instanceof BinanceError) this.reject(base, err);
      throw err;
    }
  }

  /** A manual trade, as a person in the exchange's UI (no lot/notional checks beyond a positive quantity). */
  adminTrade(symbol: string, side: 'BUY' | 'SELL', qtyRaw: string): PaperOrder {
    const qty = parseDecimal(qtyRaw);
    if (!qty || qty.lte(0)) throw new Error(`bad qty ${qtyRaw}`);
    this.rulesOf(symbol);
    const clientOrderId = `web_${this.nextOrderId}`;
    return this.execute({ clientOrderId, symbol, side, qty: fmt(qty), reduceOnly: false }, side === 'BUY' ? qty : qty.neg(), 'admin');
  }

  private execute(base: Pick<PaperOrder, 'clientOrderId' | 'symbol' | 'side' | 'qty' | 'reduceOnly'>, signed: Decimal, source: 'api' | 'admin', status: 'FILLED' | 'EXPIRED' = 'FILLED'): PaperOrder {
    const price = signed.isZero() ? new Decimal(0) : this.fill(base.symbol, signed);
    const order: PaperOrder = { ...base, orderId: this.newOrderId(), status, ts_ms: Date.now(), source, avgPrice: fmt(price), executedQty: fmt(signed.abs()) };
    this.orders.push(order);
    this.byClientId.set(order.clientOrderId, order);
    return order;
  }

  /** Looks an accepted order up by id or client id (the latest order with that client id; Binance -2013 when unknown). */
  findOrder(symbol: string, orderId?: string, clientOrderId?: string): PaperOrder {
    this.rulesOf(symbol);
    let o: PaperOrder | undefined;
    if (orderId !== undefined) o = this.orders.find((x) => x.status !== 'REJECTED' && String(x.orderId) === orderId);
    else if (clientOrderId !== undefined) o = this.byClientId.get(clientOrderId);
    else throw new BinanceError(400, -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!");
    if (!o || o.symbol !== symbol) throw new BinanceError(400, -2013, 'Order does not exist.');
    return o;
  }
}
