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
 * - Every fill is one trade (`trades`, ids increasing from 1 on the account) carrying its realized profit and a
 *   taker commission of `takerFeeRate` × quote quantity (default 0.05 %), both paid into / out of the USDT
 *   `wallet`: wallet = 10000 + Σ realizedPnl − Σ commission. An admin position set is not a trade.
 * - The exchange's own orders (liquidation, ADL, settlement) only reduce a position, never flip it.
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

/** USDT wallet balance of a new paper account. */
export const START_WALLET = '10000';
/** Default taker commission rate (0.05 %, Binance USDⓈ-M's regular-tier taker fee). */
export const DEFAULT_TAKER_FEE_RATE = '0.0005';

/** Who placed an order: a signed API request, a person (admin manual trade), or the exchange itself. */
export type OrderSource = 'api' | 'admin' | 'liquidation' | 'adl' | 'settlement';

/**
 * One fill, in `GET /fapi/v1/userTrades`' terms ("Account Trade List" response fields; decimals as strings;
 * `realizedPnl` and `commission` with 8 decimals). `commission` is the fee charged as a positive amount the
 * wallet pays, as the live venue reports it; the page's response example shows `"commission": "-0.07819010"`,
 * so a reader should take its magnitude.
 */
export interface PaperTrade {
  /** Trade id, increasing on the account. */
  id: number;
  symbol: string;
  orderId: number;
  side: string;
  price: string;
  qty: string;
  quoteQty: string;
  realizedPnl: string;
  commission: string;
  commissionAsset: 'USDT';
  /** Epoch ms of the fill. */
  time: number;
  positionSide: 'BOTH' | 'LONG' | 'SHORT';
  buyer: boolean;
  /** Always false: paper fills take liquidity. */
  maker: boolean;
}

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
  /** `api` (signed request), `admin` (manual trade) or the exchange's own order (`liquidation`, `adl`, `settlement`). */
  source: OrderSource;
  /** Binance order type: `MARKET` (also when absent), or `LIMIT` (IOC, at the fill price) for the exchange's own orders. */
  type?: 'MARKET' | 'LIMIT';
  /** `GTC` for MARKET orders (as Binance reports them; also when absent), `IOC` for the exchange's own orders. */
  timeInForce?: 'GTC' | 'IOC';
  /** Order price: `0` for MARKET (also when absent), the fill price for the exchange's own orders. */
  price?: string;
  avgPrice: string;
  executedQty: string;
  /** The order's fill (absent when nothing executed). */
  trade?: PaperTrade;
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

/** 8-decimal string as Binance sends PnL and commissions (`-0` as `0.00000000`). */
export function d8(d: Decimal): string {
  return (d.isZero() ? new Decimal(0) : d).toFixed(8);
}

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
  /** Every fill, oldest first. */
  readonly trades: PaperTrade[] = [];
  /** USDT wallet balance: start + realized PnL − commissions. */
  wallet = new Decimal(START_WALLET);
  /** Pre-fee accumulated realized PnL per symbol (`ACCOUNT_UPDATE` `cr`). */
  readonly realized = new Map<string, Decimal>();
  /** Taker commission rate (fraction of the quote quantity) every fill pays. */
  takerFeeRate = new Decimal(DEFAULT_TAKER_FEE_RATE);
  private nextOrderId = 4_000_000_001;
  private nextTradeId = 1;
  private autocloseSeq = 0;
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

  /** Applies a fill of `signedQty` at the mark price; returns the fill price and the realized PnL (pre-fee). */
  private fill(symbol: string, signedQty: Decimal): { price: Decimal; realized: Decimal } {
    const price = this.markOf(symbol);
    const pos = this.positionOf(symbol);
    // the closed part (toward flat) realizes (price − entry) per unit, signed by the old position's side
    const closing = !pos.amt.isZero() && signOf(pos.amt) !== signOf(signedQty);
    const closedQty = closing ? Decimal.min(signedQty.abs(), pos.amt.abs()) : new Decimal(0);
    // rounded once to the 8 decimals Binance reports, so the trade record, `cr` and the wallet agree exactly
    const realized = closedQty.mul(price.minus(pos.entry)).mul(signOf(pos.amt)).toDecimalPlaces(8, Decimal.ROUND_HALF_UP);
    const next = pos.amt.plus(signedQty);
    let entry: Decimal;
    if (next.isZero()) entry = new Decimal(0);
    else if (pos.amt.isZero() || signOf(pos.amt) === signOf(signedQty)) {
      // growing (or opening): weighted average of |old| at entry and |qty| at price
      entry = pos.amt.abs().mul(pos.entry).plus(signedQty.abs().mul(price)).div(next.abs()).toDecimalPlaces(8);
    } else if (signOf(next) === signOf(pos.amt)) entry = pos.entry; // shrinking
    else entry = price; // flipped: the remainder opened at the fill price
    this.positions.set(symbol, { amt: next, entry, updateTime: Date.now() });
    return { price, realized };
  }

  private newOrderId(): number {
    return this.nextOrderId++;
  }

  /** Logs a refused order (status REJECTED) and rethrows the refusal. */
  reject(partial: Pick<PaperOrder, 'clientOrderId' | 'symbol' | 'side' | 'qty' | 'reduceOnly'>, err: BinanceError): never {
    this.orders.push({ ...partial, orderId: 0, status: 'REJECTED', ts_ms: Date.now(), source: 'api', type: 'MARKET', timeInForce: 'GTC', price: '0', avgPrice: '0', executedQty: '0', code: err.code, msg: err.msg });
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

  /**
   * The exchange's own reducing order, as Binance reports a liquidation, an ADL or a settlement (docs: "Event:
   * Order Update", https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Order-Update:
   * special client order ids — starts with "autoclose-": liquidation order; "adl_autoclose": ADL auto close order;
   * "settlement_autoclose-": settlement order for delisting or delivery). The REST record has the shape of
   * "User's Force Orders" (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Users-Force-Orders):
   * `type: LIMIT`, `timeInForce: IOC`, `price` = fill price, `reduceOnly: false`, client order id
   * `autoclose-<ms><seq>` (e.g. `autoclose-1596107620040000020`). Fills at the mark price, pays the taker fee.
   * @throws Error when the symbol is flat or `qty` is not in (0, |position|]; BinanceError -1121 for an unknown symbol
   */
  venueClose(kind: 'liquidation' | 'adl' | 'settlement', symbol: string, qtyRaw: string | undefined): PaperOrder {
    const pos = this.positionOf(symbol);
    if (pos.amt.isZero()) throw new Error(`${symbol} has no position to ${kind === 'adl' ? 'auto-deleverage' : kind === 'liquidation' ? 'liquidate' : 'settle'}`);
    const qty = qtyRaw === undefined ? pos.amt.abs() : parseDecimal(qtyRaw);
    if (!qty || qty.lte(0) || qty.gt(pos.amt.abs())) throw new Error(`bad qty ${qtyRaw}: must be > 0 and <= |position| ${fmt(pos.amt.abs())}`);
    const now = Date.now();
    const seq = String(++this.autocloseSeq % 1_000_000).padStart(6, '0');
    const clientOrderId = kind === 'adl' ? 'adl_autoclose' : kind === 'liquidation' ? `autoclose-${now}${seq}` : `settlement_autoclose-${now}${seq}`;
    const side = pos.amt.gt(0) ? 'SELL' : 'BUY';
    return this.execute({ clientOrderId, symbol, side, qty: fmt(qty), reduceOnly: false }, side === 'BUY' ? qty : qty.neg(), kind, 'FILLED', { type: 'LIMIT', timeInForce: 'IOC' });
  }

  private execute(
    base: Pick<PaperOrder, 'clientOrderId' | 'symbol' | 'side' | 'qty' | 'reduceOnly'>,
    signed: Decimal,
    source: OrderSource,
    status: 'FILLED' | 'EXPIRED' = 'FILLED',
    kind: { type: 'MARKET' | 'LIMIT'; timeInForce: 'GTC' | 'IOC' } = { type: 'MARKET', timeInForce: 'GTC' },
  ): PaperOrder {
    const now = Date.now();
    const f = signed.isZero() ? null : this.fill(base.symbol, signed);
    const price = f ? f.price : new Decimal(0);
    const order: PaperOrder = {
      ...base,
      orderId: this.newOrderId(),
      status,
      ts_ms: now,
      source,
      type: kind.type,
      timeInForce: kind.timeInForce,
      price: kind.type === 'LIMIT' ? fmt(price) : '0',
      avgPrice: fmt(price),
      executedQty: fmt(signed.abs()),
    };
    if (f) {
      const quote = signed.abs().mul(f.price);
      const commission = quote.mul(this.takerFeeRate).toDecimalPlaces(8, Decimal.ROUND_HALF_UP);
      const trade: PaperTrade = {
        id: this.nextTradeId++,
        symbol: base.symbol,
        orderId: order.orderId,
        side: base.side,
        price: fmt(f.price),
        qty: fmt(signed.abs()),
        quoteQty: fmt(quote),
        realizedPnl: d8(f.realized),
        commission: d8(commission),
        commissionAsset: 'USDT',
        time: now,
        positionSide: this.dualSidePosition ? (base.side === 'BUY' ? 'LONG' : 'SHORT') : 'BOTH',
        buyer: base.side === 'BUY',
        maker: false,
      };
      order.trade = trade;
      this.trades.push(trade);
      this.wallet = this.wallet.plus(f.realized).minus(commission);
      this.realized.set(base.symbol, (this.realized.get(base.symbol) ?? new Decimal(0)).plus(f.realized));
    }
    this.orders.push(order);
    this.byClientId.set(order.clientOrderId, order);
    return order;
  }

  /** Moves every order and trade `ms` into the past (admin `POST /admin/age`: records older than REST can read). */
  age(ms: number): void {
    for (const o of this.orders) o.ts_ms -= ms;
    for (const t of this.trades) t.time -= ms;
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
