/**
 * One fill of the venue journal (`quantum:stream:exchange.fills`, docs/architecture.md#venue-journal):
 * the shape, its stream fields and their parsing. Pure, no I/O.
 *
 * Invariants:
 * - A fill is identified by its symbol and exchange trade id (a non-negative integer string); the
 *   journal records each at most once (`venueFillRecord-4.lua`).
 * - Quantities and prices are exact decimals; `lastQty` > 0 (a fill of nothing is not a fill).
 * - Times: `tradeTimeMs` / `eventTimeMs` are the EXCHANGE's clock; `localTsMs` is the trade time mapped to
 *   the local clock through the measured offset (never later than the truth), the clock the ledger's
 *   `ts_epoch` is written in. A fill whose time could not be mapped is not journaled.
 * - Parsing a stored entry is total: anything unparseable is null (the caller counts it, never guesses).
 */
import { Decimal, fmt, parseDecimal } from './decimal.js';
import { VENUE_ORIGINS, venueOriginOf, type VenueOrigin } from './venue-origin.js';

/** Where a journaled fill was learnt. */
export type VenueFillSource = 'stream' | 'rest';

/** A fill on the account as the exchange reported it. */
export interface VenueFill {
  symbol: string;
  orderId: string;
  clientOrderId: string;
  /** Exchange trade id (integer string). */
  tradeId: string;
  side: 'BUY' | 'SELL';
  /** This fill's base quantity (`l` / `qty`), > 0. */
  lastQty: Decimal;
  /** The order's accumulated filled base quantity (`z`); null from REST (userTrades does not carry it). */
  cumQty: Decimal | null;
  /** Fill price (`L` / `price`). */
  price: Decimal | null;
  /** Realized profit (`rp` / `realizedPnl`), quote asset. */
  realizedPnl: Decimal | null;
  /** Commission (`n` / `commission`) and its asset (`N` / `commissionAsset`). */
  commission: Decimal | null;
  commissionAsset: string;
  reduceOnly: boolean;
  /** Order type (`o` / `type`): MARKET, LIMIT, LIQUIDATION, ... ('' unknown). */
  orderType: string;
  /** Exchange event time, epoch ms (stream `E`; REST: the trade time). */
  eventTimeMs: number;
  /** Exchange transaction / trade time, epoch ms. */
  tradeTimeMs: number;
  /** Trade time on the local clock, epoch ms. */
  localTsMs: number;
  origin: VenueOrigin;
  source: VenueFillSource;
  /**
   * Decision of our plan whose order this is (`EXECUTE`, `RECONCILE_CLOSE`, `FLATTEN`) as the apply layer
   * recorded it when it sent the order; '' when unknown (not ours, or the record is gone).
   */
  planDecision: string;
}

/** Signed quantity of a fill: BUY +, SELL −. */
export function signedQty(f: Pick<VenueFill, 'side' | 'lastQty'>): Decimal {
  return f.side === 'BUY' ? f.lastQty : f.lastQty.neg();
}

/** Stream fields of a fill (`plan_decision` is added by the journal script). */
export function venueFillFields(f: Omit<VenueFill, 'planDecision' | 'origin'> & { origin?: VenueOrigin }): Record<string, string> {
  const d = (x: Decimal | null) => (x === null ? '' : fmt(x));
  return {
    symbol: f.symbol,
    order_id: f.orderId,
    client_order_id: f.clientOrderId,
    trade_id: f.tradeId,
    side: f.side,
    last_qty: fmt(f.lastQty),
    cum_qty: d(f.cumQty),
    price: d(f.price),
    realized_pnl: d(f.realizedPnl),
    commission: d(f.commission),
    commission_asset: f.commissionAsset,
    reduce_only: f.reduceOnly ? 'true' : 'false',
    order_type: f.orderType,
    event_time_ms: String(f.eventTimeMs),
    trade_time_ms: String(f.tradeTimeMs),
    local_ts_ms: String(f.localTsMs),
    origin: f.origin ?? venueOriginOf(f.clientOrderId, f.orderType),
    source: f.source,
  };
}

const TRADE_ID_RE = /^\d{1,16}$/;

/** Whether a trade id is journalable (a non-negative integer below 2^53). */
export function validTradeId(id: string): boolean {
  return TRADE_ID_RE.test(id) && Number(id) <= Number.MAX_SAFE_INTEGER;
}

/** Reads a journal entry's fields; null when anything required is missing or unparseable. */
export function venueFillFromFields(f: Record<string, string>): VenueFill | null {
  const side = f.side;
  if (side !== 'BUY' && side !== 'SELL') return null;
  const qty = parseDecimal(f.last_qty);
  if (qty === null || qty.lte(0)) return null;
  if (!f.symbol || !validTradeId(f.trade_id ?? '')) return null;
  const num = (s: string | undefined) => (s !== undefined && /^\d{1,16}$/.test(s) ? Number(s) : null);
  const local = num(f.local_ts_ms);
  const trade = num(f.trade_time_ms);
  if (local === null || trade === null) return null;
  const origin = (VENUE_ORIGINS as readonly string[]).includes(f.origin ?? '') ? (f.origin as VenueOrigin) : null;
  if (origin === null) return null;
  const opt = (s: string | undefined) => (s === undefined || s === '' ? null : parseDecimal(s));
  return {
    symbol: f.symbol,
    orderId: f.order_id ?? '',
    clientOrderId: f.client_order_id ?? '',
    tradeId: f.trade_id as string,
    side,
    lastQty: qty,
    cumQty: opt(f.cum_qty),
    price: opt(f.price),
    realizedPnl: opt(f.realized_pnl),
    commission: opt(f.commission),
    commissionAsset: f.commission_asset ?? '',
    reduceOnly: f.reduce_only === 'true',
    orderType: f.order_type ?? '',
    eventTimeMs: num(f.event_time_ms) ?? trade,
    tradeTimeMs: trade,
    localTsMs: local,
    origin,
    source: f.source === 'rest' ? 'rest' : 'stream',
    planDecision: f.plan_decision ?? '',
  };
}

/** The zero decimal, for sums. */
export const ZERO = new Decimal(0);
