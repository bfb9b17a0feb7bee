/**
 * The console's HTTP server (fastify): the page (static files from src/console/public, no CDN) and the
 * JSON API. Every `/api` request passes auth.ts before its body is even parsed (onRequest hook);
 * actions then validate their body (actions.ts) and are logged with who and why.
 *
 * API (README "Operator console"): GET /api/symbols, /api/events?symbol=&since=&limit=, /api/plans/:id,
 * /api/services, /api/stream (SSE); POST|DELETE /api/holds/:symbol, POST /api/ledger/:symbol,
 * POST /api/trading-state, POST /api/flatten. Errors are `{error, message}` with 400/401/403/404/409/421/500.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { z } from 'zod';
import { tracePlan } from '../plans/trace.js';
import { checkAction, checkRead, type Refusal } from './auth.js';
import { flatten, FlattenBody, checkKnownSymbol, checkSymbol, holdClear, HoldClearBody, holdSet, HoldSetBody, ledgerSet, LedgerSetBody, operatorOf, parseBody, tradingStateSet, TradingStateBody, type ActionReply } from './actions.js';
import type { ConsoleConfig } from './config.js';
import { ConsoleHub } from './hub.js';
import { readEvents, readServices, readSymbols } from './read-model.js';
import { fromRoot } from '../lib/root.js';

/** Static files of the page: URL name → content type. Nothing else under /static is served. */
const STATIC: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'actions.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};
/** The page's files, read from the source tree also when this module runs compiled (src/lib/root.ts). */
const PUBLIC_DIR = pathToFileURL(`${fromRoot('src/console/public')}/`);

/** Headers of every answer: no framing, no sniffing, no referrer, same-origin scripts only. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

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

function refuse(reply: FastifyReply, r: Refusal | ActionReply): FastifyReply {
  if ('body' in r) return reply.code(r.status).send(r.body);
  return reply.code(r.status).send({ error: r.error, message: r.message });
}

/**
 * Builds and starts the console on `cfg.host:cfg.port`.
 * @param redis a connection with the scripts loaded (createRedis); the console does not close it
 * @throws when the port cannot be bound
 */
export async function startConsole(redis: Redis, cfg: ConsoleConfig, logger: Logger): Promise<RunningConsole> {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024, forceCloseConnections: true });
  const hub = new ConsoleHub({ redis, allowlist: cfg.symbols, logger });
  const info: ConsoleInfo = { actions_enabled: cfg.token !== null, loopback: cfg.loopback, hold_ttl_sec: cfg.holdTtlSec, flatten_available: cfg.token !== null && cfg.operatorKey !== null };

  app.addHook('onRequest', async (req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    if (!req.url.startsWith('/api/')) return;
    const action = req.method !== 'GET' && req.method !== 'HEAD';
    const refusal = action ? checkAction(req.headers, cfg) : checkRead(req.headers, cfg);
    if (refusal) {
      if (action) logger.warn({ method: req.method, url: req.url, refused: refusal.error, operator: req.headers['x-p3-operator'] ?? '' }, `console: ${req.method} ${req.url} refused (${refusal.error})`);
      return refuse(reply, refusal);
    }
  });
  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode ?? 500;
    if (status >= 500) {
      logger.error({ err: err.message }, 'console: request failed');
      return reply.code(500).send({ error: 'internal', message: `the console could not do it: ${err.message}` });
    }
    return reply.code(status).send({ error: status === 415 ? 'bad_request' : 'bad_request', message: status === 415 ? 'the body must be JSON (Content-Type: application/json)' : err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no such page or API: ${req.method} ${req.url}` }));

  // the page
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(await readFile(new URL('index.html', PUBLIC_DIR))));
  app.get<{ Params: { file: string } }>('/static/:file', async (req, reply) => {
    const type = STATIC[req.params.file];
    if (!type) return reply.code(404).send({ error: 'not_found', message: 'no such file' });
    return reply.type(type).send(await readFile(new URL(req.params.file, PUBLIC_DIR)));
  });

  // reads
  app.get('/api/symbols', async () => ({ ...(await readSymbols(redis, cfg.symbols, Date.now())), console: info }));
  app.get('/api/services', async () => readServices(redis, cfg.symbols, Date.now()));
  app.get('/api/events', async (req, reply) => {
    const q = EventsQuery.safeParse(req.query);
    if (!q.success) return reply.code(400).send({ error: 'bad_request', message: `${q.error.issues[0]?.path.join('.') ?? ''}: ${q.error.issues[0]?.message ?? 'bad query'}` });
    return { events: await readEvents(redis, q.data) };
  });
  app.get<{ Params: { id: string } }>('/api/plans/:id', async (req, reply) => {
    if (!/^[A-Za-z0-9:._-]{1,64}$/.test(req.params.id)) return reply.code(400).send({ error: 'bad_request', message: 'a plan id is 1-64 of [A-Za-z0-9:._-]' });
    const t = await tracePlan(redis, req.params.id);
    const found = t.submitted.length > 0 || t.results.length > 0 || t.deadLetters.length > 0 || Object.keys(t.permits.governor).length > 0 || Object.keys(t.permits.p33).length > 0;
    return { found, ...t };
  });
  app.get('/api/stream', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (event: string, data: unknown) => res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    res.write('retry: 2000\n\n');
    send('hello', { console: info, ts_ms: Date.now() });
    const unsubscribe = hub.subscribe(send);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), 15_000);
    req.raw.on('close', () => {
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
  app.post<{ Params: { symbol: string } }>('/api/holds/:symbol', async (req, reply) => {
    const b = parseBody(HoldSetBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'hold set', req.params.symbol, (s, by) => holdSet(redis, cfg, s, by, b.value), b.value.operator));
  });
  app.delete<{ Params: { symbol: string } }>('/api/holds/:symbol', async (req, reply) => {
    const b = parseBody(HoldClearBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'hold clear', req.params.symbol, (s, by) => holdClear(redis, s, by, b.value), b.value.operator));
  });
  app.post<{ Params: { symbol: string } }>('/api/ledger/:symbol', async (req, reply) => {
    const b = parseBody(LedgerSetBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'ledger set', req.params.symbol, (s, by) => ledgerSet(redis, s, by, b.value), b.value.operator));
  });
  app.post('/api/trading-state', async (req, reply) => {
    const b = parseBody(TradingStateBody, req.body);
    if (!b.ok) return refuse(reply, b.reply);
    return refuse(reply, await act(req, 'trading-state set', null, (_s, by) => tradingStateSet(redis, cfg, by, b.value), b.value.operator));
  });
  app.post('/api/flatten', async (req, reply) => {
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
