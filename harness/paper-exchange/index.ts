/**
 * The paper exchange: a Binance-USDⓈ-M-compatible HTTP server on loopback (docs/architecture.md#exchange-and-paper-exchange-fidelity, docs/architecture.md#interfaces), so the demo
 * and the tests talk to it through the same ccxt adapter production uses.
 *
 * Exchange endpoints (Binance's paths, `{code, msg}` error bodies, `X-MBX-USED-WEIGHT-1M` by each endpoint's
 * documented weight (weights.ts) and `X-MBX-ORDER-COUNT-10S`/`-1M` headers; a parameter sent in both the query
 * string and the body is taken from the query string): `GET /fapi/v1/ping`, `GET /fapi/v1/time`, `GET /fapi/v1/exchangeInfo`,
 * `GET /fapi/v1/premiumIndex`, and SIGNED (see auth.ts): `GET /fapi/v1/leverageBracket`,
 * `GET /fapi/v2/positionRisk`, `GET /fapi/v3/positionRisk`, `POST /fapi/v1/order` (MARKET only;
 * `newOrderRespType` ACK (default) or RESULT), `GET /fapi/v1/order` (by `orderId` or `origClientOrderId`),
 * `GET /fapi/v1/userTrades` and `GET /fapi/v1/allOrders` (history.ts),
 * `GET|POST /fapi/v1/positionSide/dual`, `GET /fapi/v2|v3/balance` and `/account` (account.ts),
 * `POST|PUT|DELETE /fapi/v1/listenKey` and the user data stream
 * WebSocket at `/ws/<listenKey>`, `/private/ws/<listenKey>` and `/private/ws?listenKey=<key>` (user-stream.ts). Admin API under
 * `/admin` (admin.ts), loopback clients only. Faults (faults.ts) apply to exchange endpoints only; the
 * user-stream faults (`ws_drop`, `ws_silence`, `ws_delay`, `listen_key_expire`) go to user-stream.ts.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleAdmin, type RequestLogEntry } from './admin.js';
import { checkSigned, type Params } from './auth.js';
import { FaultTable, type ActiveFault } from './faults.js';
import { exchangeInfo, leverageBrackets, orderBody, positionRiskV2, positionRiskV3 } from './shapes.js';
import { BinanceError, PaperBook, type PaperSymbolRules } from './state.js';
import { UserStreamHub, WS_FAULT_KINDS, WsFaultSchema } from './user-stream.js';
import { accountV3, balanceV3 } from './account.js';
import { requestWeight } from './weights.js';
import { allOrders, userTrades } from './history.js';
import { fmt, parseDecimal } from '../../src/domain/decimal.js';

export { BinanceError, PaperBook } from './state.js';
export type { OrderSource, PaperOrder, PaperSymbolRules, PaperTrade } from './state.js';
export type { FaultSpec, FaultKind } from './faults.js';

/** Options of {@link startPaperExchange}. */
export interface PaperExchangeOptions {
  /** TCP port; 0 (default) = a free port. */
  port?: number;
  /** Bind address, default `127.0.0.1`. */
  host?: string;
  /** Symbols traded, default `BTCUSDT,ETHUSDT`. */
  symbols?: string[];
  /** Initial signed positions, e.g. `{BTCUSDT: '0.007'}` (entry at the mark price). */
  positions?: Record<string, string>;
  /** Mark prices, default BTCUSDT 95000, ETHUSDT 3300, others 100. */
  markPrices?: Record<string, string>;
  /** Trading-rule overrides per symbol (defaults: lot step 0.001, min qty 0.001, min notional 5). */
  rules?: Record<string, Partial<PaperSymbolRules>>;
  /** API key accepted; generated when absent. */
  apiKey?: string;
  /** API secret; generated when absent. */
  apiSecret?: string;
  /** Taker commission rate every fill pays, a decimal string in [0, 0.01] (default `0.0005` = 0.05 %). */
  takerFeeRate?: string;
  /** Lifetime of a user-stream WebSocket connection before the server cuts it, ms (default 24 h, as Binance). */
  wsMaxConnectionMs?: number;
}

/** A running paper exchange. */
export interface PaperExchange {
  /** `http://127.0.0.1:PORT` (the host given, loopback by default). */
  url: string;
  port: number;
  apiKey: string;
  apiSecret: string;
  /** The book, for in-process inspection (tests use the admin API instead). */
  book: PaperBook;
  /** The user data stream (listen keys, sockets), for in-process inspection. */
  userStream: UserStreamHub;
  /** Stops the server, ending held (timeout-fault) requests. */
  close(): Promise<void>;
}

/** 503 body of Binance when the execution status is unknown. */
export const UNKNOWN_ERROR_MSG = 'Unknown error, please check your request or try again later.';

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  /** A non-JSON body sent as is (the WAF's HTML 403 page); `body` is then ignored. */
  html?: string;
}

/** Binance's -1007 body of an HTTP 408 (error-code page, -1007 TIMEOUT). */
export const TIMEOUT_1007_MSG = 'Timeout waiting for response from backend server. Send status unknown; execution status unknown.';
/** Binance's 503 body text of a failed request (general-info, HTTP 503 variant B). */
export const SERVICE_UNAVAILABLE_MSG = 'Service Unavailable.';
/** Binance's -1001 DISCONNECTED message (error-code page; general-info, HTTP 503 variant 3). */
export const INTERNAL_ERROR_1001_MSG = 'Internal error; unable to process your request. Please try again.';
/** Binance's current -1008 message (general-info, HTTP 503 variant C; changelog 2025-10-14). */
export const THROTTLED_1008_MSG = 'Request throttled by system-level protection. Reduce-only/close-position orders are exempt. Please try again.';
/** A WAF block page (HTML, no Binance code), as a firewall in front of the API answers. */
export const WAF_403_HTML = '<html><head><title>403 Forbidden</title></head><body><h1>403 Forbidden</h1><p>Request blocked.</p></body></html>';

/**
 * Whether an order reduces exposure in Binance's sense for the -1008 exemption: "Reduce-only / Close-position:
 * closePosition = true, or positionSide = BOTH with reduceOnly = true, or LONG+SELL, or SHORT+BUY"
 * (https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info, HTTP 503 variant C).
 */
export function reducesExposure(params: Params): boolean {
  const ps = params.positionSide ?? 'BOTH';
  if (params.closePosition === 'true') return true;
  if (ps === 'BOTH') return params.reduceOnly === 'true';
  return (ps === 'LONG' && params.side === 'SELL') || (ps === 'SHORT' && params.side === 'BUY');
}

const err = (e: BinanceError): Reply => ({ status: e.httpStatus, body: { code: e.code, msg: e.msg } });

function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/**
 * Starts a paper exchange.
 * @throws Error when the port cannot be bound or an option is invalid (bad position/mark price)
 */
export async function startPaperExchange(opts: PaperExchangeOptions = {}): Promise<PaperExchange> {
  const symbols = (opts.symbols ?? ['BTCUSDT', 'ETHUSDT']).map((s) => s.toUpperCase());
  const book = new PaperBook(symbols, opts.positions ?? {}, opts.markPrices ?? {}, opts.rules ?? {});
  if (opts.takerFeeRate !== undefined) {
    const rate = parseDecimal(opts.takerFeeRate);
    if (!rate || rate.lt(0) || rate.gt('0.01')) throw new Error(`bad taker fee rate ${opts.takerFeeRate}: a decimal in [0, 0.01]`);
    book.takerFeeRate = rate;
  }
  if (opts.wsMaxConnectionMs !== undefined && (!Number.isInteger(opts.wsMaxConnectionMs) || opts.wsMaxConnectionMs <= 0)) throw new Error(`bad wsMaxConnectionMs ${opts.wsMaxConnectionMs}`);
  const account = { apiKey: opts.apiKey ?? randomBytes(24).toString('hex'), apiSecret: opts.apiSecret ?? randomBytes(32).toString('hex') };
  const faults = new FaultTable();
  const hub = new UserStreamHub(book, account.apiKey, opts.wsMaxConnectionMs);
  const requests: RequestLogEntry[] = [];
  /** Weighted requests of the last minute (`X-MBX-USED-WEIGHT-1M`): epoch ms and documented weight. */
  const weightWindow: Array<{ t: number; w: number }> = [];
  const orderWindow: number[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    timers.add(t);
  };

  /** Serves one exchange request against the book (faults are handled by the caller). */
  const route = (method: string, path: string, rawQuery: string, rawBody: string, params: Params, apiKey: string | undefined, fillRatio?: number): Reply => {
    const now = Date.now();
    const signed = () => checkSigned(apiKey, rawQuery, rawBody, params, account, now);
    const symbolParam = () => {
      const s = params.symbol;
      if (s === undefined) throw new BinanceError(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.");
      book.rulesOf(s);
      return s;
    };
    try {
      switch (`${method} ${path}`) {
        case 'GET /fapi/v1/ping':
          return { status: 200, body: {} };
        case 'GET /fapi/v1/time':
          return { status: 200, body: { serverTime: now } };
        case 'GET /fapi/v1/exchangeInfo':
          return { status: 200, body: exchangeInfo(book, now) };
        case 'GET /fapi/v1/premiumIndex': {
          const list = [...book.rules.keys()].map((s) => ({ symbol: s, markPrice: fmt(book.markOf(s)), indexPrice: fmt(book.indexOf(s)), estimatedSettlePrice: fmt(book.markOf(s)), lastFundingRate: '0.00010000', interestRate: '0.00010000', nextFundingTime: now - (now % 28_800_000) + 28_800_000, time: now }));
          return { status: 200, body: params.symbol ? (list.find((x) => x.symbol === symbolParam()) as unknown) : list };
        }
        case 'GET /fapi/v1/leverageBracket':
          signed();
          return { status: 200, body: leverageBrackets(book, params.symbol === undefined ? undefined : symbolParam()) };
        case 'GET /fapi/v2/positionRisk':
          signed();
          return { status: 200, body: positionRiskV2(book, params.symbol === undefined ? undefined : symbolParam()) };
        case 'GET /fapi/v3/positionRisk':
          signed();
          return { status: 200, body: positionRiskV3(book, params.symbol === undefined ? undefined : symbolParam()) };
        case 'GET /fapi/v2/balance':
        case 'GET /fapi/v3/balance':
          signed();
          return { status: 200, body: balanceV3(book, hub.walletBalance(), now) };
        case 'GET /fapi/v2/account':
        case 'GET /fapi/v3/account':
          signed();
          return { status: 200, body: accountV3(book, hub.walletBalance(), now) };
        case 'POST /fapi/v1/listenKey':
        case 'PUT /fapi/v1/listenKey':
        case 'DELETE /fapi/v1/listenKey':
          return hub.listenKeyRequest(method, apiKey, now);
        case 'GET /fapi/v1/positionSide/dual':
          signed();
          return { status: 200, body: { dualSidePosition: book.dualSidePosition } };
        case 'POST /fapi/v1/positionSide/dual': {
          signed();
          const want = params.dualSidePosition === 'true';
          if (want === book.dualSidePosition) throw new BinanceError(400, -4059, 'No need to change position side.');
          book.dualSidePosition = want;
          return { status: 200, body: { code: 200, msg: 'success' } };
        }
        case 'POST /fapi/v1/order': {
          signed();
          orderWindow.push(now);
          const clientOrderId = params.newClientOrderId ?? `paper_${randomBytes(8).toString('hex')}`;
          if (!/^[.A-Z:/a-z0-9_-]{1,36}$/.test(clientOrderId)) throw new BinanceError(400, -4015, 'Client order id is not valid.');
          const respType = params.newOrderRespType ?? 'ACK';
          const order = book.placeOrder({
            symbol: params.symbol ?? '',
            side: params.side ?? '',
            type: params.type ?? '',
            quantity: params.quantity,
            reduceOnly: params.reduceOnly === 'true',
            clientOrderId,
            positionSide: params.positionSide,
            fillRatio,
          });
          return { status: 200, body: orderBody(order, respType !== 'RESULT') };
        }
        case 'GET /fapi/v1/order': {
          signed();
          const s = symbolParam();
          return { status: 200, body: orderBody(book.findOrder(s, params.orderId, params.origClientOrderId), false, true) };
        }
        case 'GET /fapi/v1/userTrades': {
          signed();
          return { status: 200, body: userTrades(book, symbolParam(), params, now) };
        }
        case 'GET /fapi/v1/allOrders': {
          signed();
          return { status: 200, body: allOrders(book, symbolParam(), params, now) };
        }
        default:
          return { status: 404, body: { code: -5000, msg: `Path ${method} ${path}, Method ${method} is invalid` } };
      }
    } catch (e) {
      if (e instanceof BinanceError) return err(e);
      return { status: 500, body: { code: -1000, msg: `An unknown error occurred while processing the request. ${(e as Error).message}` } };
    }
  };

  const send = (res: ServerResponse, log: RequestLogEntry | null, reply: Reply) => {
    if (res.writableEnded || res.destroyed) return;
    const now = Date.now();
    while (weightWindow.length > 0 && (weightWindow[0] as { t: number }).t < now - 60_000) weightWindow.shift();
    while (orderWindow.length > 0 && (orderWindow[0] as number) < now - 60_000) orderWindow.shift();
    const headers: Record<string, string> = {
      'content-type': reply.html !== undefined ? 'text/html' : 'application/json',
      'x-mbx-used-weight-1m': String(weightWindow.reduce((a, e) => a + e.w, 0)),
      'x-mbx-order-count-1m': String(orderWindow.length),
      'x-mbx-order-count-10s': String(orderWindow.filter((t) => t >= now - 10_000).length),
      ...reply.headers,
    };
    if (log) log.status = reply.status;
    res.writeHead(reply.status, headers);
    res.end(reply.html !== undefined ? reply.html : JSON.stringify(reply.body));
  };

  const faultReply = (f: ActiveFault, now: number): Reply | null => {
    if (f.kind === 'http_429') {
      const s = f.retry_after_s ?? 1;
      return { status: 429, headers: { 'retry-after': String(s) }, body: { code: -1003, msg: 'Too many requests; current limit of IP(127.0.0.1) is 2400 requests per minute. Please use the websocket for live updates to avoid polling the API.' } };
    }
    if (f.kind === 'http_418') {
      const s = f.retry_after_s ?? 2;
      return { status: 418, headers: { 'retry-after': String(s) }, body: { code: -1003, msg: `Way too many requests; IP(127.0.0.1) banned until ${now + s * 1000}. Please use the websocket for live updates to avoid bans.` } };
    }
    if (f.kind === 'http_503_unavailable') return { status: 503, body: { code: -1001, msg: SERVICE_UNAVAILABLE_MSG } };
    if (f.kind === 'http_1001') return { status: 503, body: { code: -1001, msg: INTERNAL_ERROR_1001_MSG } };
    if (f.kind === 'http_1008') return { status: 503, body: { code: -1008, msg: THROTTLED_1008_MSG } };
    if (f.kind === 'http_403') return { status: 403, body: null, html: WAF_403_HTML };
    if (f.kind === 'http_408' && f.executed === false) return { status: 408, body: { code: -1007, msg: TIMEOUT_1007_MSG } };
    if (f.kind === 'http_503_unknown' && f.executed === false) return { status: 503, body: { code: -1000, msg: UNKNOWN_ERROR_MSG } };
    return null;
  };

  /** The admin API plus the user-stream faults (kept out of faults.ts so both evolve separately). */
  const adminWithStream = (method: string, path: string, rawBody: string): Reply => {
    if (path === '/admin/faults') {
      let body: unknown = null;
      try {
        body = rawBody.trim() === '' ? {} : JSON.parse(rawBody);
      } catch {
        // handleAdmin reports the bad body
      }
      const kind = (body as { kind?: unknown } | null)?.kind;
      if (method === 'POST' && typeof kind === 'string' && (WS_FAULT_KINDS as readonly string[]).includes(kind)) {
        const spec = WsFaultSchema.safeParse(body);
        if (!spec.success) return { status: 400, body: { error: spec.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') } };
        return { status: 200, body: hub.addFault(spec.data, Date.now()) };
      }
      if (method === 'DELETE') hub.clearFaults();
      const r = handleAdmin({ book, faults, requests }, method, path, rawBody);
      if (method === 'GET' && r.status === 200 && Array.isArray(r.body)) return { status: 200, body: [...(r.body as unknown[]), ...hub.listFaults(Date.now())] };
      return r;
    }
    return handleAdmin({ book, faults, requests }, method, path, rawBody);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = (req.method ?? 'GET').toUpperCase();
    const rawUrl = req.url ?? '/';
    const qi = rawUrl.indexOf('?');
    const path = (qi >= 0 ? rawUrl.slice(0, qi) : rawUrl).replace(/\/+$/, '') || '/';
    const rawQuery = qi >= 0 ? rawUrl.slice(qi + 1) : '';
    const rawBody = await readBody(req);

    if (path === '/admin' || path.startsWith('/admin/')) {
      const reply = isLoopback(req.socket.remoteAddress) ? adminWithStream(method, path, rawBody) : { status: 403, body: { error: 'admin API is loopback only' } };
      send(res, null, reply);
      hub.flush();
      return;
    }

    const now = Date.now();
    const log: RequestLogEntry = { ts_ms: now, method, path, status: 0 };
    requests.push(log);
    if (requests.length > 100_000) requests.splice(0, requests.length - 100_000);

    // "If a parameter sent in both the query string and request body, the query string parameter will be used"
    // (https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info, General Information on
    // Endpoints): the body is read first, the query string overwrites it.
    const params: Params = {};
    const ct = String(req.headers['content-type'] ?? '');
    if (rawBody !== '' && (ct.includes('x-www-form-urlencoded') || ct === '')) for (const [k, v] of new URLSearchParams(rawBody)) params[k] = v;
    for (const [k, v] of new URLSearchParams(rawQuery)) params[k] = v;
    const apiKey = req.headers['x-mbx-apikey'];

    const decision = faults.decide(path, now, method, method === 'POST' && path === '/fapi/v1/order' && reducesExposure(params));
    // "Service Unavailable." and -1008 are "not counted" in the rate limits (general-info, HTTP 503 variants B, C).
    const kind = decision.fault?.kind;
    if (kind !== 'http_503_unavailable' && kind !== 'http_1008') weightWindow.push({ t: now, w: requestWeight(method, path, params) });
    const run = () => {
      const f = decision.fault;
      const pre = f ? faultReply(f, Date.now()) : null;
      if (pre) return send(res, log, pre);
      const fillRatio = f?.kind === 'partial_fill' ? (f.fill_ratio ?? 0.5) : undefined;
      const reply = route(method, path, rawQuery, rawBody, params, typeof apiKey === 'string' ? apiKey : undefined, fillRatio);
      hub.flush();
      if (f?.kind === 'http_503_unknown') return send(res, log, { status: 503, body: { code: -1000, msg: UNKNOWN_ERROR_MSG } });
      if (f?.kind === 'http_408') return send(res, log, { status: 408, body: { code: -1007, msg: TIMEOUT_1007_MSG } });
      if (f?.kind === 'timeout') {
        // executed; the reply is never sent, or only after latency_ms
        if (f.latency_ms !== undefined) later(f.latency_ms, () => send(res, log, reply));
        return;
      }
      send(res, log, reply);
    };
    if (decision.delayMs > 0) later(decision.delayMs, run);
    else run();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: -1000, msg: e.message }));
      }
    });
  });
  server.on('upgrade', (req, socket, head) => {
    if (!hub.handleUpgrade(req, socket, head)) socket.destroy();
  });
  server.keepAliveTimeout = 5_000;
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  let closed = false;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    apiKey: account.apiKey,
    apiSecret: account.apiSecret,
    book,
    userStream: hub,
    close: async () => {
      if (closed) return;
      closed = true;
      hub.close();
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
