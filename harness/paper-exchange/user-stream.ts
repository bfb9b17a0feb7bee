/**
 * The paper exchange's user data stream (docs/architecture.md#user-data-stream): listen keys and a
 * WebSocket that pushes the account's position and order changes as Binance USDⓈ-M futures does.
 *
 * Listen keys — Binance "User Data Streams › Connect"
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Connect) and
 * "Start / Keepalive / Close User Data Stream (USER_STREAM)":
 * - `POST /fapi/v1/listenKey` → `{listenKey}`; an account with an active key gets THAT key back, its
 *   validity extended to 60 minutes.
 * - `PUT /fapi/v1/listenKey` extends the active key by 60 minutes → `{listenKey}`; with no valid key:
 *   HTTP 400 `{code: -1125, msg: "This listenKey does not exist."}`.
 * - `DELETE /fapi/v1/listenKey` closes the stream (its sockets are closed) and invalidates the key → `{}`.
 * - USER_STREAM security: only `X-MBX-APIKEY` (-2014 / -2015 as for signed endpoints), weight 1.
 *
 * WebSocket at `/ws/<listenKey>`, `/private/ws/<listenKey>` and `/private/ws?listenKey=<key>`. The USDⓈ-M
 * "User Data Streams › Connect" page says "Base Url: wss://fstream.binance.com — User Data Streams are accessed
 * at /ws/<listenKey>" (our client, src/adapters/exchange/user-stream/client.ts, connects `<wsBase>/ws/<key>`
 * as that page says); Binance's `/private` route on the same host ("Base Url: wss://fstream.binance.com/private/
 * ... Example: wss://fstream.binance.com/private/ws/<listenKey>", the derivatives Options user data streams'
 * Connect page, https://developers.binance.com/legacy-docs/derivatives/options-trading/user-data-streams) is
 * served too, so a client whose `wsBaseUrl` ends in `/private` reaches it unchanged. An unknown or expired key
 * refuses the handshake with HTTP 400 -1125. "A single connection is only valid for 24 hours; expect to be
 * disconnected at the 24 hour mark" (both Connect pages): each socket is closed (code 1001 "going away") after
 * `maxConnectionMs` (default 24 h; tests shorten it); the listen key stays valid and a new connection works.
 * Events (JSON text frames, Binance's field names and types: times are numbers, decimals are strings):
 * - `ACCOUNT_UPDATE` — "Event: Balance and Position Update"
 *   (https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Balance-and-Position-Update):
 *   `{e, E, T, a: {m, B: [{a, wb, cw, bc}], P: [{s, pa, ep, bep, cr, up, mt, iw, ps}]}}`, only the positions
 *   that changed ("Only symbols of changed positions will be pushed"); in one-way mode the `BOTH` leg, so a
 *   close arrives as `ps: "BOTH", pa: "0"`. `m` is `ORDER` for a fill — every fill, the exchange's own
 *   liquidation / ADL / settlement orders included: the documented reason types (DEPOSIT, WITHDRAW, ORDER,
 *   FUNDING_FEE, WITHDRAW_REJECT, ADJUSTMENT, INSURANCE_CLEAR, ...) have no liquidation or ADL reason — and
 *   `ADJUSTMENT` for an admin position set. `wb`/`cw` = wallet (start + realized − commissions), `bc` "Balance
 *   Change except PnL and Commission" = `0`, `cr` "(Pre-fee) Accumulated Realized" per symbol.
 * - `ORDER_TRADE_UPDATE` — "Event: Order Update"
 *   (https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-Order-Update):
 *   for every accepted order, ours and manual ones (`POST /admin/trade`): `x: NEW / X: NEW`, then
 *   `x: TRADE / X: FILLED` with `l`, `z`, `L`, `ap`, `T` (a partly filled MARKET order: `X: PARTIALLY_FILLED`,
 *   then `x: EXPIRED / X: EXPIRED` with `er: "9"`, "market order could not be filled completely"). The fill event
 *   carries the trade: `t` trade id (the `id` of `GET /fapi/v1/userTrades`), `rp` "Realized Profit of the trade",
 *   `n` commission (the fee charged, 8 decimals) and `N` its asset `USDT`, `er` expiry reason `"0"`.
 *   The exchange's own orders ("Liquidation and ADL: if user gets liquidated ... c shows as "autoclose-XXX", X
 *   shows as "NEW"; if user has enough margin balance but gets ADL: c shows as "adl_autoclose", X shows as
 *   "NEW""; special client order ids "autoclose-" liquidation, "adl_autoclose" ADL, "settlement_autoclose-"
 *   settlement): `x: NEW / X: NEW`, then the fill as `x: CALCULATED` ("Liquidation Execution"; the Chinese page:
 *   "CALCULATED 订单 ADL 或爆仓", ADL or liquidation) `/ X: FILLED`, order type `o`/`ot` `LIQUIDATION`, `f: IOC`,
 *   `p` = fill price. A settlement (not described further by the page) is `x: TRADE`, `o: MARKET`.
 *   Rejected orders push nothing (Binance refuses them before the matching engine).
 * - `listenKeyExpired` — "Event: User Data Stream Expired"
 *   (https://developers.binance.com/docs/derivatives/usds-margined-futures/user-data-streams/Event-User-Data-Stream-Expired):
 *   `{e: "listenKeyExpired", E: "<ms as string>", listenKey}`; nothing more is pushed on that socket.
 *
 * Faults (`POST /admin/faults`, handled here, listed and cleared with the others):
 * `ws_drop` closes every socket (code 1006-like abrupt terminate); `ws_silence` (`duration_ms`, default
 * until cleared) drops every push while REST keeps answering (pings are still answered: a silent socket
 * looks alive); `ws_delay` (`latency_ms`, default 500; `duration_ms` optional) delays every push;
 * `listen_key_expire` expires the active key at once (`listenKeyExpired` is pushed).
 *
 * Change detection: the server calls {@link UserStreamHub.flush} after every request it served; the hub
 * diffs the book (new orders, changed positions) against what it last pushed. The book itself is untouched.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { z } from 'zod';
import { Decimal, fmt } from '../../src/domain/decimal.js';
import type { PaperBook, PaperOrder } from './state.js';

/** Listen key validity, ms (60 minutes, Binance). */
export const LISTEN_KEY_VALIDITY_MS = 60 * 60_000;
/** Lifetime of one user-stream connection, ms (Binance: 24 hours). */
export const MAX_CONNECTION_MS = 24 * 3_600_000;

/** Fault kinds of the user data stream. */
export const WS_FAULT_KINDS = ['ws_drop', 'ws_silence', 'ws_delay', 'listen_key_expire'] as const;
/** Body of `POST /admin/faults` for a user-stream fault. */
export const WsFaultSchema = z.object({
  kind: z.enum(WS_FAULT_KINDS),
  duration_ms: z.number().int().positive().optional(),
  latency_ms: z.number().int().nonnegative().optional(),
});
/** A user-stream fault as posted. */
export type WsFaultSpec = z.infer<typeof WsFaultSchema>;

interface ActiveWsFault extends WsFaultSpec {
  id: string;
  expiresAtMs: number | null;
}

/** A reply of a listen key endpoint. */
export interface StreamReply {
  status: number;
  body: unknown;
}

interface Known {
  amt: Decimal;
  entry: Decimal;
}

/** Whether an order is the exchange's liquidation or ADL order (pushed as order type LIQUIDATION, execution CALCULATED). */
function isVenueLiquidation(o: PaperOrder): boolean {
  return o.source === 'liquidation' || o.source === 'adl';
}

/** Listen keys, sockets, faults and the diff that turns book changes into events. */
export class UserStreamHub {
  private key: { value: string; expiresAtMs: number } | null = null;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly sockets = new Map<WebSocket, string>();
  private faults: ActiveWsFault[] = [];
  private nextFault = 1;
  private ordersSeen: number;
  private readonly known = new Map<string, Known>();
  private expiryTimer: NodeJS.Timeout | null = null;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Pushes sent per event type (diagnostics, `GET /admin/faults` neighbours). */
  readonly pushed: Record<string, number> = {};

  constructor(
    private readonly book: PaperBook,
    private readonly apiKey: string,
    private readonly maxConnectionMs: number = MAX_CONNECTION_MS,
  ) {
    this.ordersSeen = book.orders.length;
    for (const s of book.rules.keys()) {
      const p = book.positionOf(s);
      this.known.set(s, { amt: p.amt, entry: p.entry });
    }
  }

  /** Whether `path` is a listen key endpoint this hub serves. */
  static isListenKeyPath(path: string): boolean {
    return path === '/fapi/v1/listenKey';
  }

  /**
   * Serves `POST|PUT|DELETE /fapi/v1/listenKey` (USER_STREAM: API key only).
   * @returns the reply; never throws
   */
  listenKeyRequest(method: string, apiKeyHeader: string | undefined, nowMs: number): StreamReply {
    if (!apiKeyHeader || !/^[A-Za-z0-9]{8,128}$/.test(apiKeyHeader)) return { status: 401, body: { code: -2014, msg: 'API-key format invalid.' } };
    if (apiKeyHeader !== this.apiKey) return { status: 401, body: { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' } };
    const valid = this.key !== null && this.key.expiresAtMs > nowMs;
    if (method === 'POST') {
      if (!valid) this.key = { value: randomBytes(32).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, 64), expiresAtMs: 0 };
      this.extend(nowMs);
      return { status: 200, body: { listenKey: this.key!.value } };
    }
    if (method === 'PUT') {
      if (!valid) return { status: 400, body: { code: -1125, msg: 'This listenKey does not exist.' } };
      this.extend(nowMs);
      return { status: 200, body: { listenKey: this.key!.value } };
    }
    if (method === 'DELETE') {
      if (this.key) for (const [ws, k] of this.sockets) if (k === this.key.value) ws.close(1000, 'listenKey closed');
      this.key = null;
      return { status: 200, body: {} };
    }
    return { status: 405, body: { code: -1000, msg: `Method ${method} is invalid` } };
  }

  private extend(nowMs: number): void {
    if (!this.key) return;
    this.key.expiresAtMs = nowMs + LISTEN_KEY_VALIDITY_MS;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => this.expireNow(), LISTEN_KEY_VALIDITY_MS + 5);
    this.expiryTimer.unref();
  }

  /** Expires the active key now: `listenKeyExpired` to its sockets, which get nothing more. */
  expireNow(): void {
    const k = this.key;
    if (!k) return;
    this.key = null;
    const ev = { e: 'listenKeyExpired', E: String(Date.now()), listenKey: k.value };
    for (const [ws, key] of this.sockets) {
      if (key !== k.value) continue;
      this.sendRaw(ws, ev, 'listenKeyExpired');
      this.sockets.set(ws, ''); // nothing more on this socket
    }
  }

  /** Handles an HTTP upgrade; returns false when the path is not a user stream (the caller destroys the socket). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://paper');
    let key: string | null = null;
    const m = /^(?:\/private)?\/ws\/([^/]+)$/.exec(url.pathname);
    if (m) key = decodeURIComponent(m[1] as string);
    else if (url.pathname === '/private/ws') key = url.searchParams.get('listenKey');
    else return false;
    if (!key || !this.key || this.key.value !== key || this.key.expiresAtMs <= Date.now()) {
      const body = JSON.stringify({ code: -1125, msg: 'This listenKey does not exist.' });
      socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.sockets.set(ws, key as string);
      // "A single connection is only valid for 24 hours; expect to be disconnected at the 24 hour mark"
      const cut = setTimeout(() => {
        this.timers.delete(cut);
        ws.close(1001, 'connection lifetime reached');
      }, this.maxConnectionMs);
      this.timers.add(cut);
      const gone = () => {
        clearTimeout(cut);
        this.timers.delete(cut);
        this.sockets.delete(ws);
      };
      ws.on('close', gone);
      ws.on('error', gone);
    });
    return true;
  }

  /** Installs a user-stream fault (`ws_drop` and `listen_key_expire` act at once). */
  addFault(spec: WsFaultSpec, nowMs: number): unknown {
    const id = `ws-${this.nextFault++}`;
    if (spec.kind === 'ws_drop') {
      for (const ws of this.sockets.keys()) ws.terminate();
      this.sockets.clear();
      return { id, ...spec, applied: true };
    }
    if (spec.kind === 'listen_key_expire') {
      this.expireNow();
      return { id, ...spec, applied: true };
    }
    const f: ActiveWsFault = { ...spec, id, expiresAtMs: spec.duration_ms !== undefined ? nowMs + spec.duration_ms : null };
    this.faults.push(f);
    return f;
  }

  /** User-stream faults still in force. */
  listFaults(nowMs: number): ActiveWsFault[] {
    this.faults = this.faults.filter((f) => f.expiresAtMs === null || nowMs < f.expiresAtMs);
    return [...this.faults];
  }

  /** Removes every user-stream fault. */
  clearFaults(): void {
    this.faults = [];
  }

  /** Number of open sockets with a valid key (diagnostics). */
  get openSockets(): number {
    let n = 0;
    for (const k of this.sockets.values()) if (k !== '') n++;
    return n;
  }

  /**
   * Pushes the changes since the last flush: one ORDER_TRADE_UPDATE pair (NEW, TRADE) per new accepted
   * order, then one ACCOUNT_UPDATE with the positions that changed. Never throws.
   */
  flush(nowMs = Date.now()): void {
    const orders = this.book.orders.slice(this.ordersSeen);
    this.ordersSeen = this.book.orders.length;
    const filled = orders.filter((o) => o.status !== 'REJECTED' && new Decimal(o.executedQty || '0').gt(0));
    const changed: Array<{ s: string; before: Known; after: Known }> = [];
    for (const s of this.book.rules.keys()) {
      const p = this.book.positionOf(s);
      const before = this.known.get(s) ?? { amt: new Decimal(0), entry: new Decimal(0) };
      if (!before.amt.eq(p.amt) || !before.entry.eq(p.entry)) {
        changed.push({ s, before, after: { amt: p.amt, entry: p.entry } });
        this.known.set(s, { amt: p.amt, entry: p.entry });
      }
    }
    if (filled.length === 0 && changed.length === 0) return;
    for (const o of filled) {
      this.push(this.orderEvent(o, 'NEW', nowMs), 'ORDER_TRADE_UPDATE');
    }
    if (changed.length > 0) {
      this.push(this.accountEvent(changed.map((c) => c.s), filled.length > 0 ? 'ORDER' : 'ADJUSTMENT', nowMs), 'ACCOUNT_UPDATE');
    }
    for (const o of filled) {
      this.push(this.orderEvent(o, isVenueLiquidation(o) ? 'CALCULATED' : 'TRADE', nowMs), 'ORDER_TRADE_UPDATE');
      // a MARKET order that filled only partly (`partial_fill` fault): the rest expires
      if (o.status === 'EXPIRED') this.push(this.orderEvent(o, 'EXPIRED', nowMs), 'ORDER_TRADE_UPDATE');
    }
  }

  /** USDT wallet balance: the starting 10000 plus realized PnL minus commissions of every fill (no funding). */
  walletBalance(): Decimal {
    return this.book.wallet;
  }

  private accountEvent(symbols: string[], reason: string, nowMs: number): unknown {
    const wallet = this.book.wallet;
    const P: unknown[] = [];
    for (const s of symbols) {
      const p = this.book.positionOf(s);
      const mark = this.book.markOf(s);
      const leg = (ps: 'BOTH' | 'LONG' | 'SHORT', amt: Decimal, entry: Decimal) => ({
        s,
        pa: fmt(amt),
        ep: fmt(entry),
        bep: fmt(entry),
        cr: fmt(this.book.realized.get(s) ?? new Decimal(0)),
        up: fmt(amt.isZero() ? new Decimal(0) : amt.mul(mark.minus(entry))),
        mt: 'cross',
        iw: '0',
        ps,
        ma: 'USDT',
      });
      const zero = new Decimal(0);
      if (!this.book.dualSidePosition) P.push(leg('BOTH', p.amt, p.entry));
      else if (p.amt.gte(0)) P.push(leg('LONG', p.amt, p.amt.isZero() ? zero : p.entry));
      else P.push(leg('SHORT', p.amt, p.entry));
    }
    return { e: 'ACCOUNT_UPDATE', E: nowMs, T: nowMs, a: { m: reason, B: [{ a: 'USDT', wb: fmt(wallet), cw: fmt(wallet), bc: '0' }], P } };
  }

  private orderEvent(o: PaperOrder, x: 'NEW' | 'TRADE' | 'CALCULATED' | 'EXPIRED', nowMs: number): unknown {
    const isNew = x === 'NEW';
    const isFill = x === 'TRADE' || x === 'CALCULATED';
    const executed = new Decimal(o.executedQty || '0');
    const status = isNew ? 'NEW' : x === 'EXPIRED' ? 'EXPIRED' : executed.lt(new Decimal(o.qty)) ? 'PARTIALLY_FILLED' : 'FILLED';
    const liquidation = isVenueLiquidation(o);
    const type = liquidation ? 'LIQUIDATION' : 'MARKET';
    const trade = o.trade;
    return {
      e: 'ORDER_TRADE_UPDATE',
      E: nowMs,
      T: trade && !isNew ? trade.time : o.ts_ms,
      o: {
        s: o.symbol,
        c: o.clientOrderId,
        S: o.side,
        o: type,
        f: o.timeInForce ?? 'GTC',
        q: o.qty,
        p: o.price ?? '0',
        ap: isNew ? '0' : o.avgPrice,
        sp: '0',
        x,
        X: status,
        i: o.orderId,
        l: isFill ? o.executedQty : '0',
        z: isNew ? '0' : o.executedQty,
        L: isFill ? o.avgPrice : '0',
        N: 'USDT',
        n: isFill && trade ? trade.commission : '0',
        T: trade && !isNew ? trade.time : o.ts_ms,
        t: isFill && trade ? trade.id : 0,
        b: '0',
        a: '0',
        m: false,
        R: o.reduceOnly,
        wt: 'CONTRACT_PRICE',
        ot: type,
        ps: this.book.dualSidePosition ? (o.side === 'BUY' ? 'LONG' : 'SHORT') : 'BOTH',
        cp: false,
        rp: isFill && trade ? trade.realizedPnl : '0',
        pP: false,
        si: 0,
        ss: 0,
        V: 'EXPIRE_MAKER',
        pm: 'NONE',
        gtd: 0,
        er: x === 'EXPIRED' ? '9' : '0',
      },
    };
  }

  private push(ev: unknown, type: string): void {
    const now = Date.now();
    const faults = this.listFaults(now);
    if (faults.some((f) => f.kind === 'ws_silence')) return;
    const delay = faults.filter((f) => f.kind === 'ws_delay').reduce((s, f) => s + (f.latency_ms ?? 500), 0);
    const targets = [...this.sockets.entries()].filter(([, k]) => k !== '' && this.key !== null && k === this.key.value).map(([ws]) => ws);
    const send = () => {
      for (const ws of targets) this.sendRaw(ws, ev, type);
    };
    if (delay > 0) {
      const t = setTimeout(() => {
        this.timers.delete(t);
        send();
      }, delay);
      this.timers.add(t);
    } else send();
  }

  private sendRaw(ws: WebSocket, ev: unknown, type: string): void {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(JSON.stringify(ev));
    this.pushed[type] = (this.pushed[type] ?? 0) + 1;
  }

  /** Closes every socket and timer. */
  close(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const ws of this.sockets.keys()) ws.terminate();
    this.sockets.clear();
    this.wss.close();
  }
}
