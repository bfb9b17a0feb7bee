/**
 * Governor configuration (`GOVERNOR_*`, docs/architecture.md#interfaces). A bad value throws `ConfigError` naming the
 * variable (the CLI exits 2).
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, type Env } from '../../config/env.js';
import { Decimal, parseDecimal } from '../../domain/decimal.js';
import type { GovernorMode } from '../../domain/governor.js';
import { checkKeyVariables } from '../../config/keys.js';
import { parseRiskConfig, type RiskConfig } from './risk/config.js';

/** Parsed governor configuration. Durations in seconds unless the name says ms. */
export interface GovernorConfig {
  redisUrl: string;
  logLevel: z.infer<ReturnType<typeof envz.logLevel>>;
  instanceId?: string;
  metricsPort: number;
  /** `GOVERNOR_MODE`: `live` (default, every limit) or `testnet`/`paper` (auto-approve: skips only the notional cap). */
  mode: GovernorMode;
  allowlist: string[];
  snapshotFreshnessSec: number;
  maxPlanAgeSec: number;
  futureSkewSec: number;
  /** `GOVERNOR_MAX_ORDER_USD` (old name `GOVERNOR_MAX_NOTIONAL_USD` still read): max qty × mark of one order, USD. */
  maxNotionalUsd: Decimal;
  /** `GOVERNOR_MAX_ORDER_USD_<SYM>` (or `GOVERNOR_MAX_NOTIONAL_USD_<SYM>`). */
  maxNotionalUsdBySymbol: Record<string, Decimal>;
  /** `GOVERNOR_MAX_POSITION_USD`: max |position after an entry| × mark, USD; null = no limit. */
  maxPositionUsd: Decimal | null;
  /** `GOVERNOR_MAX_POSITION_USD_<SYM>`. */
  maxPositionUsdBySymbol: Record<string, Decimal>;
  /** `GOVERNOR_MAX_GROSS_USD`: max Σ |position| × mark over the allowlist plus reservations, USD; null = no limit. */
  maxGrossUsd: Decimal | null;
  /** Global plan rate (tokens per minute) and burst. */
  ratePerMin: number;
  rateBurst: number;
  /** Per-symbol plan rate (default for every symbol), its per-symbol overrides and burst. */
  symbolRatePerMin: number;
  symbolRatePerMinBySymbol: Record<string, number>;
  symbolRateBurst: number;
  breakerWindowSec: number;
  breakerMaxErrors: number;
  breakerCooldownSec: number;
  permitTtlSec: number;
  group: string;
  claimIdleMs: number;
  /** `P3_KEY_GOVERNOR`: the key every governor permit is signed with (docs/architecture.md#least-privilege-and-signed-permits). Required. */
  permitKey: string;
  /** The pre-trade risk controls (`GOVERNOR_PRICE_COLLAR_BPS` ..., src/services/governor/risk/config.ts). */
  risk: RiskConfig;
}

const SHAPE = {
  REDIS_URL: envz.redisUrl(),
  P3_ALLOWLIST: envz.symbols(),
  P3_INSTANCE_ID: z.string().max(100).optional(),
  GOVERNOR_LOG_LEVEL: envz.logLevel(),
  GOVERNOR_PROMETHEUS_PORT: envz.port(8044),
  GOVERNOR_MODE: z
    .string()
    .transform((s) => s.toLowerCase())
    .pipe(z.enum(['testnet', 'paper', 'live']))
    .default('live'),
  GOVERNOR_SNAPSHOT_FRESHNESS_SEC: envz.positive(10),
  GOVERNOR_MAX_PLAN_AGE_SEC: envz.positive(30),
  GOVERNOR_PLAN_FUTURE_SKEW_SEC: envz.nonNegative(1),
  GOVERNOR_MAX_NOTIONAL_USD: envz.decimal('10000'),
  GOVERNOR_MAX_ORDER_USD: z.string().optional(),
  GOVERNOR_MAX_POSITION_USD: z.string().optional(),
  GOVERNOR_MAX_GROSS_USD: z.string().optional(),
  GOVERNOR_RATE_PER_MIN: envz.positive(60),
  GOVERNOR_RATE_BURST: envz.int(20, 1),
  GOVERNOR_SYMBOL_RATE_PER_MIN: envz.positive(12),
  GOVERNOR_SYMBOL_RATE_BURST: envz.int(5, 1),
  GOVERNOR_BREAKER_WINDOW_SEC: envz.int(300, 1),
  GOVERNOR_BREAKER_MAX_ERRORS: envz.int(5, 1),
  GOVERNOR_BREAKER_COOLDOWN_SEC: envz.int(600, 1),
  GOVERNOR_PERMIT_TTL_SEC: envz.int(60, 1),
  GOVERNOR_CONSUMER_GROUP: z.string().regex(/^[A-Za-z0-9:._-]{1,64}$/).default('governor'),
  GOVERNOR_CLAIM_IDLE_MS: envz.int(30_000, 100),
  P3_KEY_GOVERNOR: envz.secret('the governor signs every permit with it; the apply layer verifies it'),
};

/** Reads `<PREFIX><SYM>` variables (per-symbol overrides) with `parse`; throws ConfigError naming a bad one. */
function perSymbol<T>(env: Env, prefix: string, parse: (v: string) => T | null, what: string): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith(prefix) || v === undefined || v.trim() === '') continue;
    const sym = k.slice(prefix.length).toUpperCase();
    if (!/^[A-Z0-9]{2,30}$/.test(sym)) continue;
    const p = parse(v.trim());
    if (p === null) throw new ConfigError(k, `${what} (got ${JSON.stringify(v)})`);
    out[sym] = p;
  }
  return out;
}

/**
 * Parses the governor's variables from `env`.
 * @throws ConfigError naming the first bad variable; for a placeholder `P3_KEY_*` or two sharing a value (src/config/keys.ts)
 */
export function parseGovernorConfig(env: Env): GovernorConfig {
  const e = parseEnv(SHAPE, env);
  checkKeyVariables(env);
  const usd = (v: string) => {
    const d = parseDecimal(v);
    return d !== null && !d.isNeg() ? new Decimal(d) : null;
  };
  const optionalUsd = (name: 'GOVERNOR_MAX_ORDER_USD' | 'GOVERNOR_MAX_POSITION_USD' | 'GOVERNOR_MAX_GROSS_USD'): Decimal | null => {
    const raw = e[name];
    if (raw === undefined) return null;
    const d = usd(raw);
    if (d === null) throw new ConfigError(name, `must be a non-negative decimal (got ${JSON.stringify(raw)})`);
    return d;
  };
  // the round-2 name wins; the old GOVERNOR_MAX_NOTIONAL_USD[_<SYM>] is still read
  const notional = { ...perSymbol(env, 'GOVERNOR_MAX_NOTIONAL_USD_', usd, 'must be a non-negative decimal'), ...perSymbol(env, 'GOVERNOR_MAX_ORDER_USD_', usd, 'must be a non-negative decimal') };
  const maxOrder = optionalUsd('GOVERNOR_MAX_ORDER_USD');
  // the gross exposure is Σ over the allowlist: with no allowlist (any symbol served) it cannot be known
  if (optionalUsd('GOVERNOR_MAX_GROSS_USD') !== null && e.P3_ALLOWLIST.length === 0) {
    throw new ConfigError('GOVERNOR_MAX_GROSS_USD', 'needs P3_ALLOWLIST: the gross exposure is summed over the allowlist');
  }
  const rates = perSymbol(
    env,
    'GOVERNOR_RATE_PER_MIN_',
    (v) => {
      const n = Number(v);
      return Number.isFinite(n) && n > 0 ? n : null;
    },
    'must be a positive number',
  );
  return {
    redisUrl: e.REDIS_URL,
    logLevel: e.GOVERNOR_LOG_LEVEL,
    instanceId: e.P3_INSTANCE_ID,
    metricsPort: e.GOVERNOR_PROMETHEUS_PORT,
    mode: e.GOVERNOR_MODE,
    allowlist: e.P3_ALLOWLIST,
    snapshotFreshnessSec: e.GOVERNOR_SNAPSHOT_FRESHNESS_SEC,
    maxPlanAgeSec: e.GOVERNOR_MAX_PLAN_AGE_SEC,
    futureSkewSec: e.GOVERNOR_PLAN_FUTURE_SKEW_SEC,
    maxNotionalUsd: maxOrder ?? new Decimal(e.GOVERNOR_MAX_NOTIONAL_USD),
    maxNotionalUsdBySymbol: notional,
    maxPositionUsd: optionalUsd('GOVERNOR_MAX_POSITION_USD'),
    maxPositionUsdBySymbol: perSymbol(env, 'GOVERNOR_MAX_POSITION_USD_', usd, 'must be a non-negative decimal'),
    maxGrossUsd: optionalUsd('GOVERNOR_MAX_GROSS_USD'),
    ratePerMin: e.GOVERNOR_RATE_PER_MIN,
    rateBurst: e.GOVERNOR_RATE_BURST,
    symbolRatePerMin: e.GOVERNOR_SYMBOL_RATE_PER_MIN,
    symbolRatePerMinBySymbol: rates,
    symbolRateBurst: e.GOVERNOR_SYMBOL_RATE_BURST,
    breakerWindowSec: e.GOVERNOR_BREAKER_WINDOW_SEC,
    breakerMaxErrors: e.GOVERNOR_BREAKER_MAX_ERRORS,
    breakerCooldownSec: e.GOVERNOR_BREAKER_COOLDOWN_SEC,
    permitTtlSec: e.GOVERNOR_PERMIT_TTL_SEC,
    group: e.GOVERNOR_CONSUMER_GROUP,
    claimIdleMs: e.GOVERNOR_CLAIM_IDLE_MS,
    permitKey: e.P3_KEY_GOVERNOR,
    risk: parseRiskConfig(env),
  };
}
