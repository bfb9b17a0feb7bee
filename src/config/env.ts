/**
 * Configuration from environment variables, validated with zod. A bad value stops the process at start
 * with exit code 2 and a message naming the variable (docs/architecture.md#interfaces).
 */
import { z } from 'zod';
import { parseDecimal } from '../domain/decimal.js';
import { ConfigError } from './errors.js';

export { ConfigError } from './errors.js';

/** Process environment shape. */
export type Env = Record<string, string | undefined>;

/** Log levels accepted in `*_LOG_LEVEL` variables (seed 001 uses upper-case `INFO`); the logger's levels (pino). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Names of variables that hold a secret (tokens, keys, passwords): their values never appear in a message. */
export const SECRET_VARIABLE = /TOKEN|SECRET|PASSWORD|(?:^|_)KEY(?:_|$)/;

/** A refused value as a message shows it: JSON-quoted, or only its length for a secret variable. */
function shownValue(variable: string, v: string | undefined): string {
  if (v === undefined || !SECRET_VARIABLE.test(variable)) return JSON.stringify(v);
  return `a value of ${v.length} characters, not shown`;
}

/**
 * Parses the variables named by `shape` from `env` with zod.
 * @throws ConfigError naming the first invalid variable and quoting the refused value, except for a
 *   secret variable ({@link SECRET_VARIABLE}), whose value is described by its length only
 */
export function parseEnv<S extends z.ZodRawShape>(shape: S, env: Env): z.infer<z.ZodObject<S>> {
  const picked: Record<string, string | undefined> = {};
  for (const k of Object.keys(shape)) {
    const v = env[k];
    picked[k] = v === undefined || v.trim() === '' ? undefined : v.trim();
  }
  const res = z.object(shape).safeParse(picked);
  if (!res.success) {
    const issue = res.error.issues[0];
    const variable = String(issue?.path[0] ?? 'environment');
    throw new ConfigError(variable, `${issue?.message ?? 'invalid'} (got ${shownValue(variable, picked[variable])})`);
  }
  return res.data;
}

/** Zod field helpers for environment variables (all inputs are strings). */
export const envz = {
  /** A positive number (seconds or milliseconds, as the variable's name says). */
  positive: (def: number) => z.coerce.number().refine((n) => Number.isFinite(n) && n > 0, 'must be a positive number').default(def),
  nonNegative: (def: number) => z.coerce.number().refine((n) => Number.isFinite(n) && n >= 0, 'must be a number >= 0').default(def),
  int: (def: number, min = 0, max = 2 ** 31) =>
    z.coerce.number().int('must be an integer').min(min).max(max).default(def),
  port: (def: number) => z.coerce.number().int('must be an integer').min(0).max(65535).default(def),
  /** A boolean: true/false/1/0/yes/no (case-insensitive). */
  bool: (def: boolean) =>
    z
      .string()
      .transform((s, ctx) => {
        const v = s.toLowerCase();
        if (['true', '1', 'yes', 'on'].includes(v)) return true;
        if (['false', '0', 'no', 'off'].includes(v)) return false;
        ctx.addIssue({ code: 'custom', message: 'must be true or false' });
        return z.NEVER;
      })
      .optional()
      .transform((v) => v ?? def),
  /** A non-negative decimal kept as a string (exact). */
  decimal: (def: string) =>
    z
      .string()
      .refine((s) => {
        const d = parseDecimal(s);
        return d !== null && !d.isNeg();
      }, 'must be a non-negative decimal')
      .default(def),
  /** Comma-separated upper-case symbols, e.g. `BTCUSDT,ETHUSDT`. */
  symbols: (def: string[] = []) =>
    z
      .string()
      .transform((s, ctx) => {
        const list = s
          .split(',')
          .map((x) => x.trim().toUpperCase())
          .filter(Boolean);
        for (const sym of list) {
          if (!/^[A-Z0-9]{2,30}$/.test(sym)) {
            ctx.addIssue({ code: 'custom', message: `bad symbol ${sym}` });
            return z.NEVER;
          }
        }
        return [...new Set(list)];
      })
      .optional()
      .transform((v) => v ?? def),
  logLevel: (def: LogLevel = 'info') =>
    z
      .string()
      .transform((s) => s.toLowerCase())
      .pipe(z.enum(LOG_LEVELS))
      .optional()
      .transform((v) => v ?? def),
  /**
   * A required secret (an HMAC key): missing or empty stops the process naming the variable.
   * @param why what the key is for, quoted in the error (e.g. `the governor signs every permit with it`)
   */
  secret: (why: string) => z.string({ error: `must be set (${why})` }).min(1, `must not be empty (${why})`),
  redisUrl: () => z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
};

/**
 * Absolute quantity tolerances (base-asset): `P3_QTY_TOLERANCE_ABS_<SYM>` per symbol, else
 * `P3_QTY_TOLERANCE_ABS`, else the symbol's lot step from the snapshot (`step_size`), else 0 (exact match:
 * fail closed). Shared by the position brain and the reconcile engine (docs/architecture.md#quantities).
 */
export interface ToleranceConfig {
  defaultAbs: string | null;
  perSymbol: Record<string, string>;
}

/**
 * Reads the tolerance variables from `env`.
 * @throws ConfigError for a value that is not a non-negative decimal
 */
export function parseToleranceConfig(env: Env): ToleranceConfig {
  const perSymbol: Record<string, string> = {};
  let defaultAbs: string | null = null;
  for (const [k, v] of Object.entries(env)) {
    if (v === undefined || v.trim() === '') continue;
    if (k !== 'P3_QTY_TOLERANCE_ABS' && !k.startsWith('P3_QTY_TOLERANCE_ABS_')) continue;
    const d = parseDecimal(v);
    if (d === null || d.isNeg()) throw new ConfigError(k, `must be a non-negative decimal (got ${JSON.stringify(v)})`);
    if (k === 'P3_QTY_TOLERANCE_ABS') defaultAbs = v.trim();
    else perSymbol[k.slice('P3_QTY_TOLERANCE_ABS_'.length).toUpperCase()] = v.trim();
  }
  return { defaultAbs, perSymbol };
}
