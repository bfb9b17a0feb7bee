/**
 * The `ExchangeGateway` on ccxt `binanceusdm` (ccxt 4.5.x), for Binance USDⓈ-M production, Binance's
 * demo futures endpoint, or any base URL speaking the same API (the paper exchange).
 *
 * Facts of ccxt 4.5.82 this relies on (verified in node_modules/ccxt/js/src/binance.js):
 * - A base URL is set by overriding `urls.api` keys fapiPublic, fapiPublicV2/V3, fapiPrivate, fapiPrivateV2/V3.
 * - `setSandboxMode(true)` refuses private futures calls; the futures test environment is the demo
 *   endpoint (`enableDemoTrading(true)`, demo-fapi.binance.com).
 * - Futures-only error codes (-2022, -4116, ...) are mapped only for Binance's own hosts
 *   (`getExceptionsByUrl`), and 429/418 become `DDoSProtection` without the `Retry-After` value. So this
 *   adapter overrides `handleErrors` and turns every HTTP error into {@link BinanceHttpError} (status,
 *   Binance code/msg, Retry-After) before ccxt's own mapping, then maps it to our typed errors with the
 *   context of the call (an order POST vs a read; Binance's documented 503/-1001/-1008 failures are not executed,
 *   see {@link documentedFailure}). The linear table is still merged into
 *   `exceptions.exact` for ccxt's unified methods.
 * - `fetch2` retries only with `maxRetriesOnFailure` > 0: it is pinned to 0, so an order POST is never
 *   retried by ccxt (docs/architecture.md#exactly-once-execution: a lost reply is resolved by looking the client order id up).
 * - Signed requests carry `timestamp = milliseconds() - options.timeDifference` and `options.recvWindow`.
 *
 * Quantities go through ccxt's implicit API as exact decimal strings (never floats):
 * `GET /fapi/v3/positionRisk`, `GET /fapi/v1/exchangeInfo`, `POST /fapi/v1/order` (newOrderRespType
 * RESULT), `GET /fapi/v1/order`, `GET /fapi/v1/positionSide/dual`, `GET /fapi/v1/time`.
 */
import { parseUserTrades, USER_TRADES_MAX_LIMIT, type VenueTrade } from './venue-records.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import { loadCcxt } from './ccxt-module.js';
import { Decimal, fmt, parseDecimal } from '../../domain/decimal.js';
import type { ExchangeGateway, ExchangePosition, MarketOrderRequest, OrderInfo, PositionsAnswer, PremiumIndexEntry, SymbolRules } from '../../ports/exchange.js';
import { Auth, Banned, ExchangeError, HedgeModeRefused, OrderRejected, OutcomeUnknown, RateLimited, ReduceOnlyRejected, SendRefused, Unavailable } from './errors.js';

/** Connection settings of the ccxt gateway (see factory.ts for the environment variables). */
export interface CcxtGatewayConfig {
  /** `paper` (any base URL) or `binanceusdm` (production, or demo with `demo`). */
  exchange: 'paper' | 'binanceusdm';
  /** Base URL (`http://127.0.0.1:PORT`); required for paper, optional override for binanceusdm. */
  baseUrl?: string;
  apiKey: string;
  apiSecret: string;
  /** Binance's demo futures endpoint instead of production (binanceusdm only). */
  demo: boolean;
  /** `recvWindow` of signed requests, ms (Binance default 5000, max 60000). */
  recvWindowMs: number;
  /** HTTP timeout per request, ms. A timed-out order POST is `OutcomeUnknown`. */
  timeoutMs: number;
  /** Align the signing clock on the exchange's `/fapi/v1/time` (first call, then every 5 min). */
  syncTime: boolean;
  /**
   * ccxt's client-side request throttle (`enableRateLimit`), which spaces calls by the exchange's
   * documented weight limits (~50 ms per call for Binance USDⓈ-M): on by default for `binanceusdm` to stay
   * clear of 429/418 bans; off by default for `paper` (a loopback simulator), where it only adds latency.
   */
  clientRateLimit?: boolean;
  /** How long a "one-way mode" answer of `/fapi/v1/positionSide/dual` is trusted, ms. */
  hedgeCheckTtlMs?: number;
  /** How long exchangeInfo (lot steps) is cached, ms. */
  rulesTtlMs?: number;
}

/** Test hook: a fixed signing-clock offset (ms the local clock is ahead of the exchange) with `syncTime` false. */
export interface CcxtGatewayTestOptions {
  timeDifferenceMs?: number;
}

/** An HTTP error answer of a Binance-compatible API, raised from ccxt's `handleErrors`. */
export class BinanceHttpError extends Error {
  constructor(
    readonly status: number,
    /** Binance error code (`-2022`), null when the body has none. */
    readonly code: number | null,
    readonly msg: string,
    /** `Retry-After` header, seconds, null when absent. */
    readonly retryAfterS: number | null,
  ) {
    super(`HTTP ${status}${code === null ? '' : ` ${code}`}: ${msg}`);
  }
}

/** binanceusdm and the error classes, without the rest of ccxt (ccxt-module.ts). */
const ccxt = await loadCcxt();

/** Binance's error codes for a bad key, signature or permissions. */
const AUTH_CODES = new Set([-2014, -2015, -1022, -1002, -2008]);
/** Default wait when a 429 carries no Retry-After, ms. */
const DEFAULT_RETRY_AFTER_MS = 10_000;

/** binanceusdm with every HTTP error surfaced as a {@link BinanceHttpError}. */
/**
 * The last-moment check of the order request being made in this async context (`MarketOrderRequest.beforeSend`),
 * run by {@link P3BinanceUsdm.fetch}: ccxt calls `fetch` after its throttle queue and after signing, so this is
 * the latest point before the request leaves the process.
 */
const lastMoment = new AsyncLocalStorage<() => Promise<void>>();

class P3BinanceUsdm extends ccxt.binanceusdm {
  /** Runs the request's last-moment check (if any, see {@link lastMoment}) right before the HTTP request; its error aborts the request. */
  override async fetch(url: string, method?: string, headers?: unknown, body?: unknown): Promise<unknown> {
    const check = lastMoment.getStore();
    if (check) {
      try {
        await check();
      } catch (err) {
        throw err instanceof SendRefused ? err : new SendRefused('send_check_failed', `last-moment check failed, nothing sent: ${(err as Error).message}`);
      }
    }
    return (super.fetch as (u: string, m?: string, h?: unknown, b?: unknown) => Promise<unknown>)(url, method, headers, body);
  }


  override handleErrors(code: number, reason: string, url: string, method: string, headers: Record<string, unknown>, body: string, response: unknown, requestHeaders: unknown, requestBody: unknown): undefined {
    if (code >= 400) {
      let bcode: number | null = null;
      let msg = typeof body === 'string' && body !== '' ? body.slice(0, 500) : reason;
      const r = response as { code?: unknown; msg?: unknown } | undefined;
      if (r && typeof r === 'object' && r.code !== undefined && Number.isFinite(Number(r.code))) {
        bcode = Number(r.code);
        msg = typeof r.msg === 'string' ? r.msg : msg;
      }
      let retry: number | null = null;
      for (const [k, v] of Object.entries(headers ?? {})) {
        if (k.toLowerCase() === 'retry-after' && Number.isFinite(Number(v))) retry = Number(v);
      }
      throw new BinanceHttpError(code, bcode, msg, retry);
    }
    return super.handleErrors(code, reason, url, method, headers, body, response, requestHeaders, requestBody);
  }
}

/**
 * Binance error codes whose order may nevertheless have been executed: -1006 "An unexpected response was
 * received from the message bus. Execution status unknown." and -1007 "Timeout waiting for response from
 * backend server. Send status unknown; execution status unknown." (Binance USDⓈ-M error code list).
 */
const EXECUTION_UNKNOWN_CODES = new Set([-1006, -1007]);

/**
 * Which documented "failure" answer `err` is, or null. Binance USDⓈ-M general info, "HTTP 503 Status: Message
 * Variants & Handling" (https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info):
 * - B. "Service Unavailable." — "Service temporarily unavailable; 100% failure." → `service_unavailable`
 * - 3. -1001 "Internal error; unable to process your request. Please try again." — "a failure API operation and
 *   you can resend your request" → `internal_error`
 * - C. -1008 "Request throttled by system-level protection. Reduce-only/close-position orders are exempt." —
 *   "System overload; 100% failure." → `throttled`. Deliberately NOT a `RateLimited`: that would start the shared
 *   back-off and hold back the reduce-only closes Binance exempts from this throttle.
 * The variant A "Unknown error, please check your request or try again later." is NOT a failure (execution status
 * unknown) and -1006/-1007 neither; they never match here. A body without a Binance code never matches.
 */
export function documentedFailure(err: BinanceHttpError): 'service_unavailable' | 'internal_error' | 'throttled' | null {
  if (err.code === null) return null;
  const msg = err.msg.trim();
  if (err.code === -1008) return 'throttled';
  if (err.status === 503 && msg === 'Service Unavailable.') return 'service_unavailable';
  if (err.code === -1001 && msg.startsWith('Internal error; unable to process your request')) return 'internal_error';
  return null;
}

/** Whether a call may have changed state on the exchange (an order POST) or only reads. */
type CallKind = 'order' | 'read';

/**
 * Maps anything thrown by a ccxt call to the typed errors of errors.ts.
 * An order whose outcome cannot be known (5xx, timeout or broken connection after sending, unparseable
 * 200) is `OutcomeUnknown`; a read is then `Unavailable`. A refused connection never sent anything.
 */
export function mapExchangeError(err: unknown, kind: CallKind, nowMs = Date.now()): ExchangeError {
  if (err instanceof ExchangeError) return err;
  if (err instanceof BinanceHttpError) {
    if (err.status === 429) return new RateLimited(err.retryAfterS !== null ? err.retryAfterS * 1000 : DEFAULT_RETRY_AFTER_MS, `rate limited (HTTP 429): ${err.msg}`);
    if (err.status === 418) {
      const m = /banned until (\d{10,})/i.exec(err.msg);
      const until = m ? Number(m[1]) : nowMs + (err.retryAfterS !== null ? err.retryAfterS * 1000 : 120_000);
      return new Banned(until, `IP banned (HTTP 418) until ${until}: ${err.msg}`);
    }
    // Binance -1006 / -1007 and HTTP 408 say "execution status unknown": the order may exist.
    if (kind === 'order' && (err.status === 408 || (err.code !== null && EXECUTION_UNKNOWN_CODES.has(err.code)))) {
      return new OutcomeUnknown(`order outcome unknown (HTTP ${err.status}${err.code === null ? '' : ` ${err.code}`}): ${err.msg}`);
    }
    // Binance's documented 100% failures: nothing was executed, so an order is not looked up. Only a Binance
    // `{code, msg}` body counts (a proxy's bare 503 stays unknown).
    const failure = documentedFailure(err);
    if (failure !== null) return new Unavailable(`${kind === 'order' ? 'order not executed' : 'exchange unavailable'} (HTTP ${err.status} ${err.code}, ${failure}): ${err.msg}`);
    if (err.status >= 500) return kind === 'order' ? new OutcomeUnknown(`order outcome unknown (HTTP ${err.status}): ${err.msg}`) : new Unavailable(`exchange error HTTP ${err.status}: ${err.msg}`);
    if (err.code !== null && AUTH_CODES.has(err.code)) return new Auth(`exchange refused credentials ${err.code}: ${err.msg}`);
    if (err.code === -1003) return new RateLimited(err.retryAfterS !== null ? err.retryAfterS * 1000 : DEFAULT_RETRY_AFTER_MS, `rate limited: ${err.msg}`);
    if (err.status === 401) return new Auth(`exchange refused credentials (HTTP 401): ${err.msg}`);
    if (kind === 'order' && err.code !== null) return err.code === -2022 ? new ReduceOnlyRejected(err.code, err.msg) : new OrderRejected(err.code, err.msg);
    // An order answer without a Binance code (a proxy's 4xx, say) proves nothing: look the order up.
    if (kind === 'order') return new OutcomeUnknown(`order outcome unknown (HTTP ${err.status} without a Binance code): ${err.msg}`);
    return new Unavailable(`exchange refused the request (HTTP ${err.status}${err.code === null ? '' : ` ${err.code}`}): ${err.msg}`);
  }
  const msg = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  if (err instanceof ccxt.AuthenticationError) return new Auth(msg);
  if (err instanceof ccxt.DDoSProtection) return new RateLimited(DEFAULT_RETRY_AFTER_MS, msg);
  if (err instanceof ccxt.NetworkError && /ECONNREFUSED|ConnectionRefused/i.test(msg)) return new Unavailable(`exchange unreachable (nothing sent): ${msg}`);
  return kind === 'order' ? new OutcomeUnknown(`order outcome unknown: ${msg}`) : new Unavailable(`exchange unavailable: ${msg}`);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined);

/** Parses a Binance order body (`RESULT` / `GET /fapi/v1/order`). @throws Error when a required field is missing */
export function parseOrder(raw: unknown): OrderInfo {
  const o = raw as Record<string, unknown>;
  const orderId = str(o?.orderId);
  const qty = parseDecimal(o?.origQty);
  const filled = parseDecimal(o?.executedQty);
  const side = o?.side;
  if (!orderId || qty === null || filled === null || (side !== 'BUY' && side !== 'SELL') || typeof o.symbol !== 'string' || typeof o.status !== 'string') {
    throw new Error(`unparseable order answer: ${JSON.stringify(raw).slice(0, 300)}`);
  }
  const avg = parseDecimal(o.avgPrice);
  return {
    orderId,
    clientOrderId: str(o.clientOrderId) ?? '',
    symbol: o.symbol,
    side,
    status: o.status,
    qty,
    filledQty: filled,
    avgPrice: avg === null || avg.isZero() ? null : avg,
    reduceOnly: o.reduceOnly === true || o.reduceOnly === 'true',
    updateTimeMs: Number.isFinite(Number(o.updateTime)) ? Number(o.updateTime) : null,
    ...(typeof o.type === 'string' ? { type: o.type } : {}),
  };
}

/**
 * Parses a `/fapi/v3/positionRisk` answer. Fails (never "flat") on anything unexpected.
 * @throws HedgeModeRefused for a LONG/SHORT leg; Unavailable for a non-array, an entry without symbol or
 *   with an unparseable amount, or the same symbol twice
 */
export function parsePositions(raw: unknown): Map<string, ExchangePosition> {
  if (!Array.isArray(raw)) throw new Unavailable(`unparseable positions answer (not a list): ${JSON.stringify(raw).slice(0, 200)}`);
  const out = new Map<string, ExchangePosition>();
  for (const e of raw as Array<Record<string, unknown>>) {
    const symbol = e?.symbol;
    const amount = parseDecimal(e?.positionAmt);
    if (typeof symbol !== 'string' || symbol === '' || amount === null) throw new Unavailable(`unparseable position entry: ${JSON.stringify(e).slice(0, 200)}`);
    const ps = e.positionSide ?? 'BOTH';
    if (ps !== 'BOTH') throw new HedgeModeRefused(`position ${symbol} has positionSide ${String(ps)}: hedge mode is not supported, switch the account to one-way mode`);
    if (out.has(symbol)) throw new Unavailable(`positions answer lists ${symbol} twice`);
    if (amount.isZero()) continue;
    const entry = parseDecimal(e.entryPrice);
    const mark = parseDecimal(e.markPrice);
    out.set(symbol, { symbol, amount, entryPrice: entry, markPrice: mark });
  }
  return out;
}

/** Parses one exchangeInfo symbol into rules. @throws Unavailable when the lot step is missing or not positive */
export function parseSymbolRules(s: Record<string, unknown>): SymbolRules {
  const filters = Array.isArray(s.filters) ? (s.filters as Array<Record<string, unknown>>) : [];
  const f = (t: string) => filters.find((x) => x.filterType === t);
  const lot = f('LOT_SIZE');
  const mlot = f('MARKET_LOT_SIZE');
  const step = parseDecimal(mlot?.stepSize) ?? parseDecimal(lot?.stepSize);
  if (step === null || step.lte(0)) throw new Unavailable(`exchangeInfo ${String(s.symbol)} has no usable lot step`);
  const mins = [parseDecimal(lot?.minQty), parseDecimal(mlot?.minQty)].filter((d): d is Decimal => d !== null);
  const maxs = [parseDecimal(lot?.maxQty), parseDecimal(mlot?.maxQty)].filter((d): d is Decimal => d !== null && d.gt(0));
  return {
    symbol: String(s.symbol),
    stepSize: step,
    minQty: mins.length ? Decimal.max(...mins) : step,
    maxQty: maxs.length ? Decimal.min(...maxs) : null,
    tickSize: parseDecimal(f('PRICE_FILTER')?.tickSize),
    minNotional: parseDecimal(f('MIN_NOTIONAL')?.notional),
  };
}

const CLIENT_ID_RE = /^[.A-Z:/a-z0-9_-]{1,36}$/;

/** Builds the ccxt instance for `cfg`. */
function buildClient(cfg: CcxtGatewayConfig, test: CcxtGatewayTestOptions): P3BinanceUsdm {
  const ex = new P3BinanceUsdm({
    apiKey: cfg.apiKey,
    secret: cfg.apiSecret,
    timeout: cfg.timeoutMs,
    enableRateLimit: cfg.clientRateLimit ?? cfg.exchange === 'binanceusdm',
    options: {
      fetchCurrencies: false,
      recvWindow: cfg.recvWindowMs,
      maxRetriesOnFailure: 0,
      adjustForTimeDifference: false,
      timeDifference: test.timeDifferenceMs ?? 0,
      defaultType: 'future',
    },
  });
  if (cfg.exchange === 'binanceusdm' && cfg.demo) ex.enableDemoTrading(true);
  if (cfg.baseUrl) {
    const base = cfg.baseUrl.replace(/\/+$/, '');
    const api = ex.urls.api as Record<string, string>;
    for (const [k, v] of [['fapiPublic', 'v1'], ['fapiPublicV2', 'v2'], ['fapiPublicV3', 'v3'], ['fapiPrivate', 'v1'], ['fapiPrivateV2', 'v2'], ['fapiPrivateV3', 'v3']] as const) {
      api[k] = `${base}/fapi/${v}`;
    }
  }
  // futures-only codes for non-Binance hosts (ccxt maps them only by URL)
  const exceptions = ex.exceptions as { exact: Record<string, unknown>; linear?: { exact?: Record<string, unknown> } };
  exceptions.exact = { ...exceptions.exact, ...(exceptions.linear?.exact ?? {}) };
  return ex;
}

type Implicit = Record<string, (params?: Record<string, string>) => Promise<unknown>>;

/**
 * Creates the ccxt gateway. Nothing is sent until the first call.
 * Errors: every method throws only the typed errors of errors.ts.
 */
export function createCcxtGateway(cfg: CcxtGatewayConfig, test: CcxtGatewayTestOptions = {}): ExchangeGateway {
  const ex = buildClient(cfg, test);
  const api = ex as unknown as Implicit;
  const hedgeTtl = cfg.hedgeCheckTtlMs ?? 60_000;
  const rulesTtl = cfg.rulesTtlMs ?? 300_000;
  let oneWayCheckedAt = -Infinity;
  let timeSyncedAt = -Infinity;
  let rules: { at: number; bySymbol: Map<string, SymbolRules> } | null = null;

  const call = async <T>(kind: CallKind, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw mapExchangeError(err, kind);
    }
  };

  const syncTime = async () => {
    if (!cfg.syncTime || Date.now() - timeSyncedAt < 300_000) return;
    const before = Date.now();
    const server = await serverTime();
    const after = Date.now();
    ex.options.timeDifference = Math.round((before + after) / 2) - server;
    timeSyncedAt = after;
  };

  const ensureOneWay = async () => {
    if (Date.now() - oneWayCheckedAt < hedgeTtl) return;
    const res = (await call('read', () => api.fapiPrivateGetPositionSideDual!())) as { dualSidePosition?: unknown };
    const dual = res?.dualSidePosition;
    if (dual === true || dual === 'true') throw new HedgeModeRefused('the account is in hedge mode (dualSidePosition=true); only one-way mode (positionSide BOTH) is supported');
    if (dual !== false && dual !== 'false') throw new Unavailable(`unparseable positionSide/dual answer: ${JSON.stringify(res)}`);
    oneWayCheckedAt = Date.now();
  };

  const serverTime = async (): Promise<number> => {
    const res = (await call('read', () => api.fapiPublicGetTime!())) as { serverTime?: unknown };
    const t = Number(res?.serverTime);
    if (!Number.isFinite(t) || t <= 0) throw new Unavailable(`unparseable server time: ${JSON.stringify(res)}`);
    return t;
  };

  return {
    async fetchPositions(): Promise<PositionsAnswer> {
      await syncTime();
      await ensureOneWay();
      const raw = await call('read', () => api.fapiPrivateV3GetPositionRisk!());
      return { positions: parsePositions(raw), tsMs: Date.now() };
    },

    async symbolRules(symbol: string): Promise<SymbolRules> {
      if (!rules || Date.now() - rules.at > rulesTtl || !rules.bySymbol.has(symbol)) {
        const info = (await call('read', () => api.fapiPublicGetExchangeInfo!())) as { symbols?: unknown };
        if (!Array.isArray(info?.symbols)) throw new Unavailable('unparseable exchangeInfo answer');
        const bySymbol = new Map<string, SymbolRules>();
        for (const s of info.symbols as Array<Record<string, unknown>>) {
          if (typeof s?.symbol !== 'string') continue;
          try {
            bySymbol.set(s.symbol, parseSymbolRules(s));
          } catch {
            // a symbol without usable rules is simply unknown
          }
        }
        rules = { at: Date.now(), bySymbol };
      }
      const r = rules.bySymbol.get(symbol);
      if (!r) throw new Unavailable(`unknown symbol ${symbol} (not in exchangeInfo)`);
      return r;
    },

    async placeMarketOrder(req: MarketOrderRequest): Promise<OrderInfo> {
      if (!CLIENT_ID_RE.test(req.clientOrderId)) throw new OrderRejected(-4015, `client order id ${JSON.stringify(req.clientOrderId)} is not valid (checked before sending)`);
      if (req.qty.lte(0)) throw new OrderRejected(-4003, 'Quantity less than or equal to zero (checked before sending).');
      await syncTime();
      await ensureOneWay();
      const params: Record<string, string> = {
        symbol: req.symbol,
        side: req.side,
        type: 'MARKET',
        quantity: fmt(req.qty),
        newClientOrderId: req.clientOrderId,
        newOrderRespType: 'RESULT',
      };
      if (req.reduceOnly) params.reduceOnly = 'true';
      const send = () => api.fapiPrivatePostOrder!(params);
      const raw = await call('order', () => (req.beforeSend ? lastMoment.run(req.beforeSend, send) : send()));
      try {
        return parseOrder(raw);
      } catch (err) {
        throw new OutcomeUnknown(`order sent, answer unparseable: ${(err as Error).message}`);
      }
    },

    async fetchOrderByClientId(symbol: string, clientOrderId: string): Promise<OrderInfo | null> {
      await syncTime();
      try {
        const raw = await api.fapiPrivateGetOrder!({ symbol, origClientOrderId: clientOrderId });
        return parseOrder(raw);
      } catch (err) {
        if (err instanceof BinanceHttpError && err.code === -2013) return null;
        throw mapExchangeError(err, 'read');
      }
    },

    async fetchTrades(symbol: string, fromId: string | null, limit: number): Promise<VenueTrade[]> {
      await syncTime();
      const params: Record<string, string> = { symbol, limit: String(Math.min(Math.max(1, limit), USER_TRADES_MAX_LIMIT)) };
      if (fromId !== null) params.fromId = fromId;
      return parseUserTrades(await call('read', () => api.fapiPrivateGetUserTrades!(params)));
    },

    async fetchOrderById(symbol: string, orderId: string): Promise<OrderInfo | null> {
      await syncTime();
      try {
        return parseOrder(await api.fapiPrivateGetOrder!({ symbol, orderId }));
      } catch (err) {
        if (err instanceof BinanceHttpError && err.code === -2013) return null;
        throw mapExchangeError(err, 'read');
      }
    },

    serverTime,

    async fetchMarkPrices(): Promise<Map<string, Decimal>> {
      const raw = await call('read', () => api.fapiPublicGetPremiumIndex!());
      if (!Array.isArray(raw)) throw new Unavailable(`unparseable premiumIndex answer: ${JSON.stringify(raw).slice(0, 200)}`);
      const out = new Map<string, Decimal>();
      for (const e of raw as Array<Record<string, unknown>>) {
        const mark = parseDecimal(e?.markPrice);
        if (typeof e?.symbol === 'string' && mark !== null && mark.gt(0)) out.set(e.symbol, mark);
      }
      return out;
    },

    // https://developers.binance.com/docs/derivatives/usds-margined-futures/market-data/rest-api/Mark-Price
    async fetchPremiumIndex(): Promise<Map<string, PremiumIndexEntry>> {
      const raw = await call('read', () => api.fapiPublicGetPremiumIndex!());
      if (!Array.isArray(raw)) throw new Unavailable(`unparseable premiumIndex answer: ${JSON.stringify(raw).slice(0, 200)}`);
      const out = new Map<string, PremiumIndexEntry>();
      for (const e of raw as Array<Record<string, unknown>>) {
        const mark = parseDecimal(e?.markPrice);
        const index = parseDecimal(e?.indexPrice);
        if (typeof e?.symbol === 'string' && mark !== null && mark.gt(0)) out.set(e.symbol, { markPrice: mark, indexPrice: index !== null && index.gt(0) ? index : null });
      }
      return out;
    },

    async close(): Promise<void> {
      await ex.close().catch(() => undefined);
    },
  };
}
