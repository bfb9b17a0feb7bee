/**
 * Request checks of the operator console, as pure functions over the request headers (no cookies exist,
 * so there is no ambient credential a cross-site page could ride on):
 * - Host: while bound to loopback, the Host header must name a loopback host (a DNS-rebinding page at
 *   `evil.example` resolving to 127.0.0.1 is refused, so it can neither read the API nor show the page);
 * - cross-site: `Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` other than the console's
 *   own, is refused for every API request;
 * - token: actions always need `Authorization: Bearer <P3_CONSOLE_TOKEN>` (compared in constant time);
 *   reads need it too when the console is not on loopback; no token configured → actions disabled.
 * Each refusal has an HTTP status, a stable `error` code and a sentence for a person.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isLoopbackHost, type ConsoleConfig } from './config.js';

/** Why a request was refused (the JSON body of the answer is `{error, message}`). */
export interface Refusal {
  status: number;
  error: 'bad_host' | 'cross_site' | 'actions_disabled' | 'missing_token' | 'bad_token' | 'bad_path' | 'duplicate_header' | 'unsupported_media_type';
  message: string;
}

/** The headers the checks look at (lower-case names, as node gives them). */
export type Headers = Record<string, string | string[] | undefined>;

const one = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

function hostOf(hostHeader: string): string {
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(hostHeader.trim());
  return m ? m[1]! : hostHeader;
}

/**
 * Host header check (every request, the page too): while bound to loopback the Host must name a loopback
 * host. The page is refused as well under a foreign name, or a rebinding site would show the real console
 * on its own origin and keep the token an operator types into it.
 */
export function checkHost(h: Headers, cfg: Pick<ConsoleConfig, 'loopback'>): Refusal | null {
  const host = one(h.host) ?? '';
  if (cfg.loopback && !isLoopbackHost(hostOf(host))) {
    return { status: 421, error: 'bad_host', message: `this console answers only to a loopback Host (got ${JSON.stringify(host.slice(0, 100))}): open it as http://127.0.0.1:<port>/` };
  }
  return null;
}

/** Host header and cross-site checks (every API request). */
export function checkOrigin(h: Headers, cfg: Pick<ConsoleConfig, 'loopback'>): Refusal | null {
  const hostRefusal = checkHost(h, cfg);
  if (hostRefusal) return hostRefusal;
  const host = one(h.host) ?? '';
  const site = one(h['sec-fetch-site']);
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return { status: 403, error: 'cross_site', message: `cross-site request refused (Sec-Fetch-Site: ${site}): use the console's own page` };
  }
  const origin = one(h.origin);
  // https: the console behind a TLS-terminating proxy that passes the Host through
  if (origin !== undefined && origin !== 'null' && origin !== `http://${host}` && origin !== `https://${host}`) {
    return { status: 403, error: 'cross_site', message: `cross-site request refused (Origin ${origin} is not this console, http://${host})` };
  }
  if (origin === 'null') return { status: 403, error: 'cross_site', message: 'cross-site request refused (Origin: null)' };
  return null;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Bearer token check. `purpose` only changes the wording of the refusal. */
export function checkToken(h: Headers, token: string | null, purpose: 'action' | 'read'): Refusal | null {
  if (token === null) {
    return { status: 403, error: 'actions_disabled', message: 'actions are disabled: P3_CONSOLE_TOKEN is not set where `p3 console` runs (set it and restart the console)' };
  }
  const auth = one(h.authorization);
  if (!auth) {
    return { status: 401, error: 'missing_token', message: `${purpose === 'action' ? 'actions need' : 'this console (not on loopback) needs'} the header Authorization: Bearer <P3_CONSOLE_TOKEN>` };
  }
  const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
  if (!m || !timingSafeEqual(digest(m[1]!), digest(token))) return { status: 401, error: 'bad_token', message: 'wrong console token (Authorization: Bearer <P3_CONSOLE_TOKEN>)' };
  return null;
}

/** All checks of a read (`GET /api/...`). */
export function checkRead(h: Headers, cfg: Pick<ConsoleConfig, 'loopback' | 'token'>): Refusal | null {
  return checkOrigin(h, cfg) ?? (cfg.loopback ? null : checkToken(h, cfg.token, 'read'));
}

/** All checks of an action (`POST`/`DELETE /api/...`). */
export function checkAction(h: Headers, cfg: Pick<ConsoleConfig, 'loopback' | 'token'>): Refusal | null {
  return checkOrigin(h, cfg) ?? checkToken(h, cfg.token, 'action');
}
