/**
 * The venue journal's writer (docs/architecture.md#venue-journal): every fill on the account, ours or not,
 * recorded once by trade id in `quantum:stream:exchange.fills` with its origin, from the user data stream as
 * it arrives and from the REST verifier (verifier.ts).
 *
 * Guarantees:
 * - Exactly once: `venueFillRecord-4.lua` checks the symbol's trade ids and appends in one atomic step, so
 *   the stream and REST (or two brains) recording the same trade write one entry.
 * - Never invented: an entry is written only from an exchange message or answer naming the trade id; a
 *   fill without a trade id or whose time cannot be put on the local clock is not written (counted in
 *   `p33_venue_fills_skipped_total{reason}`) and the symbol's journal is marked as having a gap, which only
 *   REST can close.
 * - A gap (`gap_since_ms` in `quantum:venue:cursor:<SYM>`) is set with HSETNX (the oldest open gap wins) and
 *   cleared only by a verification that STARTED after it was set (`venueGapClear-1.lua`).
 *
 * Metrics: `p33_venue_fills_total{symbol,origin}` (fills recorded), `p33_venue_fills_duplicate_total{source}`
 * (already recorded), `p33_venue_fills_skipped_total{reason}`.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { keys } from '../../../adapters/redis/keys.js';
import { venueFillRecord, venueGapClear } from '../../../adapters/redis/scripts/index.js';
import { validTradeId, venueFillFields, type VenueFill } from '../../../domain/venue-fill.js';
import { venueOriginOf } from '../../../domain/venue-origin.js';

/** Trade ids kept per symbol for the exactly-once check (far more than any REST page). */
export const TRADE_ID_RETENTION = 5000;

/** A fill to record (origin and plan decision are derived). */
export type FillToRecord = Omit<VenueFill, 'origin' | 'planDecision'>;

/** Why a symbol's journal may miss fills. */
export type GapReason = 'restart' | 'disconnect' | 'listen_key_expired' | 'redis_rollback' | 'unmapped_time' | 'no_trade_id' | 'unverifiable';

/** See the module comment. */
export class VenueJournal {
  private readonly fills: Counter<'symbol' | 'origin'>;
  private readonly duplicates: Counter<'source'>;
  private readonly skipped: Counter<'reason'>;
  /** Newest trade id recorded or seen recorded per symbol, in this process (rollback detection). */
  private readonly newest = new Map<string, bigint>();

  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
    registry: Registry,
  ) {
    const registers = [registry];
    this.fills = new Counter({ name: 'p33_venue_fills_total', help: 'Fills on the account recorded in the venue journal, by symbol and origin (ours|liquidation|adl|settlement|foreign)', labelNames: ['symbol', 'origin'], registers });
    this.duplicates = new Counter({ name: 'p33_venue_fills_duplicate_total', help: 'Fills already in the venue journal (stream and REST both saw them), by source', labelNames: ['source'], registers });
    this.skipped = new Counter({ name: 'p33_venue_fills_skipped_total', help: 'Fills not recorded (no trade id, time not mappable): the symbol is marked as having a gap for REST to close', labelNames: ['reason'], registers });
    for (const s of ['stream', 'rest']) this.duplicates.inc({ source: s }, 0);
  }

  /**
   * Records one fill once.
   * @returns true when written, false when already recorded
   * @throws on Redis errors (the caller marks a gap)
   */
  async record(f: FillToRecord): Promise<boolean> {
    if (!validTradeId(f.tradeId)) {
      this.skipped.inc({ reason: 'no_trade_id' });
      await this.markGap(f.symbol, 'no_trade_id');
      return false;
    }
    const origin = venueOriginOf(f.clientOrderId, f.orderType);
    const fields = venueFillFields({ ...f, origin });
    const reply = await venueFillRecord(this.redis, { symbol: f.symbol, tradeId: f.tradeId, clientOrderId: f.clientOrderId, localTsMs: f.localTsMs, retention: TRADE_ID_RETENTION, fields });
    this.noteSeen(f.symbol, f.tradeId);
    if (reply === null) {
      this.duplicates.inc({ source: f.source });
      return false;
    }
    this.fills.inc({ symbol: f.symbol, origin });
    const line = `${f.symbol}: venue fill ${origin} ${f.side} ${fields.last_qty} trade ${f.tradeId} order ${f.orderId} (${f.source})`;
    if (origin === 'ours') this.logger.debug({ symbol: f.symbol, origin, trade_id: f.tradeId, order_id: f.orderId, client_order_id: f.clientOrderId, source: f.source }, line);
    else this.logger.warn({ symbol: f.symbol, origin, trade_id: f.tradeId, order_id: f.orderId, client_order_id: f.clientOrderId, source: f.source }, line);
    return true;
  }

  /** Counts a fill that could not be recorded and marks the symbol's gap. Never throws. */
  async skip(symbol: string, reason: GapReason): Promise<void> {
    this.skipped.inc({ reason });
    this.logger.warn({ symbol, reason }, `${symbol}: a fill on the stream could not be journaled (${reason}); REST verifies`);
    await this.markGap(symbol, reason);
  }

  /** Marks a possible gap in `symbol`'s journal now (the oldest open gap is kept). Never throws. */
  async markGap(symbol: string, reason: GapReason, nowMs = Date.now()): Promise<void> {
    const k = keys.venueCursor(symbol);
    await this.redis.multi().hsetnx(k, 'gap_since_ms', String(nowMs)).hsetnx(k, 'gap_reason', reason).exec().catch((err: Error) => this.logger.warn({ symbol, err: err.message }, 'venue journal: gap mark failed'));
  }

  /**
   * Clears `symbol`'s gap when it was set at or before `verifyStartMs` (the start of the verification that
   * just closed it) and notes the verification time.
   * @returns true when no gap is left
   */
  async clearGap(symbol: string, verifyStartMs: number, verifiedTradeId: string | null, nowMs = Date.now()): Promise<boolean> {
    return venueGapClear(this.redis, { symbol, verifyStartMs, nowMs, verifiedTradeId });
  }

  /** The symbol's cursor as stored. */
  async cursor(symbol: string): Promise<{ lastTradeId: string | null; verifiedTradeId: string | null; gapSinceMs: number | null; gapReason: string; lastLocalMs: number | null }> {
    const h = await this.redis.hgetall(keys.venueCursor(symbol));
    const n = (s: string | undefined) => (s !== undefined && /^\d+$/.test(s) ? Number(s) : null);
    const id = (s: string | undefined) => (s && /^\d+$/.test(s) ? s : null);
    return { lastTradeId: id(h.last_trade_id), verifiedTradeId: id(h.verified_trade_id), gapSinceMs: n(h.gap_since_ms), gapReason: h.gap_reason ?? '', lastLocalMs: n(h.last_local_ms) };
  }

  /** The newest trade id this process recorded or saw recorded for `symbol` (null: none). */
  newestSeen(symbol: string): bigint | null {
    return this.newest.get(symbol) ?? null;
  }

  private noteSeen(symbol: string, tradeId: string): void {
    const id = BigInt(tradeId);
    const cur = this.newest.get(symbol);
    if (cur === undefined || id > cur) this.newest.set(symbol, id);
  }

  /** Forgets what this process saw for `symbol` (after a rollback was handled). */
  forget(symbol: string): void {
    this.newest.delete(symbol);
  }
}
