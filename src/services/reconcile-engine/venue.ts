/**
 * The reconcile engine's read of the venue journal (docs/architecture.md#venue-journal): the newest fills of
 * `quantum:stream:exchange.fills` and each symbol's journal cursor (its open gap), once per pass, plus the
 * event fields that name the venue's evidence. Read-only; an entry that cannot be parsed is skipped and
 * counted by the caller's log (it never becomes evidence).
 */
import type { Redis } from 'ioredis';
import { STREAMS, keys } from '../../adapters/redis/keys.js';
import { fieldsToObject } from '../../adapters/redis/consumer.js';
import type { VenueView } from '../../domain/attribution.js';
import { venueFillFromFields, type VenueFill } from '../../domain/venue-fill.js';
import { venueCloseEvent } from '../../domain/venue-origin.js';
import { EVENT } from '../../domain/events.js';

/** Journal entries read per pass (all symbols; newest first). */
export const VENUE_LOOKBACK = 500;

/**
 * Reads the venue view of `symbols`.
 * @returns the view per symbol and the number of unparseable entries seen
 * @throws when Redis fails
 */
export async function readVenue(redis: Redis, symbols: string[]): Promise<{ views: Map<string, VenueView>; invalid: number }> {
  const batch = redis.multi().xrevrange(STREAMS.exchangeFills, '+', '-', 'COUNT', VENUE_LOOKBACK);
  for (const s of symbols) batch.hmget(keys.venueCursor(s), 'gap_since_ms', 'gap_reason', 'last_trade_id');
  const res = await batch.exec();
  if (!res) throw new Error('venue read: transaction aborted');
  const [err, raw] = res[0]!;
  if (err) throw err;
  const bySymbol = new Map<string, VenueFill[]>();
  let invalid = 0;
  for (const [, f] of raw as Array<[string, string[]]>) {
    const fill = venueFillFromFields(fieldsToObject(f));
    if (!fill) {
      invalid++;
      continue;
    }
    const list = bySymbol.get(fill.symbol) ?? [];
    list.push(fill);
    bySymbol.set(fill.symbol, list);
  }
  const views = new Map<string, VenueView>();
  symbols.forEach((s, i) => {
    const [e, h] = res[i + 1]!;
    // an unreadable cursor is an open gap since forever (fail closed)
    const [since, reason, last] = e ? ['0', 'unreadable cursor', null] : (h as Array<string | null>);
    const gapSinceMs = since !== null && since !== undefined && /^\d+$/.test(since) ? Number(since) : null;
    views.set(s, { fills: bySymbol.get(s) ?? [], gapSinceMs, gapReason: reason ?? '', lastTradeId: last && /^\d+$/.test(last) ? last : null });
  });
  return { views, invalid };
}

/**
 * Redis rollback detection on the engine's side: the journal cursor's `last_trade_id` below the highest this
 * engine saw means the journal lost entries (a failover to a replica that lagged); until the brain's REST
 * verifier has re-read them the view carries an open gap (`redis_rollback`) from the moment it was noticed.
 */
export class VenueRollbackWatch {
  private readonly high = new Map<string, bigint>();
  private readonly since = new Map<string, number>();

  /** Returns `view` with the gap of a rollback noticed now or earlier, and remembers the cursor. */
  apply(symbol: string, view: VenueView, nowMs: number): VenueView {
    const last = view.lastTradeId ? BigInt(view.lastTradeId) : -1n;
    const high = this.high.get(symbol);
    if (high === undefined || last >= high) {
      this.high.set(symbol, last);
      this.since.delete(symbol);
      return view;
    }
    const since = this.since.get(symbol) ?? nowMs;
    this.since.set(symbol, since);
    const gapSinceMs = view.gapSinceMs === null ? since : Math.min(view.gapSinceMs, since);
    return { ...view, gapSinceMs, gapReason: view.gapReason || 'redis_rollback' };
  }
}

/** Event fields naming the venue's evidence: source `exchange`, order ids, trade ids, client order ids. */
export function venueEvidenceFields(fills: VenueFill[]): Record<string, string> {
  return {
    evidence_source: 'exchange',
    evidence_order_id: [...new Set(fills.map((f) => f.orderId))].join(','),
    evidence_trade_id: fills.map((f) => f.tradeId).join(','),
    evidence_client_order_id: [...new Set(fills.map((f) => f.clientOrderId))].join(','),
    evidence_origin: [...new Set(fills.map((f) => f.origin))].join(','),
    evidence_count: String(fills.length),
  };
}

/** The event of a venue close adopted into the ledger: the newest venue close's kind. */
export function venueCloseEventName(fills: VenueFill[]): NonNullable<ReturnType<typeof venueCloseEvent>> {
  for (let i = fills.length - 1; i >= 0; i--) {
    const ev = venueCloseEvent(fills[i]!.origin);
    if (ev) return ev;
  }
  return EVENT.LIQUIDATION;
}
