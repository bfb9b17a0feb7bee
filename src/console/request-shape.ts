/**
 * Checks of a request's shape, before anything looks at who sent it: the request target must be a path
 * already in canonical form, the headers the other checks rely on must appear at most once, and an
 * action's body must be declared as JSON. Each is a pure function answering a {@link Refusal} or null.
 *
 * Why canonical form: the router decodes and normalises what it matches (`/%61pi/x` reaches `/api/x`), so
 * any check written against the raw text and any log line naming it could disagree with the route that
 * runs. A path with two spellings is refused (400 `bad_path`) instead of being guessed at.
 */
import type { Refusal } from './auth.js';

/** Characters a path segment may hold as they are; anything else must be percent-encoded. */
const SEGMENT = /^(?:[A-Za-z0-9\-._~:@]|%[0-9A-F]{2})+$/;
/** Characters that have exactly one spelling (RFC 3986 unreserved): never percent-encoded. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;
/** Longest request target accepted, characters. */
export const MAX_TARGET_LENGTH = 2048;

const badPath = (why: string): Refusal => ({ status: 400, error: 'bad_path', message: `the request path is not in canonical form: ${why}` });

/**
 * Refuses a request target (`req.url`, path and query as sent) that is not a canonical absolute path:
 * absolute-form (`http://host/...`) or asterisk-form targets, empty segments (`//`, a trailing `/`),
 * `.`/`..` segments, characters outside `A-Z a-z 0-9 - . _ ~ : @`, lower-case or broken percent-encoding,
 * and percent-encoded characters that have a plain spelling (`%61` for `a`, `%2E` for `.`) or are a
 * slash (`%2F`). The query (after `?`) is not checked here: the routes validate it.
 * @returns null when canonical, else a 400 `bad_path` refusal naming the problem
 */
export function pathRefusal(target: string): Refusal | null {
  if (target.length > MAX_TARGET_LENGTH) return badPath(`longer than ${MAX_TARGET_LENGTH} characters`);
  if (!target.startsWith('/')) return badPath('the target must be a path starting with "/" (absolute-form and asterisk-form targets are refused)');
  const q = target.indexOf('?');
  const path = q < 0 ? target : target.slice(0, q);
  if (path === '/') return null;
  for (const seg of path.slice(1).split('/')) {
    if (seg === '') return badPath('empty segment (a doubled or trailing "/")');
    if (seg === '.' || seg === '..') return badPath('a "." or ".." segment');
    if (!SEGMENT.test(seg)) return badPath('a character that must be percent-encoded, or lower-case or broken percent-encoding');
    for (const m of seg.matchAll(/%([0-9A-F]{2})/g)) {
      const c = String.fromCharCode(parseInt(m[1]!, 16));
      if (UNRESERVED.test(c)) return badPath(`"${m[0]}" must be written as "${c}"`);
      if (c === '/' || c === '\\') return badPath(`an encoded "${c}" ("${m[0]}")`);
    }
  }
  return null;
}

/** Headers whose single value another check reads (a second copy would be silently ignored by node). */
export const SINGLE_HEADERS = ['host', 'authorization', 'origin', 'sec-fetch-site', 'x-p3-operator', 'content-type', 'content-length', 'transfer-encoding'] as const;

/**
 * Refuses a request carrying one of {@link SINGLE_HEADERS} more than once: node keeps the first Host or
 * Authorization and drops the rest, while a proxy in front might have used the last.
 * @param rawHeaders node's `req.rawHeaders` (name, value, name, value, ...)
 * @returns null, or a 400 `duplicate_header` refusal naming the header
 */
export function duplicateHeaderRefusal(rawHeaders: readonly string[]): Refusal | null {
  const seen = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    if (!(SINGLE_HEADERS as readonly string[]).includes(name)) continue;
    if (seen.has(name)) return { status: 400, error: 'duplicate_header', message: `the header ${name} is sent more than once: send it once` };
    seen.add(name);
  }
  return null;
}

/**
 * Refuses an action whose `Content-Type` is not exactly `application/json` (optionally `; charset=utf-8`):
 * a form or `text/plain` post is what a page of another site can send without asking.
 * @returns null, or a 415 `unsupported_media_type` refusal
 */
export function mediaTypeRefusal(contentType: string | undefined): Refusal | null {
  if (contentType !== undefined && /^application\/json[ \t]*(?:;[ \t]*charset=(?:utf-8|"utf-8")[ \t]*)?$/i.test(contentType)) return null;
  return { status: 415, error: 'unsupported_media_type', message: 'an action\'s body must be JSON: send Content-Type: application/json' };
}
