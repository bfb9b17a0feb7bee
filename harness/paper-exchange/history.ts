/**
 * The account's record on REST, as Binance USDⓈ-M documents it:
 *
 * `GET /fapi/v1/userTrades` — "Account Trade List (USER_DATA)", weight 5
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Account-Trade-List):
 * - `symbol` mandatory; `orderId` ("can only be used in combination with symbol"), `startTime`, `endTime`,
 *   `fromId` ("Trade id to fetch from. Default gets most recent trades."), `limit` ("Default 500; max 1000").
 * - "If startTime and endTime are both not sent, then the last 7 days' data will be returned."
 * - "The time between startTime and endTime cannot be longer than 7 days." → -1127; only one of them sent: the
 *   7 days after `startTime` / before `endTime`.
 * - "The parameter fromId cannot be sent with startTime or endTime." → -1128.
 * - "Only support querying trade in the past 6 months": older trades are never returned (183 days here).
 * - Each trade: `{buyer, commission, commissionAsset, id, maker, orderId, price, qty, quoteQty, realizedPnl,
 *   side, positionSide, symbol, time}`, oldest first.
 *
 * `GET /fapi/v1/allOrders` — "All Orders (USER_DATA)", weight 5
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/All-Orders):
 * - `symbol` mandatory; `orderId`, `startTime`, `endTime`, `limit` ("Default 500; max 1000").
 * - "If orderId is set, it will get orders >= that orderId. Otherwise most recent orders are returned."
 * - "The query time period must be less then 7 days( default as the recent 7 days)." → -1127 past 7 days.
 * - "These orders will not be found: order status is CANCELED or EXPIRED AND order has NO filled trade AND
 *   created time + 3 days < current time; order create time + 90 days < current time."
 * - Each order in the "Query Order" shape (shapes.ts `orderBody`), oldest first. Rejected orders are not stored.
 *
 * Error codes (https://developers.binance.com/docs/derivatives/usds-margined-futures/error-code): -1102 missing
 * `symbol`, -1127 INVALID_INTERVAL "Lookup interval is too big.", -1128 "Combination of optional parameters
 * invalid.", -1130 "Data sent for parameter 'limit' is not valid." (ccxt caps `limit` at 1000: "above 1000,
 * returns error"), -1100 for a non-integer number parameter.
 */
import { orderBody } from './shapes.js';
import { BinanceError, type PaperBook, type PaperTrade } from './state.js';

/** 7 days, ms: the longest lookup interval of both endpoints. */
export const SEVEN_DAYS_MS = 7 * 24 * 3_600_000;
const THREE_DAYS_MS = 3 * 24 * 3_600_000;
const NINETY_DAYS_MS = 90 * 24 * 3_600_000;
/** "the past 6 months" of "Account Trade List", ms. */
export const SIX_MONTHS_MS = 183 * 24 * 3_600_000;

type Params = Record<string, string | undefined>;

function intParam(params: Params, name: string): number | undefined {
  const raw = params[name];
  if (raw === undefined) return undefined;
  if (!/^-?[0-9]{1,19}$/.test(raw)) throw new BinanceError(400, -1100, `Illegal characters found in parameter '${name}'; legal range is '^-?[0-9]{1,19}$'.`);
  return Number(raw);
}

function limitParam(params: Params): number {
  const limit = intParam(params, 'limit') ?? 500;
  if (limit < 1 || limit > 1000) throw new BinanceError(400, -1130, "Data sent for parameter 'limit' is not valid.");
  return limit;
}

/** The [from, to] window (epoch ms, inclusive) of `startTime`/`endTime`, or the last 7 days when neither is sent. */
function window(params: Params, nowMs: number): { from: number; to: number } {
  const start = intParam(params, 'startTime');
  const end = intParam(params, 'endTime');
  if (start !== undefined && end !== undefined) {
    if (end < start) throw new BinanceError(400, -1128, 'Combination of optional parameters invalid.');
    if (end - start > SEVEN_DAYS_MS) throw new BinanceError(400, -1127, 'Lookup interval is too big.');
    return { from: start, to: end };
  }
  if (start !== undefined) return { from: start, to: start + SEVEN_DAYS_MS };
  if (end !== undefined) return { from: end - SEVEN_DAYS_MS, to: end };
  return { from: nowMs - SEVEN_DAYS_MS, to: nowMs };
}

/** `GET /fapi/v1/userTrades` of `symbol` (already validated). @throws BinanceError as listed above */
export function userTrades(book: PaperBook, symbol: string, params: Params, nowMs: number): PaperTrade[] {
  const limit = limitParam(params);
  const fromId = intParam(params, 'fromId');
  const orderId = intParam(params, 'orderId');
  if (fromId !== undefined && (params.startTime !== undefined || params.endTime !== undefined)) throw new BinanceError(400, -1128, 'Combination of optional parameters invalid.');
  let list = book.trades.filter((t) => t.symbol === symbol && (orderId === undefined || t.orderId === orderId) && t.time >= nowMs - SIX_MONTHS_MS);
  if (fromId !== undefined) return list.filter((t) => t.id >= fromId).slice(0, limit);
  const w = window(params, nowMs);
  list = list.filter((t) => t.time >= w.from && t.time <= w.to);
  // with a startTime the oldest trades of the window come first; otherwise the most recent ones
  return params.startTime !== undefined ? list.slice(0, limit) : list.slice(-limit);
}

/** `GET /fapi/v1/allOrders` of `symbol` (already validated), in the "Query Order" shape. @throws BinanceError as listed above */
export function allOrders(book: PaperBook, symbol: string, params: Params, nowMs: number): unknown[] {
  const limit = limitParam(params);
  const orderId = intParam(params, 'orderId');
  let list = book.orders.filter((o) => {
    if (o.symbol !== symbol || o.status === 'REJECTED') return false;
    if (o.ts_ms + NINETY_DAYS_MS < nowMs) return false;
    const unfilled = Number(o.executedQty) === 0;
    return !(o.status === 'EXPIRED' && unfilled && o.ts_ms + THREE_DAYS_MS < nowMs);
  });
  if (orderId !== undefined) {
    list = list.filter((o) => o.orderId >= orderId);
    if (params.startTime !== undefined || params.endTime !== undefined) {
      const w = window(params, nowMs);
      list = list.filter((o) => o.ts_ms >= w.from && o.ts_ms <= w.to);
    }
    return list.slice(0, limit).map((o) => orderBody(o, false, true));
  }
  const w = window(params, nowMs);
  list = list.filter((o) => o.ts_ms >= w.from && o.ts_ms <= w.to);
  return (params.startTime !== undefined ? list.slice(0, limit) : list.slice(-limit)).map((o) => orderBody(o, false, true));
}
