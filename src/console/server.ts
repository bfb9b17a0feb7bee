/**
 * The console's HTTP server (fastify): the page (static files from src/console/public, no CDN) and the
 * JSON API. Every route declares its access level (page, read, action) and every request passes the gate
 * of guard.ts, keyed by the route the router matched, before its body is even parsed; actions then
 * validate their body (actions.ts) and are logged with who and why.
 *
 * API (README "Operator console"): GET /api/symbols, /api/events?symbol=&since=&limit=, /api/plans/:id,
 * /api/services, /api/stream (SSE); POST|DELETE /api/holds/:symbol, POST /api/ledger/:symbol,
 * POST /api/trading-state, POST /api/flatten. Errors are `{error, message}` with 400/401/403/404/409/413/415/421/500/503.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { tracePlan } from '../read-model/plan-trace.js';
import { flatten, FlattenBody, checkKnownSymbol, checkSymbol, holdClear, HoldClearBody, holdSet, HoldSetBody, ledgerSet, LedgerSetBody, operatorOf, parseBody, tradingStateSet, TradingStateBody, type ActionReply } from './actions.js';
import type { ConsoleConfig } from './config.js';
import { frameworkErrors, installGuard, SECURITY_HEADERS } from './guard.js';
import { ConsoleHub } from './hub.js';
import { readEvents, readServices, readSymbols } from '../read-model/console.js';
import { fromRoot } from '../lib/root.js';

/** Static files of the page: URL name → content type. Nothing else under /static is served. */
const STATIC = new Map<string, string>([
  ['app.js', 'text/javascript; charset=utf-8'],
  ['api.js', 'text/javascript; charset=utf-8'],
  ['chart.js', 'text/javascript; charset=utf-8'],
  ['dom.js', 'text/javascript; charset=utf-8'],
  ['actions.js', 'text/javascript; charset=utf-8'],
  ['style.css', 'text/css; charset=utf-8'],
]);
/** The page's files, read from the source tree also when this module runs compiled (src/lib/root.ts). */
const PUBLIC_DIR = pathToFileURL(`${fromRoot('src/console/public')}/`);

/** What the page needs to know about the console (in `GET /api/symbols` and the stream's `hello`). */
export interface ConsoleInfo {
  actions_enabled: boolean;
  loopback: boolean;
  hold_ttl_sec: number;
  /** Actions enabled and `P3_KEY_OPERATOR` set (FLATTEN plans can be signed). */
  flatten_available: boolean;
}

/** A running console. */
export interface RunningConsole {
  /** `http://<host>:<port>/` */
  url: string;
  port: number;
  app: FastifyInstance;
  /** Stops the live loops and the server (open streams are cut). */
  close(): Promise<void>;
}

const EventsQuery = z.strictObject({
  symbol: z.string().regex(/^[A-Za-z0-9]{2,30}$/, 'symbol must be like BTCUSDT').transform((s) => s.toUpperCase()).optional(),
  since: z.string().regex(/^\d+(-\d+)?$/, 'since must be epoch milliseconds or a stream id like 1769299637000-0').optional(),
  limit: z.coerce.number().int('limit must be an integer').min(1).max(2000).default(200),
});

function refuse(reply: FastifyReply, r: ActionReply): FastifyReply {
  return reply.code(r.status).send(r.body);
}

const PAGE = { config: { access: 'page' } } as const;
const READ = { config: { access: 'read' } } as const;
const ACTION = { config: { access: 'action' } } as const;

/** Default most live streams (`GET /api/stream`) open at once: far more than a desk's open pages. */
export const CONSOLE_MAX_STREAMS = 32;

/** Limits of {@link startConsole}. */
export interface ConsoleLimits {
  /** Most live streams open at once (default {@link CONSOLE_MAX_STREAMS}); one more is a 503 `too_many_streams`. */
  maxStreams?: number;
}

/**
 * Builds and starts the console on `cfg.host:cfg.port`.
 * @param redis a connection with the scripts loaded (createRedis); the console does not close it
 * @throws when the port cannot be bound
 */
export async function startConsole(redis: Redis, cfg: ConsoleConfig, logger: Logger, limits: ConsoleLimits = {}): Promise<RunningConsole> {
  const maxStreams = limits.maxStreams ?? CONSOLE_MAX_STREAMS;
  let openStreams = 0;
  // case-sensitive, no trailing-slash or doubled-slash folding, no HEAD twins of GET routes (a HEAD of
  // the stream would hold a subscription open for nothing): one spelling per route
  const app = Fastify({
    logger: false,
    bodyLimit: 16 * 1024,
    forceCloseConnections: true,
    exposeHeadRoutes: false,
    frameworkErrors: frameworkErrors(logger),
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false },
  });
  const hub = new ConsoleHub({ redis, allowlist: cfg.symbols, logger });
  const info: ConsoleInfo = { actions_enabled: cfg.token !== null, loopback: cfg.loopback, hold_ttl_sec: cfg.holdTtlSec, flatten_available: cfg.token !== null && cfg.operatorKey !== null };
  installGuard(app, cfg, logger);

  // the page
  app.get('/', PAGE, async (_req, reply) => reply.type('text/html; charset=utf-8').send(await readFile(new URL('index.html', PUBLIC_DIR))));
  app.get<{ Params: { file: string } }>('/static/:file', PAGE, async (req, reply) => {
    const type = STATIC.get(req.params.file);
    if (type === undefined) return reply.code(404).send({ error: 'not_found', message: 'no such file' });
    return reply.type(type).send(await readFile(new URL(req.params.file, PUBLIC_DIR)));
  });

  // reads
  app.get('/api/symbols', READ, async () => ({ ...(await readSymbols(redis, cfg.symbols, Date.now())), console: info }));
  app.get('/api/services', READ, async () => readServices(redis, cfg.symbols, Date.now()));
  app.get('/api/events', READ, async (req, reply) => {
    const q = EventsQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send({ error: 'bad_request', message: `${q.error.issues[0]?.path.join('.') ?? ''}: ${q.error.issues[0]?.message ?? 'bad query'}` });
    return { events: await readEvents(redis, q.data) };
  });
  app.get<{ Params: { id: string } }>('/api/plans/:id', READ, async (req, reply) => {
    if (!/^[A-Za-z0-9:._-]{1,64}$/.test(req.params.id)) return reply.code(400).send({ error: 'bad_request', message: 'a plan id is 1-64 of [A-Za-z0-9:._-]' });
    const t = await tracePlan(redis, req.params.id);
    const found = t.submitted.length > 0 || t.results.length > 0 || t.deadLetters.length > 0 || Object.keys(t.permits.governor).length > 0 || Object.keys(t.permits.p33).length > 0;
    return { found, ...t };
  });
  app.get('/api/stream', READ, (req, reply) => {
    // each stream holds a socket and a subscriber for as long as the client wants: a bound, so a script
    // opening streams in a loop cannot exhaust the process
    if (openStreams >= maxStreams) {
      logger.warn({ method: req.method, route: '/api/stream', refused: 'too_many_streams', status: 503, open: openStreams }, `console: GET /api/stream refused (too_many_streams)`);
      return reply.code(503).send({ error: 'too_many_streams', message: `${openStreams} live streams are open already (at most ${maxStreams}): close a console tab and reload` });
    }
    openStreams++;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 2000\n\n');
    send('hello', { console: info, ts_ms: Date.now() });
    const unsubscribe = hub.subscribe(send);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.raw.on('close', () => {
      openStreams--;
      clearInterval(keepAlive);
      unsubscribe();
    });
  });

  // actions
  const act = async (req: FastifyRequest, what: string, symbolRaw: string | null, run: (symbol: string, by: string) => Promise<ActionReply>, bodyOperator: string | undefined): Promise<ActionReply> => {
    const who = operatorOf(req.headers['x-p3-operator'], bodyOperator);
    if (!who.ok) return who.reply;
    let symbol = '';
    if (symbolRaw !== null) {
      const s = checkSymbol(symbolRaw, cfg);
      if (!s.ok) return s.reply;
      symbol = s.symbol;
      const unknown = await checkKnownSymbol(redis, cfg, symbol);
      if (unknown) return unknown;
    }
    const r = await run(symbol, who.by);
    const body = req.body as { reason?: string } | undefined;
    logger.info({ action: what, symbol, by: who.by, reason: body?.reason ?? '', status: r.status }, `console: ${what}${symbol ? ` ${symbol}` : ''} by ${who.by} -> ${r.status}`);
    return r;
  };
  app.post<{ Params: { symbol: string } }>('/api/holds/:symbol', ACTION, async (req, reply) => {
    const b = parseBody(HoldSetBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'hold set', req.params.symbol, (s, by) => holdSet(redis, cfg, s, by, b.value), b.value.operator));
  });
  app.delete<{ Params: { symbol: string } }>('/api/holds/:symbol', ACTION, async (req, reply) => {
    const b = parseBody(HoldClearBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'hold clear', req.params.symbol, (s, by) => holdClear(redis, s, by, b.value), b.value.operator));
  });
  app.post<{ Params: { symbol: string } }>('/api/ledger/:symbol', ACTION, async (req, reply) => {
    const b = parseBody(LedgerSetBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'ledger set', req.params.symbol, (s, by) => ledgerSet(redis, s, by, b.value), b.value.operator));
  });
  app.post('/api/trading-state', ACTION, async (req, reply) => {
    const b = parseBody(TradingStateBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'trading-state set', null, (_s, by) => tradingStateSet(redis, cfg, by, b.value), b.value.operator));
  });
  app.post('/api/flatten', ACTION, async (req, reply) => {
    const b = parseBody(FlattenBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'flatten', null, (_s, by) => flatten(redis, cfg, by, b.value), b.value.operator));
  });

  await app.listen({ host: cfg.host, port: cfg.port });
  const port = (app.server.address() as AddressInfo).port;
  const shownHost = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host;
  return {
    url: `http://${shownHost}:${port}/`,
    port,
    app,
    close: async () => {
      await hub.close();
      await app.close();
    },
  };
}
