/**
 * A Binance USDⓈ-M user data stream client on the `ws` package (docs/architecture.md#user-data-stream).
 *
 * Why not ccxt's `watchPositions` / `watchOrders` (ccxt 4.5.82, node_modules/ccxt/js/src/pro/binance.js):
 * - `listenKeyExpired` is not handled at all (no occurrence in the file): after an expiry the socket stays
 *   open and silent, and ccxt keeps returning its cached positions — a stale position that looks live;
 * - positions are parsed with `parseNumber`/`safeNumber` (IEEE floats), not exact decimals;
 * - a one-way close (`ps: "BOTH"`, `pa: "0"`) becomes `side: "both"`, `contracts: 0`, indistinguishable from
 *   "no information" for a caller that filters on side;
 * - the event time `E` is used as the position timestamp, the transaction time `T` and the local receive
 *   time are not exposed, so no clock mapping is possible, and there is no hook for connection state;
 * - the WebSocket URL of a non-Binance host (the paper exchange) can only be set by patching `urls`.
 * So this client speaks the protocol directly, as Binance documents it ("User Data Streams › Connect",
 * developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Connect):
 * 1. `POST /fapi/v1/listenKey` (header `X-MBX-APIKEY`) → `{listenKey}` (the account's active key if any);
 * 2. connect `<wsBase>/ws/<listenKey>`; the `ws` package answers the server's pings; the client also pings
 *    every `pingIntervalMs` and terminates a socket whose pong does not come within `pongTimeoutMs`;
 * 3. `PUT /fapi/v1/listenKey` every `keepaliveMs` (Binance: valid 60 min, keep alive e.g. every 30 min);
 *    a `-1125` answer ("This listenKey does not exist.") or a `listenKeyExpired` event → a new key and socket;
 * 4. any close or error → reconnect with exponential back-off (`backoffInitialMs` doubling to `backoffMaxMs`,
 *    reset once a socket has been open for 30 s).
 * Every REST request first passes `beforeRequest` (the brain gives the shared exchange back-off of
 * src/adapters/exchange/backoff.ts: nothing is sent while a 429/418 back-off stands) and every error answer
 * goes to `onHttpError` (which raises that back-off). The key is never DELETEd on stop: Binance gives every client of the account the SAME key, so another
 * instance (a second brain) may still be using it; it expires by itself 60 minutes after the last PUT.
 *
 * Clock: exchange times (`E`, `T`) are mapped to the local clock only through a measured offset.
 * `GET /fapi/v1/time` is sent at local `t0` and answered at `t1` with `serverTime`; the server stamped it
 * between t0 and t1, so `local − exchange ∈ [t0 − serverTime, t1 − serverTime]`; of several samples the
 * largest lower bound is kept (the fastest round trip bounds it best). The LOWER bound is used
 * (a mapped time is never later than the true one: a snapshot never looks newer than it is) and the result
 * is capped at the local receive time. Re-measured every `timeSyncMs` (at connect and on a timer while
 * open); before the first measurement, or when the last one is older than 3 periods, `mapToLocal` returns
 * null (the caller must not use the event's time).
 */
import { WebSocket } from 'ws';
import type { Logger } from 'pino';
import { parseUserStreamMessage, type UserStreamEvent } from './events.js';

/** Requests per clock offset measurement. */
export const CLOCK_SAMPLES = 5;

/** Options of {@link UserStreamClient}. */
export interface UserStreamClientOptions {
  /** REST base URL, e.g. `https://fapi.binance.com` or the paper exchange `http://127.0.0.1:PORT`. */
  restBaseUrl: string;
  /** WebSocket base URL, e.g. `wss://fstream.binance.com` or `ws://127.0.0.1:PORT`. */
  wsBaseUrl: string;
  apiKey: string;
  logger: Logger;
  /** Listen key keepalive (PUT) period, ms (default 30 min). */
  keepaliveMs?: number;
  /** Client ping period, ms (default 10 s). */
  pingIntervalMs?: number;
  /** Max wait for a pong, ms (default 10 s). */
  pongTimeoutMs?: number;
  /** First reconnect delay, ms (default 250). */
  backoffInitialMs?: number;
  /** Max reconnect delay, ms (default 30 s). */
  backoffMaxMs?: number;
  /** Clock offset re-measure period, ms (default 5 min). */
  timeSyncMs?: number;
  /** HTTP timeout of listen key and time requests, ms (default 10 s). */
  httpTimeoutMs?: number;
  /** Called before every REST request; throwing skips it (the shared exchange back-off: nothing is sent while it stands). */
  beforeRequest?: () => Promise<void>;
  /** Called with every non-2xx answer before it is thrown (feeds 429/418 into the shared back-off). */
  onHttpError?: (status: number, code: number | null, msg: string, retryAfterS: number | null) => Promise<void>;
}

/** Connection state. `open` = socket open on a valid listen key. */
export type UserStreamConnState = 'stopped' | 'connecting' | 'open' | 'closed';

/** What the client reports with each event. */
export interface EventMeta {
  /** Local receive time, epoch ms. */
  recvMs: number;
  /** The event's transaction time `T` (or `E`) mapped to the local clock, epoch ms; null when no offset is known yet. */
  localTimeMs: number | null;
}

/** Callbacks of {@link UserStreamClient}. */
export interface UserStreamHandlers {
  onEvent(ev: UserStreamEvent, meta: EventMeta): void;
  /** An unparseable frame (fail closed: the caller treats the stream as unreliable). */
  onParseError(error: string, recvMs: number): void;
  /** Connection state changes; `reason` says why (close code, error, `listenKeyExpired`, ...). */
  onState(state: UserStreamConnState, reason: string): void;
}

/** A listen key request failure. `code` = Binance code when the body had one. */
export class ListenKeyError extends Error {
  constructor(
    readonly status: number,
    readonly code: number | null,
    msg: string,
  ) {
    super(msg);
  }
}

/** See the module comment. */
export class UserStreamClient {
  private ws: WebSocket | null = null;
  private listenKey: string | null = null;
  private stopped = true;
  private state: UserStreamConnState = 'stopped';
  private offset: { lowMs: number; atMs: number } | null = null;
  private backoffMs: number;
  private openedAtMs = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private pingTimer: NodeJS.Timeout | null = null;
  private pongDeadline: NodeJS.Timeout | null = null;
  private syncTimer: NodeJS.Timeout | null = null;
  /** Sockets opened since start, minus the first: the reconnect count. */
  reconnects = 0;
  private connects = 0;
  private readonly o: Required<Omit<UserStreamClientOptions, 'logger' | 'beforeRequest' | 'onHttpError'>> & Pick<UserStreamClientOptions, 'logger' | 'beforeRequest' | 'onHttpError'>;

  constructor(
    opts: UserStreamClientOptions,
    private readonly handlers: UserStreamHandlers,
  ) {
    this.o = {
      keepaliveMs: 30 * 60_000,
      pingIntervalMs: 10_000,
      pongTimeoutMs: 10_000,
      backoffInitialMs: 250,
      backoffMaxMs: 30_000,
      timeSyncMs: 300_000,
      httpTimeoutMs: 10_000,
      ...opts,
      restBaseUrl: opts.restBaseUrl.replace(/\/+$/, ''),
      wsBaseUrl: opts.wsBaseUrl.replace(/\/+$/, ''),
    };
    this.backoffMs = this.o.backoffInitialMs;
  }

  /** Current connection state. */
  get connState(): UserStreamConnState {
    return this.state;
  }

  /** When the current socket opened (epoch ms, 0 when none). */
  get openedAt(): number {
    return this.state === 'open' ? this.openedAtMs : 0;
  }

  /**
   * Measured lower bound of `local − exchange` clock offset, ms; null before the first measurement and when
   * the last one is older than 3 × `timeSyncMs` (re-measuring keeps failing: the offset is no longer trusted).
   */
  get clockOffsetMs(): number | null {
    if (!this.offset || Date.now() - this.offset.atMs > 3 * this.o.timeSyncMs) return null;
    return this.offset.lowMs;
  }

  /** Maps an exchange time to the local clock (never later than `recvMs`); null without a trusted offset. */
  mapToLocal(exchangeMs: number, recvMs: number): number | null {
    const low = this.clockOffsetMs;
    if (low === null) return null;
    return Math.min(exchangeMs + low, recvMs);
  }

  /** Starts connecting (returns at once; progress through `onState`). */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    void this.connect();
  }

  /** Closes the socket and timers. The listen key is left to expire (see the module comment). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      await new Promise<void>((resolve) => {
        if (ws.readyState === ws.CLOSED) return resolve();
        ws.once('close', () => resolve());
        ws.terminate();
      });
    }
    this.setState('stopped', 'stop');
  }

  /** Drops the current socket and reconnects (used when the caller finds the stream unreliable). */
  recycle(reason: string): void {
    if (this.stopped) return;
    this.o.logger.warn({ reason }, `user data stream: reconnecting (${reason})`);
    this.ws?.terminate();
  }

  private setState(s: UserStreamConnState, reason: string): void {
    if (this.state === s && s !== 'closed') return;
    this.state = s;
    this.handlers.onState(s, reason);
  }

  private async http(method: 'GET' | 'POST' | 'PUT', path: string): Promise<unknown> {
    await this.o.beforeRequest?.();
    const res = await fetch(`${this.o.restBaseUrl}${path}`, { method, headers: { 'X-MBX-APIKEY': this.o.apiKey }, signal: AbortSignal.timeout(this.o.httpTimeoutMs) });
    const text = await res.text();
    let body: unknown = null;
    try {
      body = text === '' ? null : JSON.parse(text);
    } catch {
      // kept null: reported below
    }
    if (!res.ok) {
      const b = body as { code?: unknown; msg?: unknown } | null;
      const code = typeof b?.code === 'number' ? b.code : null;
      const msg = typeof b?.msg === 'string' ? b.msg : text.slice(0, 200);
      const ra = Number(res.headers.get('retry-after'));
      await this.o.onHttpError?.(res.status, code, msg, res.headers.has('retry-after') && Number.isFinite(ra) ? ra : null).catch(() => undefined);
      throw new ListenKeyError(res.status, code, `${method} ${path} → HTTP ${res.status}: ${msg}`);
    }
    return body;
  }

  /**
   * Measures the clock offset (see the module comment) with {@link CLOCK_SAMPLES} requests: every sample's
   * `t0 − serverTime` is a valid lower bound, so their MAXIMUM is the tightest one (the fastest round trip wins).
   * @throws on a failed or unparseable answer
   */
  async syncClock(): Promise<void> {
    let low = -Infinity;
    for (let i = 0; i < CLOCK_SAMPLES; i++) {
      const t0 = Date.now();
      const body = (await this.http('GET', '/fapi/v1/time')) as { serverTime?: unknown } | null;
      const server = Number(body?.serverTime);
      if (!Number.isFinite(server) || server <= 0) throw new Error(`unparseable server time ${JSON.stringify(body)}`);
      low = Math.max(low, t0 - server);
    }
    this.offset = { lowMs: low, atMs: Date.now() };
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    this.setState('connecting', 'connect');
    try {
      if (!this.offset || Date.now() - this.offset.atMs > this.o.timeSyncMs) await this.syncClock();
      const body = (await this.http('POST', '/fapi/v1/listenKey')) as { listenKey?: unknown } | null;
      if (typeof body?.listenKey !== 'string' || body.listenKey === '') throw new Error(`no listenKey in ${JSON.stringify(body)}`);
      this.listenKey = body.listenKey;
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, 'user data stream: listen key or clock request failed');
      this.scheduleReconnect(`listen key: ${(err as Error).message}`);
      return;
    }
    if (this.stopped) return;
    const ws = new WebSocket(`${this.o.wsBaseUrl}/ws/${encodeURIComponent(this.listenKey)}`, { handshakeTimeout: this.o.httpTimeoutMs });
    this.ws = ws;
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.openedAtMs = Date.now();
      if (this.connects++ > 0) this.reconnects++;
      this.startTimers(ws);
      this.setState('open', 'socket open');
    });
    ws.on('message', (data, isBinary) => {
      const recvMs = Date.now();
      if (this.ws !== ws) return;
      const text = isBinary ? '' : data.toString();
      const parsed = parseUserStreamMessage(text);
      if (!parsed.ok) {
        this.handlers.onParseError(parsed.error, recvMs);
        return;
      }
      const ev = parsed.event;
      const exTime = ev.type === 'ACCOUNT_UPDATE' || ev.type === 'ORDER_TRADE_UPDATE' ? ev.txTimeMs : ev.eventTimeMs;
      this.handlers.onEvent(ev, { recvMs, localTimeMs: exTime === null ? null : this.mapToLocal(exTime, recvMs) });
      if (ev.type === 'listenKeyExpired') {
        this.listenKey = null;
        this.backoffMs = this.o.backoffInitialMs; // renew at once
        ws.terminate();
      }
    });
    ws.on('pong', () => {
      if (this.pongDeadline) clearTimeout(this.pongDeadline);
      this.pongDeadline = null;
    });
    ws.on('error', (err) => this.o.logger.warn({ err: err.message }, 'user data stream: socket error'));
    ws.on('close', (code, reason) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.clearTimers();
      if (Date.now() - this.openedAtMs > 30_000 && this.openedAtMs > 0) this.backoffMs = this.o.backoffInitialMs;
      this.scheduleReconnect(`socket closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`);
    });
  }

  private scheduleReconnect(reason: string): void {
    this.setState('closed', reason);
    if (this.stopped) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.o.backoffMaxMs);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = setTimeout(() => void this.connect(), delay);
  }

  private startTimers(ws: WebSocket): void {
    this.clearTimers();
    this.pingTimer = setInterval(() => {
      if (ws.readyState !== ws.OPEN || this.pongDeadline) return;
      this.pongDeadline = setTimeout(() => {
        this.o.logger.warn({ timeout_ms: this.o.pongTimeoutMs }, 'user data stream: no pong, dropping the socket');
        ws.terminate();
      }, this.o.pongTimeoutMs);
      ws.ping();
    }, this.o.pingIntervalMs);
    this.syncTimer = setInterval(() => {
      this.syncClock().catch((err: Error) => this.o.logger.warn({ err: err.message }, 'user data stream: clock offset re-measure failed (the old one is trusted for 3 periods)'));
    }, this.o.timeSyncMs);
    this.keepaliveTimer = setInterval(() => {
      this.http('PUT', '/fapi/v1/listenKey').catch((err: Error) => {
        const expired = err instanceof ListenKeyError && err.code === -1125;
        this.o.logger.warn({ err: err.message }, `user data stream: keepalive failed${expired ? ' (key expired): renewing' : ''}`);
        if (expired) ws.terminate();
      });
    }, this.o.keepaliveMs);
  }

  private clearTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.keepaliveTimer) clearInterval(this.keepaliveTimer);
    if (this.syncTimer) clearInterval(this.syncTimer);
    if (this.pongDeadline) clearTimeout(this.pongDeadline);
    this.pingTimer = this.keepaliveTimer = this.pongDeadline = this.syncTimer = null;
  }
}
