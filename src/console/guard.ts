/**
 * The console's gate: every request passes one onRequest hook that decides from the route the router
 * MATCHED (its declared access level), never from the raw text of the URL, so no spelling of a path can
 * reach a handler without its checks. In order:
 * 1. the request target must be a canonical path (request-shape.ts), else 400 `bad_path`;
 * 2. Host, Authorization, Origin, ... at most once, else 400 `duplicate_header`;
 * 3. no route matched: the 404 answer, before any handler;
 * 4. the route's access level: `page` (no data: only the Host check), `read` (Host and cross-site checks; the token too
 *    off loopback), `action` (those checks, the token always, and a JSON Content-Type).
 * A route registered without an access level stops the console at start (onRoute throws). Every refusal
 * is a warn log line (method, route, reason) and `{error, message}`; an internal error is a 500 whose body
 * names no file, path or library message (those go to the log only).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { checkAction, checkHost, checkRead, type Refusal } from './auth.js';
import type { ConsoleConfig } from './config.js';
import { duplicateHeaderRefusal, mediaTypeRefusal, pathRefusal } from './request-shape.js';

/** Who may use a route: the page (no data), a read, or an action (writes to Redis). */
export type Access = 'page' | 'read' | 'action';
const ACCESS_LEVELS: readonly unknown[] = ['page', 'read', 'action'];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Required on every console route (the gate refuses to register a route without it). */
    access?: Access;
  }
}

/** Headers of every answer: no framing, no sniffing, no referrer, same-origin scripts only. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/** A request target as logged and echoed: at most 200 characters. */
const shown = (url: string | undefined): string => {
  const u = url ?? '';
  return u.length > 200 ? `${u.slice(0, 200)}...` : u;
};

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

/** The checks of an access level, for a request already in canonical form. */
function accessRefusal(access: unknown, req: FastifyRequest, cfg: Pick<ConsoleConfig, 'loopback' | 'token'>): Refusal | null {
  // the page holds no data: no token, and a link from another site may open it; but only under its own name
  if (access === 'page') return checkHost(req.headers, cfg);
  if (access === 'read') return checkRead(req.headers, cfg);
  // 'action', and anything unexpected: the strictest checks
  return checkAction(req.headers, cfg) ?? mediaTypeRefusal(one(req.headers['content-type']));
}

/** Sends a refusal as `{error, message}` with its status. */
export function sendRefusal(reply: FastifyReply, r: Refusal): FastifyReply {
  return reply.code(r.status).send({ error: r.error, message: r.message });
}

/**
 * Installs the gate, the 404 answer and the error handler on `app` (before any route is registered).
 * @throws Error later, from `app.get/post/...`, when a route has no `config.access`
 */
export function installGuard(app: FastifyInstance, cfg: Pick<ConsoleConfig, 'loopback' | 'token'>, logger: Logger): void {
  app.addHook('onRoute', (route) => {
    if (!ACCESS_LEVELS.includes(route.config?.access)) {
      throw new Error(`console route ${String(route.method)} ${route.url} has no access level (config.access: page, read or action)`);
    }
  });
  app.addHook('onRequest', async (req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    const route = req.is404 ? null : (req.routeOptions.url ?? null);
    const refusal = pathRefusal(req.raw.url ?? '') ?? duplicateHeaderRefusal(req.raw.rawHeaders) ?? (route === null ? null : accessRefusal(req.routeOptions.config.access, req, cfg));
    if (!refusal) return;
    const operator = one(req.headers['x-p3-operator']) ?? '';
    logger.warn(
      { method: req.method, route, url: shown(req.raw.url), refused: refusal.error, status: refusal.status, operator: shown(operator) },
      `console: ${req.method} ${route ?? shown(req.raw.url)} refused (${refusal.error})`,
    );
    return sendRefusal(reply, refusal);
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: 'not_found', message: `no such page or API: ${req.method} ${shown(req.raw.url)} (paths are case-sensitive, without a trailing "/")` }));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      logger.error({ method: req.method, route: req.routeOptions.url ?? null, err: err.message, stack: err.stack }, 'console: request failed');
      return reply.code(500).send({ error: 'internal', message: 'the console could not do it: an internal error (the console\'s log has the details); an action may have been done in part: check the timeline or p3 status before retrying' });
    }
    const error = status === 413 ? 'body_too_large' : status === 415 ? 'unsupported_media_type' : 'bad_request';
    const message = status === 413 ? 'the body is too large (at most 16 KiB)' : status === 415 ? 'the body must be JSON (Content-Type: application/json)' : err.message;
    logger.warn({ method: req.method, route: req.routeOptions.url ?? null, refused: error, status, code: err.code ?? '' }, `console: ${req.method} ${req.routeOptions.url ?? shown(req.raw.url)} refused (${error})`);
    return reply.code(status).send({ error, message });
  });
}

/**
 * Fastify's answer to a request it cannot route at all (a broken percent-encoding, a bad header): the
 * same `{error, message}` shape and log line as every other refusal. Pass as `frameworkErrors`.
 */
export function frameworkErrors(logger: Logger): (err: Error & { code?: string }, req: FastifyRequest, reply: FastifyReply) => void {
  return (err, req, reply) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    logger.warn({ method: req.method, route: null, url: shown(req.raw.url), refused: 'bad_path', code: err.code ?? '' }, `console: ${req.method} ${shown(req.raw.url)} refused (bad_path)`);
    void reply.code(400).send({ error: 'bad_path', message: 'the request path is not in canonical form: it cannot be decoded' });
  };
}
