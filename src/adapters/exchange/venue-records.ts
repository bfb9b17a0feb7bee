/**
 * The exchange's own trade record, REST side (Binance "Account Trade List (USER_DATA)",
 * `GET /fapi/v1/userTrades`, developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Account-Trade-List):
 * `symbol` required; `fromId` (trade id to start from, inclusive; not combinable with startTime/endTime);
 * `limit` default 500, max 1000; weight 5; without times the last 7 days. Each trade: `{symbol, id, orderId,
 * side, price, qty, realizedPnl, quoteQty, commission, commissionAsset, time, positionSide, buyer, maker}` —
 * no client order id: the order's (`GET /fapi/v1/order` by `orderId`, weight 1) tells whose it is.
 *
 * Invariants: parsing is fail-closed per answer — a non-array answer, or an entry without an integer id, a
 * BUY/SELL side, a positive quantity or a time, fails the whole page (a page with a hole in it must never
 * look complete).
 */
import { parseDecimal } from '../../domain/decimal.js';
import { Unavailable } from './errors.js';
import type { VenueTrade } from '../../ports/exchange.js';

export type { VenueTrade } from '../../ports/exchange.js';

/** Max `limit` of `GET /fapi/v1/userTrades`. */
export const USER_TRADES_MAX_LIMIT = 1000;

const idStr = (v: unknown): string | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? String(v) : typeof v === 'string' && /^\d{1,16}$/.test(v) ? v : null);

/**
 * Parses a `userTrades` answer.
 * @throws Unavailable on anything unexpected (see the module invariants)
 */
export function parseUserTrades(raw: unknown): VenueTrade[] {
  if (!Array.isArray(raw)) throw new Unavailable(`unparseable userTrades answer (not a list): ${JSON.stringify(raw).slice(0, 200)}`);
  return raw.map((e: Record<string, unknown>) => {
    const id = idStr(e?.id);
    const orderId = idStr(e?.orderId);
    const qty = parseDecimal(e?.qty);
    const time = Number(e?.time);
    if (id === null || orderId === null || (e.side !== 'BUY' && e.side !== 'SELL') || qty === null || qty.lte(0) || !Number.isSafeInteger(time) || typeof e.symbol !== 'string') {
      throw new Unavailable(`unparseable userTrades entry: ${JSON.stringify(e).slice(0, 200)}`);
    }
    return {
      symbol: e.symbol,
      id,
      orderId,
      side: e.side,
      qty,
      price: parseDecimal(e.price),
      realizedPnl: parseDecimal(e.realizedPnl),
      commission: parseDecimal(e.commission),
      commissionAsset: typeof e.commissionAsset === 'string' ? e.commissionAsset : '',
      timeMs: time,
    };
  });
}
