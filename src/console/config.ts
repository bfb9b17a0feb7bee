/**
 * Configuration of the operator console (`p3 console`): address, port and the action token.
 *
 * Invariants:
 * - on a loopback address the page and reads are open to local users; actions need the token;
 * - on any other address every request (reads too) needs the token, and the console refuses to start
 *   without one (ConfigError → exit 2);
 * - no token configured → actions are disabled (refused with 403 `actions_disabled`), never open.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError, envz, parseEnv, type Env } from '../config/env.js';
import { checkKeyVariables, isPlaceholderSecret } from '../config/keys.js';

/** Default TCP port of the console. */
export const CONSOLE_DEFAULT_PORT = 8040;
/** Default address: loopback only. */
export const CONSOLE_DEFAULT_HOST = '127.0.0.1';
/** Shortest accepted token (characters): a guessable token would be worse than none. */
export const CONSOLE_TOKEN_MIN_LENGTH = 16;

/** Validated console configuration. */
export interface ConsoleConfig {
  host: string;
  /** TCP port (0 = a free port). */
  port: number;
  /** `P3_CONSOLE_TOKEN`, null when unset (actions disabled). */
  token: string | null;
  /** True when `host` is a loopback address (reads open without the token). */
  loopback: boolean;
  /** Symbols shown (P34_ALLOWLIST, else P3_ALLOWLIST); empty = every symbol found by SCAN. */
  symbols: string[];
  /** Default lease of an operator hold set from the page, seconds (`P34_HOLD_TTL_SEC`, 900). */
  holdTtlSec: number;
  /** `P3_KEY_OPERATOR` (signs FLATTEN plans), null when unset: flatten is then unavailable. */
  operatorKey: string | null;
}

/** True for `localhost`, 127.0.0.0/8, `::1` (and `[::1]`). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/**
 * Reads and validates the console's configuration from the CLI options and the environment.
 * @throws ConfigError naming `--port`, `--host` or `P3_CONSOLE_TOKEN` (exit 2), or a placeholder `P3_KEY_*`
 *   or two sharing a value (src/config/keys.ts)
 */
export function consoleConfig(opts: { host?: string; port?: string | number }, env: Env): ConsoleConfig {
  const cli = parseEnv(
    {
      '--port': envz.port(CONSOLE_DEFAULT_PORT),
      '--host': z.string().regex(/^[A-Za-z0-9.:[\]-]{1,255}$/, 'must be an address or host name').default(CONSOLE_DEFAULT_HOST),
    },
    { '--port': opts.port === undefined ? undefined : String(opts.port), '--host': opts.host },
  );
  const e = parseEnv(
    {
      P3_CONSOLE_TOKEN: z
        .string()
        .min(CONSOLE_TOKEN_MIN_LENGTH, `must be at least ${CONSOLE_TOKEN_MIN_LENGTH} characters`)
        .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
        .refine((t) => !isPlaceholderSecret(t), 'is a placeholder, not a token (e.g. openssl rand -hex 24)')
        .optional(),
      P34_ALLOWLIST: envz.symbols(),
      P3_ALLOWLIST: envz.symbols(),
      P34_HOLD_TTL_SEC: envz.int(900, 1, 86_400 * 7),
    },
    env,
  );
  checkKeyVariables(env);
  const loopback = isLoopbackHost(cli['--host']);
  if (!loopback && !e.P3_CONSOLE_TOKEN) {
    throw new ConfigError('P3_CONSOLE_TOKEN', `required when the console listens on ${cli['--host']} (not loopback): every request, reads included, must carry it; set P3_CONSOLE_TOKEN or use --host 127.0.0.1`);
  }
  return {
    host: cli['--host'],
    port: cli['--port'],
    token: e.P3_CONSOLE_TOKEN ?? null,
    loopback,
    symbols: e.P34_ALLOWLIST.length > 0 ? e.P34_ALLOWLIST : e.P3_ALLOWLIST,
    holdTtlSec: e.P34_HOLD_TTL_SEC,
    operatorKey: env.P3_KEY_OPERATOR && env.P3_KEY_OPERATOR.trim() !== '' ? env.P3_KEY_OPERATOR : null,
  };
}
