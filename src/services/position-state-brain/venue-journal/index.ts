/**
 * The venue journal component of the position brain (docs/architecture.md#venue-journal): fills pushed on the
 * user data stream are journaled as they arrive (journal.ts), the REST verifier (verifier.ts) closes the gaps.
 * Started with the user data stream (`P33_USER_STREAM`, unless `P33_VENUE_JOURNAL=false`).
 */
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Registry } from 'prom-client';
import type { EventMeta, UserStreamConnState } from '../../../adapters/exchange/user-stream/client.js';
import type { StreamOrder, UserStreamEvent } from '../../../adapters/exchange/user-stream/events.js';
import type { ExchangeGateway } from '../../../ports/exchange.js';
import { VenueJournal } from './journal.js';
import { VenueVerifier } from './verifier.js';

/** What the user data stream component tells the journal. */
export interface VenueStreamListener {
  onEvent(ev: UserStreamEvent, meta: EventMeta): void;
  onConnState(s: UserStreamConnState, why: string): void;
}

/** Settings of the component. */
export interface VenueJournalOptions {
  symbols: string[];
  /** `P33_VENUE_VERIFY_INTERVAL_MS`. */
  verifyIntervalMs: number;
  /** Maps an exchange time to the local clock (the stream client's measured offset); null when untrusted. */
  mapToLocal: (exchangeMs: number) => number | null;
}

/** See the module comment. A brain component: `start()` / `stop()` / `readiness()`. */
export class VenueJournalComponent implements VenueStreamListener {
  readonly journal: VenueJournal;
  readonly verifier: VenueVerifier;
  private readonly allow: Set<string>;
  private wasOpen = false;

  constructor(ctx: { redis: Redis; logger: Logger; registry: Registry }, gateway: ExchangeGateway, private readonly o: VenueJournalOptions) {
    this.journal = new VenueJournal(ctx.redis, ctx.logger, ctx.registry);
    this.verifier = new VenueVerifier(this.journal, gateway, ctx.logger, { symbols: o.symbols, intervalMs: o.verifyIntervalMs, mapToLocal: o.mapToLocal });
    this.allow = new Set(o.symbols);
    this.logger = ctx.logger;
  }

  private readonly logger: Logger;

  async start(): Promise<void> {
    await this.verifier.start();
  }

  async stop(): Promise<void> {
    await this.verifier.stop();
  }

  readiness(): Record<string, boolean> {
    return {};
  }

  /** A stream event: TRADE executions of allowlisted symbols are journaled. Never throws. */
  onEvent(ev: UserStreamEvent, meta: EventMeta): void {
    if (ev.type === 'listenKeyExpired') {
      void this.verifier.gap('listen_key_expired');
      return;
    }
    if (ev.type !== 'ORDER_TRADE_UPDATE') return;
    const o = ev.order;
    if (!this.allow.has(o.symbol)) return;
    this.verifier.noteOrder(o.orderId, o.clientOrderId, o.orderType, o.reduceOnly);
    // TRADE: a fill; CALCULATED: Binance's liquidation / ADL execution (User Data Streams, "Event: Order Update")
    if ((o.execType !== 'TRADE' && o.execType !== 'CALCULATED') || !o.lastQty.gt(0)) return;
    void this.recordStreamTrade(o, ev.eventTimeMs, ev.txTimeMs, meta);
  }

  private async recordStreamTrade(o: StreamOrder, eventTimeMs: number, txTimeMs: number, meta: EventMeta): Promise<void> {
    try {
      if (meta.localTimeMs === null) return await this.journal.skip(o.symbol, 'unmapped_time');
      if (o.tradeId === '') return await this.journal.skip(o.symbol, 'no_trade_id');
      if (o.side !== 'BUY' && o.side !== 'SELL') return await this.journal.skip(o.symbol, 'no_trade_id');
      await this.journal.record({
        symbol: o.symbol,
        orderId: o.orderId,
        clientOrderId: o.clientOrderId,
        tradeId: o.tradeId,
        side: o.side,
        lastQty: o.lastQty,
        cumQty: o.filledQty,
        price: o.lastPrice,
        realizedPnl: o.realizedPnl,
        commission: o.commission,
        commissionAsset: o.commissionAsset,
        reduceOnly: o.reduceOnly,
        orderType: o.orderType,
        eventTimeMs,
        tradeTimeMs: o.tradeTimeMs ?? txTimeMs,
        localTsMs: meta.localTimeMs,
        source: 'stream',
      });
    } catch (err) {
      this.logger.warn({ symbol: o.symbol, trade_id: o.tradeId, err: (err as Error).message }, 'venue journal: stream fill not recorded; REST verifies');
      await this.journal.markGap(o.symbol, 'disconnect');
      this.verifier.verifySoon();
    }
  }

  /** Socket closed: gap from now; socket open again: verify (REST covers the time it was closed). */
  onConnState(s: UserStreamConnState, why: string): void {
    if (s === 'open') {
      this.wasOpen = true;
      this.verifier.verifySoon();
    } else if (this.wasOpen && s === 'closed') {
      this.wasOpen = false;
      void this.verifier.gap(/expired/i.test(why) ? 'listen_key_expired' : 'disconnect');
    }
  }
}
