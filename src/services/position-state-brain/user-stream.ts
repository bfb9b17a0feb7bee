/**
 * The position brain's user data stream component (docs/architecture.md#user-data-stream): exchange-pushed positions
 * become snapshots within milliseconds; the REST poll (snapshot.ts) stays the verifier.
 *
 * - Every `ACCOUNT_UPDATE` position leg of a `P3_ALLOWLIST` symbol with `ps = BOTH` replaces the symbol's
 *   snapshot through the same atomic script as REST (`snapshotWrite-2.lua`: never back in time, whichever
 *   source), with `source=stream` and `ts_ms` = the event's transaction time `T` mapped to the local clock
 *   through the measured offset (client.ts: never later than the truth, never later than receipt). A
 *   one-way close arrives as `ps=BOTH, pa=0` and is written as FLAT: that IS the exchange saying flat.
 *   `mark_price` (not in the push) is the last REST answer's when recent ({@link MARK_MAX_AGE_FACTOR}), else absent.
 * - REST keeps verifying every symbol: every `P33_REST_VERIFY_INTERVAL_MS` while the stream is healthy,
 *   every `P33_SNAPSHOT_INTERVAL_MS` while it is not. A REST answer whose request was sent before the
 *   stream received a different amount is not written for that symbol (it may predate the push: the
 *   exchange read the position at some instant after the request was sent, unknown to us).
 * - After a fill of OUR order (`ORDER_TRADE_UPDATE` x=TRADE whose client order id is in the apply layer's
 *   in-flight hash; a manual trade's is not), a REST poll is started as soon as the apply layer recorded the fill
 *   (and `P33_SNAPSHOT_INTERVAL_MS` after the previous poll allows: REST never polls faster than with the stream off): the stream
 *   snapshot is timed at the exchange's fill, which precedes the apply layer's `last_fill_ms`, and the
 *   reconcile engine never acts on a snapshot that is not newer than the newest fill.
 *
 * Healthy = socket open on a valid listen key, clock offset measured, a successful REST poll SENT after
 * the socket opened (the baseline: whatever happened while no socket was open is covered by it), and no
 * problem within the last {@link DEGRADED_HOLD_MS}. Problems (fail closed — none makes a position look
 * fresh or flat, each one only takes health away and, where it helps, drops the socket):
 * - socket closed, no pong, listen key expired (`listenKeyExpired`, keepalive -1125): reconnect (client.ts);
 * - an unparseable frame (`parse_error`): nothing written, socket recycled;
 * - a leg with `ps` LONG/SHORT (`position_mode`, hedge mode is not served): nothing written for it;
 * - a missed event (`missed_event`): REST shows an amount the stream never announced, still so
 *   {@link MISMATCH_GRACE_MS} later with no newer stream event — the stream is silent or lossy: recycled.
 * Without a measured clock offset an event is not written (its time could not be trusted).
 *
 * Metrics: `p33_user_stream_connected` (1 socket open), `p33_user_stream_healthy`,
 * `p33_user_stream_events_total{type}` (ACCOUNT_UPDATE, ORDER_TRADE_UPDATE, listenKeyExpired, other,
 * parse_error, position_mode), `p33_user_stream_reconnects_total`, `p33_user_stream_snapshots_total{result}`
 * (written|older|unmapped). State for `p3 status` / `p3 doctor`: hash `quantum:p33:user_stream:<instance>`
 * (TTL 15 s, see {@link publishState}).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Gauge, type Registry } from 'prom-client';
import { keys } from '../../adapters/redis/keys.js';
import { UserStreamClient, type EventMeta, type UserStreamClientOptions, type UserStreamConnState } from '../../adapters/exchange/user-stream/client.js';
import type { StreamPosition, UserStreamEvent } from '../../adapters/exchange/user-stream/events.js';
import { Decimal } from '../../domain/decimal.js';
import { snapshotFields, writeSnapshot, type PollResult, type SnapshotPublisher } from './snapshot.js';
import type { SnapshotConfig } from './config.js';
import type { VenueStreamListener } from './venue-journal/index.js';

/** How long a stream problem keeps the stream unhealthy (REST at the fast period), ms. */
export const DEGRADED_HOLD_MS = 30_000;
/** How long a REST/stream disagreement may last before it counts as a missed event, ms. */
export const MISMATCH_GRACE_MS = 750;
/**
 * A push carries no mark price: the stream snapshot takes the one of the last REST answer, only if that request
 * was sent within this many REST verify periods (else `mark_price` is left out: whoever needs it waits for REST).
 */
const MARK_MAX_AGE_FACTOR = 2;
/** Max wait for the apply layer to record a fill before the confirming REST poll starts anyway, ms. */
const CONFIRM_MAX_WAIT_MS = 2000;
/** TTL of the state hash, ms. */
export const STREAM_STATE_TTL_MS = 15_000;
/** Event types counted in `p33_user_stream_events_total{type}`. */
export const STREAM_EVENT_TYPES = ['ACCOUNT_UPDATE', 'ORDER_TRADE_UPDATE', 'listenKeyExpired', 'other', 'parse_error', 'position_mode'] as const;

/** Redis key of an instance's stream state. */
export const userStreamStateKey = (instance: string): string => keys.p33UserStream(instance);

/** What the component needs from the brain service. */
export interface UserStreamContext {
  redis: Redis;
  logger: Logger;
  registry: Registry;
  instanceId: string;
}

/** The stream's state as published (`p3 status`, `p3 doctor`). */
export interface UserStreamState {
  /** `healthy` | `degraded` (open, not yet trusted) | `connecting` | `disconnected` | `off`. */
  state: 'healthy' | 'degraded' | 'connecting' | 'disconnected' | 'off';
  reason: string;
  connectedSinceMs: number;
  lastEventMs: number;
  reconnects: number;
  restIntervalMs: number;
  clockOffsetMs: number | null;
}

interface Known {
  amount: Decimal;
  /** Local time the amount is known for (stream: mapped T; REST: request sent). */
  atMs: number;
  via: 'stream' | 'rest';
  /** Local receive time (stream) or request time (REST), epoch ms. */
  recvMs: number;
}

/** See the module comment. A brain component: `start()` / `stop()` / `readiness()`. */
export class UserStreamSnapshots {
  private readonly client: UserStreamClient;
  private readonly connected: Gauge;
  private readonly events: Counter<'type'>;
  private readonly snapshots: Counter<'result'>;
  private readonly allow: Set<string>;
  private readonly known = new Map<string, Known>();
  private baselineOk = false;
  private degradedUntilMs = 0;
  private reason = 'starting';
  private lastEventMs = 0;
  private stateTimer: NodeJS.Timeout | null = null;
  private lastHealthy = false;
  private stopped = false;
  private venue: VenueStreamListener | null = null;

  constructor(
    private readonly ctx: UserStreamContext,
    private readonly publisher: SnapshotPublisher,
    private readonly config: SnapshotConfig,
    clientOpts: Omit<UserStreamClientOptions, 'logger'>,
  ) {
    this.allow = new Set(config.allowlist);
    const registers = [ctx.registry];
    this.connected = new Gauge({ name: 'p33_user_stream_connected', help: 'User data stream socket open on a valid listen key (1) or not (0)', registers });
    this.events = new Counter({ name: 'p33_user_stream_events_total', help: 'User data stream messages by type (parse_error: unparseable; position_mode: a hedge-mode leg, not served)', labelNames: ['type'], registers });
    this.snapshots = new Counter({ name: 'p33_user_stream_snapshots_total', help: 'Snapshots from the user data stream by result (written|older: a newer one was stored|unmapped: no clock offset yet)', labelNames: ['result'], registers });
    const reconnects = () => this.client.reconnects;
    new Counter({
      name: 'p33_user_stream_reconnects_total',
      help: 'User data stream sockets opened again after the first one',
      registers,
      collect() {
        this.reset();
        this.inc(reconnects());
      },
    });
    const healthy = () => (this.healthy() ? 1 : 0);
    new Gauge({
      name: 'p33_user_stream_healthy',
      help: 'User data stream trusted (1: REST verifies at P33_REST_VERIFY_INTERVAL_MS) or not (0: REST at P33_SNAPSHOT_INTERVAL_MS)',
      registers,
      collect() {
        this.set(healthy());
      },
    });
    for (const t of STREAM_EVENT_TYPES) this.events.inc({ type: t }, 0);
    for (const r of ['written', 'older', 'unmapped']) this.snapshots.inc({ result: r }, 0);
    this.connected.set(0);
    this.client = new UserStreamClient({ ...clientOpts, logger: ctx.logger }, {
      onEvent: (ev, meta) => void this.onEvent(ev, meta).catch((err: Error) => ctx.logger.warn({ err: err.message }, 'user data stream: event handling failed')),
      onParseError: (error) => this.problem('parse_error', error, true),
      onState: (s, why) => this.onConnState(s, why),
    });
    publisher.setIntervalProvider(() => (this.healthy() ? config.userStream.restVerifyIntervalMs : config.intervalMs));
    publisher.onPoll((r) => this.onPoll(r));
    publisher.setWriteFilter((sym, amount, sentMs) => !this.ambiguous(sym, amount, sentMs));
  }

  /** Whether the stream is trusted right now (see the module comment). */
  healthy(now = Date.now()): boolean {
    return this.client.connState === 'open' && this.client.clockOffsetMs !== null && this.baselineOk && now >= this.degradedUntilMs;
  }

  /** The state as published. */
  state(now = Date.now()): UserStreamState {
    const cs: UserStreamConnState = this.client.connState;
    const state: UserStreamState['state'] = this.healthy(now) ? 'healthy' : cs === 'open' ? 'degraded' : cs === 'connecting' ? 'connecting' : 'disconnected';
    const reason = state === 'healthy' ? 'ok' : cs === 'open' && !this.baselineOk ? 'waiting for a REST baseline' : this.reason;
    return { state, reason, connectedSinceMs: this.client.openedAt, lastEventMs: this.lastEventMs, reconnects: this.client.reconnects, restIntervalMs: this.healthy(now) ? this.config.userStream.restVerifyIntervalMs : this.config.intervalMs, clockOffsetMs: this.client.clockOffsetMs };
  }

  /** Connects and starts publishing the state. */
  async start(): Promise<void> {
    this.client.start();
    this.stateTimer = setInterval(() => {
      void this.publishState();
      // a degraded period ending makes the stream healthy again: nothing else would notice
      const h = this.healthy();
      if (h !== this.lastHealthy) this.onHealthChange(h);
    }, 1000);
    this.ctx.logger.info({ rest_verify_interval_ms: this.config.userStream.restVerifyIntervalMs }, 'P3.3 user data stream started');
  }

  /** Closes the socket (the listen key is left to expire) and deletes the state hash. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.stateTimer) clearInterval(this.stateTimer);
    await this.client.stop();
    await this.ctx.redis.del(userStreamStateKey(this.ctx.instanceId)).catch(() => undefined);
  }

  /** `p33_user_stream`: always true (a broken stream is served by REST; `p3 doctor` reports it). */
  readiness(): Record<string, boolean> {
    return {};
  }

  /** Writes the state hash with its TTL in one MULTI (best effort). */
  async publishState(): Promise<void> {
    if (this.stopped) return;
    const s = this.state();
    const key = userStreamStateKey(this.ctx.instanceId);
    await this.ctx.redis
      .multi()
      .del(key)
      .hset(key, { state: s.state, reason: s.reason, connected_since_ms: String(s.connectedSinceMs), last_event_ms: String(s.lastEventMs), reconnects: String(s.reconnects), rest_interval_ms: String(s.restIntervalMs), clock_offset_ms: s.clockOffsetMs === null ? '' : String(s.clockOffsetMs), instance: this.ctx.instanceId, ts_ms: String(Date.now()) })
      .pexpire(key, STREAM_STATE_TTL_MS)
      .exec()
      .catch(() => undefined);
  }

  private onHealthChange(h: boolean): void {
    this.lastHealthy = h;
    const s = this.state();
    this.ctx.logger.info({ state: s.state, reason: s.reason, rest_interval_ms: s.restIntervalMs }, `P3.3 user data stream ${s.state}${h ? '' : ` (${s.reason}): REST every ${s.restIntervalMs} ms`}`);
    if (!h) this.publisher.pollSoon(); // REST takes over at once
    void this.publishState();
  }

  private checkHealth(): void {
    const h = this.healthy();
    if (h !== this.lastHealthy) this.onHealthChange(h);
  }

  /** Attaches the venue journal (venue-journal/index.ts): it sees every event and connection change. */
  attachVenue(listener: VenueStreamListener): void {
    this.venue = listener;
  }

  /** Maps an exchange time to the local clock through the measured offset; null while untrusted. */
  mapToLocal(exchangeMs: number, nowMs = Date.now()): number | null {
    return this.client.mapToLocal(exchangeMs, nowMs);
  }

  private onConnState(s: UserStreamConnState, why: string): void {
    this.venue?.onConnState(s, why);
    this.connected.set(s === 'open' ? 1 : 0);
    if (s !== 'open') {
      this.baselineOk = false;
      if (s === 'closed') this.reason = why;
    } else {
      this.publisher.pollSoon(); // the baseline: a REST poll sent after the socket opened
    }
    this.checkHealth();
  }

  /** A stream problem: unhealthy for {@link DEGRADED_HOLD_MS}, socket recycled when `recycle`. */
  private problem(type: 'parse_error' | 'position_mode' | 'missed_event', detail: string, recycle: boolean): void {
    if (type !== 'missed_event') this.events.inc({ type });
    this.degradedUntilMs = Date.now() + DEGRADED_HOLD_MS;
    this.reason = `${type}: ${detail}`.slice(0, 300);
    this.ctx.logger.warn({ type, detail }, `P3.3 user data stream problem (${type}): REST takes over; nothing written from it`);
    if (recycle) this.client.recycle(type);
    this.checkHealth();
  }

  private async onEvent(ev: UserStreamEvent, meta: EventMeta): Promise<void> {
    this.events.inc({ type: ev.type });
    this.lastEventMs = meta.recvMs;
    this.venue?.onEvent(ev, meta);
    if (ev.type === 'listenKeyExpired') {
      this.reason = 'listenKeyExpired';
      this.ctx.logger.warn({}, 'P3.3 user data stream: listen key expired; renewing');
      return;
    }
    if (ev.type === 'ORDER_TRADE_UPDATE') {
      const o = ev.order;
      if (this.allow.has(o.symbol) && o.execType === 'TRADE' && o.lastQty.gt(0)) void this.confirmAfterRecord(o.symbol, o.clientOrderId);
      return;
    }
    if (ev.type !== 'ACCOUNT_UPDATE') return;
    for (const p of ev.positions) {
      if (!this.allow.has(p.symbol)) continue;
      if (p.positionSide !== 'BOTH') {
        this.problem('position_mode', `${p.symbol} leg ps=${p.positionSide}: hedge mode is not served`, false);
        continue;
      }
      await this.write(p, meta);
    }
  }

  private async write(p: StreamPosition, meta: EventMeta): Promise<void> {
    const sym = p.symbol;
    if (meta.localTimeMs === null) {
      this.snapshots.inc({ result: 'unmapped' });
      return;
    }
    const rules = this.publisher.knownRules(sym);
    const quote = this.publisher.lastQuote(sym, MARK_MAX_AGE_FACTOR * this.config.userStream.restVerifyIntervalMs);
    const fields = snapshotFields({
      amount: p.amount,
      entryPrice: p.entryPrice,
      markPrice: quote?.mark ?? null,
      markTsMs: quote?.atMs ?? null,
      indexPrice: quote?.index ?? null,
      stepSize: rules?.step ?? null,
      minQty: rules?.minQty ?? null,
      minNotional: rules?.minNotional ?? null,
      sentMs: meta.localTimeMs,
      receivedMs: meta.recvMs,
      source: 'stream',
    });
    const written = await writeSnapshot(this.ctx.redis, sym, meta.localTimeMs, fields);
    this.snapshots.inc({ result: written ? 'written' : 'older' });
    const k = this.known.get(sym);
    if (!k || k.atMs <= meta.localTimeMs) this.known.set(sym, { amount: p.amount, atMs: meta.localTimeMs, via: 'stream', recvMs: meta.recvMs });
    if (written) this.ctx.logger.debug({ symbol: sym, ...fields }, `${sym}: snapshot ${fields.side} ${fields.position_amt} (stream)`);
  }

  /**
   * A REST answer is ambiguous against the stream when the stream received a DIFFERENT amount after the
   * request was sent: the exchange may have read the position before that change (the mapped event time is
   * only a lower bound), so the answer is neither written over the push nor counted as a missed event.
   */
  private ambiguous(sym: string, restAmount: Decimal, sentMs: number): boolean {
    const k = this.known.get(sym);
    return k !== undefined && k.via === 'stream' && k.recvMs >= sentMs && !k.amount.eq(restAmount);
  }

  /** Starts a REST poll once the apply layer recorded our fill (its in-flight entry is gone). */
  private async confirmAfterRecord(symbol: string, clientOrderId: string): Promise<void> {
    const deadline = Date.now() + CONFIRM_MAX_WAIT_MS;
    const inflight = () => this.ctx.redis.hexists(keys.applyInflight(symbol), clientOrderId);
    try {
      // not ours (a manual trade): the stream snapshot is all the engine needs
      if ((await inflight()) !== 1) return;
      while (Date.now() < deadline && (await inflight()) === 1) await new Promise((r) => setTimeout(r, 5));
    } catch {
      // Redis trouble: poll anyway
    }
    this.publisher.pollSoon();
  }

  /** REST verification: baseline after (re)connect, and missed-event detection. */
  private onPoll(r: PollResult): void {
    if (!r.ok) return;
    const openedAt = this.client.openedAt;
    if (this.client.connState === 'open' && openedAt > 0 && r.sentMs >= openedAt && !this.baselineOk) {
      this.baselineOk = true;
    }
    for (const sym of this.config.allowlist) {
      const rest = r.positions.get(sym)?.amount ?? new Decimal(0);
      const k = this.known.get(sym);
      if (k && k.atMs > r.sentMs) continue; // the stream knows something newer
      if (this.ambiguous(sym, rest, r.sentMs)) continue; // the answer may predate the push
      const streamWatching = this.client.connState === 'open' && openedAt > 0 && openedAt <= (k?.atMs ?? 0);
      if (k && !k.amount.eq(rest) && streamWatching && this.baselineOk) {
        const seen = k;
        setTimeout(() => {
          const now = this.known.get(sym);
          if (now === seen) this.problem('missed_event', `${sym}: REST says ${rest.toString()} since before ${r.sentMs}, the stream last said ${seen.amount.toString()}`, true);
        }, MISMATCH_GRACE_MS).unref();
        continue;
      }
      this.known.set(sym, { amount: rest, atMs: r.sentMs, via: 'rest', recvMs: r.sentMs });
    }
    this.checkHealth();
  }
}
