/**
 * The venue journal's REST verifier (docs/architecture.md#venue-journal): closes what the user data stream may
 * have missed — after the brain starts, after the socket closed or the listen key expired, after Redis lost
 * writes (the journal's cursor fell behind what this process recorded), and every `intervalMs` anyway (a
 * lost or dropped message) — by reading `GET /fapi/v1/userTrades` from the last trade id recorded.
 *
 * Guarantees:
 * - Bounded: at most {@link MAX_PAGES} pages of {@link USER_TRADES_MAX_LIMIT} trades per symbol per
 *   verification (weight 5 each), plus one order lookup (weight 1) per order not yet known; one symbol at a
 *   time; nothing while the shared exchange back-off stands (the gateway throws).
 * - A gap is cleared only after every page up to the newest trade was recorded; on any failure it stays and
 *   the reconcile engine holds the symbol once it is older than `P34_VENUE_GAP_MAX_MS`.
 * - A cursor older than the exchange keeps the record ({@link RECORD_HORIZON_MS}, Binance: trades of the last 6
 *   months) cannot be verified: the gap is marked `unverifiable` and never cleared automatically.
 * - A trade is recorded only with its order's client order id and type (from the stream, or `GET
 *   /fapi/v1/order` by order id), so its origin is the exchange's word, never a guess.
 */
import type { Logger } from 'pino';
import type { ExchangeGateway, VenueTrade } from '../../../ports/exchange.js';
import { USER_TRADES_MAX_LIMIT } from '../../../adapters/exchange/venue-records.js';
import type { GapReason, VenueJournal } from './journal.js';

/** Pages read per symbol per verification. */
export const MAX_PAGES = 10;
/** How far back the exchange keeps the trade record, ms (Binance userTrades: the past 6 months). */
export const RECORD_HORIZON_MS = 180 * 24 * 3600 * 1000;
/** Period of the Redis rollback check (one HGETALL per symbol), ms. */
export const ROLLBACK_CHECK_MS = 250;
/** Orders remembered (order id → client order id, type). */
const ORDER_CACHE_MAX = 10_000;

/** Options of the verifier. */
export interface VenueVerifierOptions {
  symbols: string[];
  /** Periodic verification, ms (`P33_VENUE_VERIFY_INTERVAL_MS`). */
  intervalMs: number;
  /** Maps an exchange time to the local clock (null: no trusted offset; the trade cannot be journaled). */
  mapToLocal: (exchangeMs: number) => number | null;
}

/** See the module comment. */
export class VenueVerifier {
  private readonly orders = new Map<string, { clientOrderId: string; type: string; reduceOnly: boolean }>();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private stopped = true;

  constructor(
    private readonly journal: VenueJournal,
    private readonly gateway: ExchangeGateway,
    private readonly logger: Logger,
    private readonly o: VenueVerifierOptions,
  ) {}

  /** Whether the gateway can read the trade record at all. */
  get supported(): boolean {
    return typeof this.gateway.fetchTrades === 'function' && typeof this.gateway.fetchOrderById === 'function';
  }

  /** Marks every symbol's gap (`restart`) and starts verifying. */
  async start(): Promise<void> {
    this.stopped = false;
    for (const s of this.o.symbols) await this.journal.markGap(s, this.supported ? 'restart' : 'unverifiable');
    if (!this.supported) {
      this.logger.error({}, 'venue journal: the exchange gateway cannot read the trade record (userTrades); gaps stay open and the engine holds');
      return;
    }
    this.timer = setInterval(() => void this.checkRollback().then(() => undefined), ROLLBACK_CHECK_MS);
    this.timer.unref();
    let last = Date.now();
    const periodic = setInterval(() => {
      if (Date.now() - last >= this.o.intervalMs) {
        last = Date.now();
        this.verifySoon();
      }
    }, Math.min(this.o.intervalMs, 1000));
    periodic.unref();
    this.periodic = periodic;
    this.verifySoon();
  }

  private periodic: NodeJS.Timeout | null = null;

  /** Stops the timers (a verification in hand finishes). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    if (this.periodic) clearInterval(this.periodic);
    await this.running?.catch(() => undefined);
  }

  /** Remembers an order's identity seen on the stream (saves its REST lookup). */
  noteOrder(orderId: string, clientOrderId: string, type: string, reduceOnly: boolean): void {
    if (this.orders.size >= ORDER_CACHE_MAX) this.orders.delete(this.orders.keys().next().value as string);
    this.orders.set(orderId, { clientOrderId, type, reduceOnly });
  }

  /** Marks a gap on every symbol now and verifies as soon as possible (socket closed, key expired, ...). */
  async gap(reason: GapReason): Promise<void> {
    for (const s of this.o.symbols) await this.journal.markGap(s, reason);
  }

  /** Starts a verification of every symbol (coalesced: one runs at a time, one more queued). */
  verifySoon(): void {
    if (this.stopped || !this.supported) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        for (const s of this.o.symbols) {
          if (this.stopped) return;
          await this.verifySymbol(s).catch((err: Error) => this.logger.warn({ symbol: s, err: err.message }, `venue journal: REST verification of ${s} failed; the gap stays open`));
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = null;
    });
  }

  /** Redis lost writes when its cursor is behind what this process recorded: gap + verify. */
  private async checkRollback(): Promise<void> {
    let found = false;
    for (const s of this.o.symbols) {
      const seen = this.journal.newestSeen(s);
      if (seen === null) continue;
      const c = await this.journal.cursor(s).catch(() => null);
      if (!c) return;
      if (c.lastTradeId === null || BigInt(c.lastTradeId) < seen) {
        this.logger.warn({ symbol: s, cursor: c.lastTradeId, seen: seen.toString() }, `venue journal: ${s}'s cursor is behind the fills this process recorded (Redis lost writes); REST re-reads them`);
        await this.journal.markGap(s, 'redis_rollback');
        this.journal.forget(s);
        found = true;
      }
    }
    if (found) this.verifySoon();
  }

  /**
   * Reads `symbol`'s trades from the cursor on and records them; clears the gap when done.
   * @throws on exchange or Redis errors (the gap stays)
   */
  async verifySymbol(symbol: string): Promise<void> {
    const startMs = Date.now();
    const c = await this.journal.cursor(symbol);
    if (c.gapReason === 'unverifiable') return;
    if (c.verifiedTradeId !== null && c.lastLocalMs !== null && startMs - c.lastLocalMs > RECORD_HORIZON_MS) {
      await this.journal.markGap(symbol, 'unverifiable');
      return;
    }
    // from the last trade REST confirmed (the stream may have recorded newer ones around a missed one)
    let fromId: string | null = c.verifiedTradeId === null ? null : (BigInt(c.verifiedTradeId) + 1n).toString();
    let newest: string | null = null;
    let complete = false;
    for (let page = 0; page < MAX_PAGES; page++) {
      const trades = await this.gateway.fetchTrades!(symbol, fromId, USER_TRADES_MAX_LIMIT);
      for (const t of trades.sort((a, b) => (BigInt(a.id) < BigInt(b.id) ? -1 : 1))) {
        await this.recordTrade(t);
        newest = t.id;
      }
      // without a cursor the newest page is the baseline: older trades predate anything the ledger awaits
      if (trades.length < USER_TRADES_MAX_LIMIT || fromId === null) {
        complete = true;
        break;
      }
      fromId = (BigInt(trades[trades.length - 1]!.id) + 1n).toString();
    }
    if (!complete) throw new Error(`more than ${MAX_PAGES * USER_TRADES_MAX_LIMIT} trades since the cursor; continuing next time`);
    await this.journal.clearGap(symbol, startMs, newest);
  }

  private async recordTrade(t: VenueTrade): Promise<void> {
    let order = this.orders.get(t.orderId);
    if (!order) {
      const info = await this.gateway.fetchOrderById!(t.symbol, t.orderId);
      if (!info) throw new Error(`order ${t.orderId} of trade ${t.id} unknown to the exchange`);
      order = { clientOrderId: info.clientOrderId, type: info.type ?? '', reduceOnly: info.reduceOnly };
      this.noteOrder(t.orderId, order.clientOrderId, order.type, order.reduceOnly);
    }
    const local = this.o.mapToLocal(t.timeMs);
    if (local === null) throw new Error('no trusted clock offset: trades cannot be journaled yet');
    await this.journal.record({
      symbol: t.symbol,
      orderId: t.orderId,
      clientOrderId: order.clientOrderId,
      tradeId: t.id,
      side: t.side,
      lastQty: t.qty,
      cumQty: null,
      price: t.price,
      realizedPnl: t.realizedPnl,
      commission: t.commission,
      commissionAsset: t.commissionAsset,
      reduceOnly: order.reduceOnly,
      orderType: order.type,
      eventTimeMs: t.timeMs,
      tradeTimeMs: t.timeMs,
      localTsMs: local,
      source: 'rest',
    });
  }
}
