/**
 * The paper exchange's admin API (docs/architecture.md#interfaces), loopback only, under `/admin`:
 * - `GET /admin/positions` → `{ <SYM>: {positionAmt, entryPrice, markPrice} }` (every symbol, flat ones as `"0"`)
 * - `POST /admin/positions` `{symbol, amount, entry_price?}` sets a position outright (scenario setup)
 * - `POST /admin/trade` `{symbol, side: BUY|SELL, qty}` a manual trade at the mark price, as a person in the UI
 * - `POST /admin/liquidate` `{symbol, qty?}`, `POST /admin/adl` `{symbol, qty?}`, `POST /admin/settle`
 *   `{symbol, qty?}`: the exchange reduces the position (by `qty`, default all of it, never past flat) with its
 *   own order, as Binance reports a liquidation (client order id `autoclose-<digits>`), an ADL (`adl_autoclose`)
 *   or a settlement (`settlement_autoclose-<digits>`): on REST (`GET /fapi/v1/order`, `allOrders`,
 *   `userTrades`) and on the user stream (state.ts `venueClose`, user-stream.ts) → `{order, position}`;
 *   400 when the symbol is flat or `qty` is not in (0, |position|]
 * - `POST /admin/mark-price` `{symbol, price}`
 * - `POST /admin/index-price` `{symbol, price}` the index price apart from the mark (premiumIndex `indexPrice`;
 *   until set, the index follows the mark)
 * - `POST /admin/faults` `{kind, count?, duration_ms?, latency_ms?, retry_after_s?, fill_ratio?, executed?, endpoints?, methods?}`
 *   (see faults.ts),
 *   `GET /admin/faults`, `DELETE /admin/faults`
 * - `GET /admin/orders` every order received, accepted or not (`orderId, clientOrderId, symbol, side, qty,
 *   reduceOnly, status, ts_ms`, plus `source` (`api`, `admin`, `liquidation`, `adl`, `settlement`), `type`,
 *   `timeInForce`, `price`, `avgPrice`, `executedQty`, `trade` (its fill), `code`/`msg` of a refusal)
 * - `POST /admin/age` `{ms}` moves every order and trade `ms` into the past, so a test can make records older
 *   than `userTrades` (6 months; 7 days without `fromId`) or `allOrders` (90 days) serve
 * - `GET /admin/trades` every fill (the `GET /fapi/v1/userTrades` records of every symbol, oldest first)
 * - `GET /admin/requests` every exchange request received (`ts_ms, method, path, status`), `DELETE` clears it
 * - `POST /admin/position-mode` `{dual: boolean}` switches hedge mode (to test that it is refused)
 * Errors: 400 `{error}` for a bad body, 404 for an unknown route.
 */
import { z } from 'zod';
import { fmt } from '../../src/domain/decimal.js';
import { FaultSpecSchema, type FaultTable } from './faults.js';
import { BinanceError, type PaperBook } from './state.js';

/** One exchange request as logged for `GET /admin/requests`. */
export interface RequestLogEntry {
  ts_ms: number;
  method: string;
  path: string;
  /** HTTP status sent, 0 while none was sent (timeout fault). */
  status: number;
}

/** What the admin handler needs from the server. */
export interface AdminContext {
  book: PaperBook;
  faults: FaultTable;
  requests: RequestLogEntry[];
}

/** An admin reply. */
export interface AdminReply {
  status: number;
  body: unknown;
}

const sym = z.string().min(1).transform((s) => s.toUpperCase());
const decimalish = z.union([z.string(), z.number()]).transform((v) => String(v));
const TradeSchema = z.object({ symbol: sym, side: z.string().transform((s) => s.toUpperCase()).pipe(z.enum(['BUY', 'SELL'])), qty: decimalish });
const MarkSchema = z.object({ symbol: sym, price: decimalish });
const SetPositionSchema = z.object({ symbol: sym, amount: decimalish, entry_price: decimalish.optional() });
const ModeSchema = z.object({ dual: z.boolean() });
const AgeSchema = z.object({ ms: z.number().int().positive() });
const VenueCloseSchema = z.object({ symbol: sym, qty: decimalish.optional() });
const VENUE_CLOSE_ROUTES: Record<string, 'liquidation' | 'adl' | 'settlement'> = { 'POST /admin/liquidate': 'liquidation', 'POST /admin/adl': 'adl', 'POST /admin/settle': 'settlement' };

/** Current positions of every symbol. */
export function positionsView(book: PaperBook): Record<string, { positionAmt: string; entryPrice: string; markPrice: string }> {
  const out: Record<string, { positionAmt: string; entryPrice: string; markPrice: string }> = {};
  for (const s of book.rules.keys()) {
    const p = book.positionOf(s);
    out[s] = { positionAmt: fmt(p.amt), entryPrice: fmt(p.entry), markPrice: fmt(book.markOf(s)) };
  }
  return out;
}

/** Handles one admin request. Never throws: errors become 400 replies. */
export function handleAdmin(ctx: AdminContext, method: string, path: string, rawBody: string): AdminReply {
  try {
    const body: unknown = rawBody.trim() === '' ? {} : JSON.parse(rawBody);
    const route = `${method} ${path.replace(/\/+$/, '')}`;
    const venueKind = VENUE_CLOSE_ROUTES[route];
    if (venueKind) {
      const b = VenueCloseSchema.parse(body);
      const order = ctx.book.venueClose(venueKind, b.symbol, b.qty);
      return { status: 200, body: { order, position: positionsView(ctx.book)[b.symbol] } };
    }
    switch (route) {
      case 'GET /admin/positions':
        return { status: 200, body: positionsView(ctx.book) };
      case 'POST /admin/positions': {
        const b = SetPositionSchema.parse(body);
        ctx.book.setPosition(b.symbol, b.amount, b.entry_price);
        return { status: 200, body: positionsView(ctx.book)[b.symbol] };
      }
      case 'POST /admin/trade': {
        const b = TradeSchema.parse(body);
        const order = ctx.book.adminTrade(b.symbol, b.side, b.qty);
        return { status: 200, body: { order, position: positionsView(ctx.book)[b.symbol] } };
      }
      case 'POST /admin/mark-price': {
        const b = MarkSchema.parse(body);
        ctx.book.setMark(b.symbol, b.price);
        return { status: 200, body: positionsView(ctx.book)[b.symbol] };
      }
      case 'POST /admin/index-price': {
        const b = MarkSchema.parse(body);
        ctx.book.setIndex(b.symbol, b.price);
        return { status: 200, body: { ...positionsView(ctx.book)[b.symbol], indexPrice: fmt(ctx.book.indexOf(b.symbol)) } };
      }
      case 'POST /admin/faults':
        return { status: 200, body: ctx.faults.add(FaultSpecSchema.parse(body), Date.now()) };
      case 'GET /admin/faults':
        return { status: 200, body: ctx.faults.list(Date.now()) };
      case 'DELETE /admin/faults':
        ctx.faults.clear();
        return { status: 200, body: { cleared: true } };
      case 'GET /admin/orders':
        return { status: 200, body: ctx.book.orders };
      case 'POST /admin/age': {
        const { ms } = AgeSchema.parse(body);
        ctx.book.age(ms);
        return { status: 200, body: { aged_ms: ms } };
      }
      case 'GET /admin/trades':
        return { status: 200, body: ctx.book.trades };
      case 'GET /admin/requests':
        return { status: 200, body: ctx.requests };
      case 'DELETE /admin/requests':
        ctx.requests.length = 0;
        return { status: 200, body: { cleared: true } };
      case 'POST /admin/position-mode':
        ctx.book.dualSidePosition = ModeSchema.parse(body).dual;
        return { status: 200, body: { dualSidePosition: ctx.book.dualSidePosition } };
      default:
        return { status: 404, body: { error: `unknown admin route ${route}` } };
    }
  } catch (err) {
    const msg = err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : err instanceof BinanceError ? err.msg : (err as Error).message;
    return { status: 400, body: { error: msg } };
  }
}
