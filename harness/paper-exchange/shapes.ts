/**
 * JSON bodies of the paper exchange, shaped like Binance USDⓈ-M futures' answers (fapi v1/v2/v3 as
 * documented at developers.binance.com, "USDⓈ-M Futures"), so that ccxt `binanceusdm` parses them as
 * it parses the real exchange's. Numbers that Binance sends as strings are strings here too.
 */
import { Decimal, fmt } from '../../src/domain/decimal.js';
import { decimalsOf, type PaperBook, type PaperOrder } from './state.js';

/** `GET /fapi/v1/exchangeInfo`. */
export function exchangeInfo(book: PaperBook, nowMs: number): unknown {
  const symbols = [...book.rules.entries()].map(([symbol, r]) => {
    const baseAsset = symbol.endsWith('USDT') ? symbol.slice(0, -4) : symbol;
    const lot = { stepSize: r.stepSize, filterType: 'LOT_SIZE', maxQty: r.maxQty, minQty: r.minQty };
    return {
      symbol,
      pair: symbol,
      contractType: 'PERPETUAL',
      deliveryDate: 4133404800000,
      onboardDate: 1569398400000,
      status: 'TRADING',
      maintMarginPercent: '2.5000',
      requiredMarginPercent: '5.0000',
      baseAsset,
      quoteAsset: 'USDT',
      marginAsset: 'USDT',
      pricePrecision: decimalsOf(r.tickSize),
      quantityPrecision: decimalsOf(r.stepSize),
      baseAssetPrecision: 8,
      quotePrecision: 8,
      underlyingType: 'COIN',
      underlyingSubType: [],
      settlePlan: 0,
      triggerProtect: '0.0500',
      liquidationFee: '0.012500',
      marketTakeBound: '0.05',
      maxMoveOrderLimit: 10000,
      filters: [
        { minPrice: r.tickSize, maxPrice: '10000000', filterType: 'PRICE_FILTER', tickSize: r.tickSize },
        lot,
        { ...lot, filterType: 'MARKET_LOT_SIZE' },
        { limit: 200, filterType: 'MAX_NUM_ORDERS' },
        { limit: 10, filterType: 'MAX_NUM_ALGO_ORDERS' },
        { notional: r.minNotional, filterType: 'MIN_NOTIONAL' },
        { multiplierDown: '0.9500', multiplierUp: '1.0500', multiplierDecimal: '4', filterType: 'PERCENT_PRICE' },
      ],
      orderTypes: ['LIMIT', 'MARKET', 'STOP', 'STOP_MARKET', 'TAKE_PROFIT', 'TAKE_PROFIT_MARKET', 'TRAILING_STOP_MARKET'],
      timeInForce: ['GTC', 'IOC', 'FOK', 'GTX', 'GTD'],
      permissionSets: ['GRID', 'COPY'],
    };
  });
  return {
    timezone: 'UTC',
    serverTime: nowMs,
    futuresType: 'U_MARGINED',
    rateLimits: [
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 2400 },
      { rateLimitType: 'ORDERS', interval: 'MINUTE', intervalNum: 1, limit: 1200 },
      { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 300 },
    ],
    exchangeFilters: [],
    assets: [{ asset: 'USDT', marginAvailable: true, autoAssetExchange: '-10000' }],
    symbols,
  };
}

/** `GET /fapi/v1/leverageBracket` (one entry per symbol, or the symbol's entry when `symbol` is given). */
export function leverageBrackets(book: PaperBook, symbol?: string): unknown {
  const syms = symbol ? [symbol] : [...book.rules.keys()];
  const list = syms.map((s) => ({
    symbol: s,
    notionalCoef: 1.0,
    brackets: [
      { bracket: 1, initialLeverage: 125, notionalCap: 50000, notionalFloor: 0, maintMarginRatio: 0.004, cum: 0.0 },
      { bracket: 2, initialLeverage: 100, notionalCap: 600000, notionalFloor: 50000, maintMarginRatio: 0.005, cum: 50.0 },
      { bracket: 3, initialLeverage: 50, notionalCap: 3000000, notionalFloor: 600000, maintMarginRatio: 0.01, cum: 3050.0 },
    ],
  }));
  return list;
}

interface Leg {
  symbol: string;
  positionSide: 'BOTH' | 'LONG' | 'SHORT';
  amt: Decimal;
  entry: Decimal;
  mark: Decimal;
  updateTime: number;
}

/** Position legs as the exchange reports them: one BOTH leg in one-way mode, LONG and SHORT legs in hedge mode. */
function legs(book: PaperBook, symbol?: string): Leg[] {
  const out: Leg[] = [];
  for (const sym of symbol ? [symbol] : [...book.rules.keys()]) {
    const p = book.positionOf(sym);
    const mark = book.markOf(sym);
    if (!book.dualSidePosition) out.push({ symbol: sym, positionSide: 'BOTH', amt: p.amt, entry: p.entry, mark, updateTime: p.updateTime });
    else {
      const zero = new Decimal(0);
      out.push({ symbol: sym, positionSide: 'LONG', amt: p.amt.gt(0) ? p.amt : zero, entry: p.amt.gt(0) ? p.entry : zero, mark, updateTime: p.updateTime });
      out.push({ symbol: sym, positionSide: 'SHORT', amt: p.amt.lt(0) ? p.amt : zero, entry: p.amt.lt(0) ? p.entry : zero, mark, updateTime: p.updateTime });
    }
  }
  return out;
}

function legNumbers(l: Leg) {
  const notional = l.amt.mul(l.mark);
  const upnl = l.amt.mul(l.mark.minus(l.entry));
  return { notional: fmt(notional), upnl: fmt(l.amt.isZero() ? new Decimal(0) : upnl), margin: fmt(notional.abs().div(20)) };
}

/** `GET /fapi/v2/positionRisk`: every symbol, flat ones included. */
export function positionRiskV2(book: PaperBook, symbol?: string): unknown[] {
  return legs(book, symbol).map((l) => {
    const n = legNumbers(l);
    return {
      symbol: l.symbol,
      positionAmt: fmt(l.amt),
      entryPrice: fmt(l.entry),
      breakEvenPrice: fmt(l.entry),
      markPrice: fmt(l.mark),
      unRealizedProfit: n.upnl,
      liquidationPrice: '0',
      leverage: '20',
      maxNotionalValue: '50000',
      marginType: 'cross',
      isolatedMargin: '0.00000000',
      isAutoAddMargin: 'false',
      positionSide: l.positionSide,
      notional: n.notional,
      isolatedWallet: '0',
      updateTime: l.updateTime,
    };
  });
}

/** `GET /fapi/v3/positionRisk`: only symbols with a position (v3 omits flat symbols). */
export function positionRiskV3(book: PaperBook, symbol?: string): unknown[] {
  return legs(book, symbol)
    .filter((l) => !l.amt.isZero())
    .map((l) => {
      const n = legNumbers(l);
      return {
        symbol: l.symbol,
        positionSide: l.positionSide,
        positionAmt: fmt(l.amt),
        entryPrice: fmt(l.entry),
        breakEvenPrice: fmt(l.entry),
        markPrice: fmt(l.mark),
        unRealizedProfit: n.upnl,
        liquidationPrice: '0',
        isolatedMargin: '0',
        notional: n.notional,
        marginAsset: 'USDT',
        isolatedWallet: '0',
        initialMargin: n.margin,
        maintMargin: '0',
        positionInitialMargin: n.margin,
        openOrderInitialMargin: '0',
        adl: 0,
        bidNotional: '0',
        askNotional: '0',
        updateTime: l.updateTime,
      };
    });
}

/**
 * An order in Binance's shapes: the `RESULT` answer of `POST /fapi/v1/order` (`ack` gives the `ACK` shape: status
 * NEW, nothing executed yet), or with `query` the record of "Query Order" / "All Orders"
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Query-Order and
 * .../All-Orders: the same fields without `cumQty`, which only the new-order answer carries). The exchange's own
 * orders (liquidation `autoclose-…`, ADL `adl_autoclose`, settlement `settlement_autoclose-…`) are `LIMIT`/`IOC` at
 * the fill price, as "User's Force Orders" shows them.
 */
export function orderBody(o: PaperOrder, ack = false, query = false): unknown {
  const type = o.type ?? 'MARKET';
  const body: Record<string, unknown> = {
    orderId: o.orderId,
    symbol: o.symbol,
    status: ack ? 'NEW' : o.status,
    clientOrderId: o.clientOrderId,
    price: o.price ?? '0',
    avgPrice: ack ? '0.00' : o.avgPrice,
    origQty: o.qty,
    executedQty: ack ? '0' : o.executedQty,
    cumQty: ack ? '0' : o.executedQty,
    cumQuote: ack ? '0' : fmt(new Decimal(o.executedQty).mul(o.avgPrice)),
    timeInForce: o.timeInForce ?? 'GTC',
    type,
    reduceOnly: o.reduceOnly,
    closePosition: false,
    side: o.side,
    positionSide: 'BOTH',
    stopPrice: '0',
    workingType: 'CONTRACT_PRICE',
    priceProtect: false,
    origType: type,
    priceMatch: 'NONE',
    selfTradePreventionMode: 'EXPIRE_MAKER',
    goodTillDate: 0,
    time: o.ts_ms,
    updateTime: o.ts_ms,
  };
  if (query) delete body.cumQty;
  return body;
}
