/**
 * Configuration of the governor's pre-trade risk controls (docs/risk-controls.md). Every numeric setting
 * has a per-symbol override `<NAME>_<SYM>`; the value `off` switches a control off (globally or for one
 * symbol). A bad value throws `ConfigError` naming the variable (the CLI exits 2).
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `GOVERNOR_PRICE_COLLAR_BPS[_<SYM>]` | `100` | max mark vs the plan's `ref_price`, basis points |
 * | `GOVERNOR_MARK_INDEX_MAX_BPS[_<SYM>]` | `200` | without `ref_price`: max mark vs index price, basis points |
 * | `GOVERNOR_MARK_MAX_AGE_MS[_<SYM>]` | `5000` | max age of the mark price used for an entry, ms |
 * | `GOVERNOR_RESTRICTED_SYMBOLS` | empty | comma-separated symbols whose entries are denied (exits pass) |
 * | `GOVERNOR_MAX_ORDER_QTY[_<SYM>]` | off | max base quantity of one entry |
 * | `GOVERNOR_MAX_ORDER_PCT_OF_POSITION_LIMIT[_<SYM>]` | `50` | fat finger: max share (%) of the symbol's position limit in one entry (inactive without `GOVERNOR_MAX_POSITION_USD[_<SYM>]`) |
 * | `GOVERNOR_MAX_FILLS_PER_SYMBOL[_<SYM>]` | off | repeated-execution throttle: max fills of one symbol in the window |
 * | `GOVERNOR_MAX_FILLS_WINDOW_SEC` | `60` | the throttle's window, seconds |
 * | `GOVERNOR_MAX_DAILY_LOSS_USD` | off | loss limit: realized + unrealized loss of the UTC day that turns trading REDUCING |
 * | `GOVERNOR_LOSS_DAY_START_HOUR_UTC` | `0` | hour (UTC, 0-23) the loss limit's trading day starts |
 * | `GOVERNOR_LOSS_CHECK_INTERVAL_MS` | `2000` | how often the loss limit is evaluated, ms |
 */
import { ConfigError, envz, parseEnv, type Env } from '../../../config/env.js';
import { Decimal, parseDecimal } from '../../../domain/decimal.js';
import type { SymbolRiskSettings } from '../../../domain/risk-controls/index.js';

/** A setting with its per-symbol overrides; null = off. */
export interface PerSymbol<T> {
  default: T | null;
  bySymbol: Record<string, T | null>;
}

/** Parsed risk-control configuration. */
export interface RiskConfig {
  collarBps: PerSymbol<Decimal>;
  markIndexMaxBps: PerSymbol<Decimal>;
  markMaxAgeMs: PerSymbol<number>;
  restricted: string[];
  maxOrderQty: PerSymbol<Decimal>;
  maxOrderPctOfPositionLimit: PerSymbol<Decimal>;
  /** Repeated-execution throttle: max fills per symbol in the window; null = off. */
  maxFillsPerSymbol: PerSymbol<number>;
  /** `GOVERNOR_MAX_FILLS_WINDOW_SEC`. */
  maxFillsWindowSec: number;
  /** `GOVERNOR_MAX_DAILY_LOSS_USD`, USD (positive); null = off. */
  maxDailyLossUsd: Decimal | null;
  /** `GOVERNOR_LOSS_DAY_START_HOUR_UTC`: 0-23. */
  lossDayStartHourUtc: number;
  /** `GOVERNOR_LOSS_CHECK_INTERVAL_MS`. */
  lossCheckIntervalMs: number;
}

const SHAPE = {
  GOVERNOR_RESTRICTED_SYMBOLS: envz.symbols(),
  GOVERNOR_LOSS_CHECK_INTERVAL_MS: envz.int(2000, 100, 3_600_000),
  GOVERNOR_LOSS_DAY_START_HOUR_UTC: envz.int(0, 0, 23),
  GOVERNOR_MAX_FILLS_WINDOW_SEC: envz.int(60, 1, 86_400),
};

const OFF = /^off$/i;

function setting<T>(env: Env, name: string, def: string, parse: (v: string) => T | null, what: string): PerSymbol<T> {
  const read = (k: string, raw: string): T | null => {
    const v = raw.trim();
    if (OFF.test(v)) return null;
    const p = parse(v);
    if (p === null) throw new ConfigError(k, `${what}, or off (got ${JSON.stringify(raw)})`);
    return p;
  };
  const raw = env[name];
  const out: PerSymbol<T> = { default: read(name, raw === undefined || raw.trim() === '' ? def : raw), bySymbol: Object.create(null) as Record<string, T | null> };
  const prefix = `${name}_`;
  for (const [k, v] of Object.entries(env)) {
    if (!k.startsWith(prefix) || v === undefined || v.trim() === '') continue;
    const sym = k.slice(prefix.length).toUpperCase();
    if (!/^[A-Z0-9]{2,30}$/.test(sym)) continue;
    out.bySymbol[sym] = read(k, v);
  }
  return out;
}

const positiveDecimal = (v: string): Decimal | null => {
  const d = parseDecimal(v);
  return d !== null && d.gt(0) ? new Decimal(d) : null;
};
const percent = (v: string): Decimal | null => {
  const d = positiveDecimal(v);
  return d !== null && d.lte(100) ? d : null;
};
const positiveInt = (v: string): number | null => (/^\d+$/.test(v) && Number(v) > 0 && Number(v) <= 2 ** 31 ? Number(v) : null);

/**
 * Parses the risk-control variables (see the module comment).
 * @throws ConfigError naming the first bad variable
 */
export function parseRiskConfig(env: Env): RiskConfig {
  const e = parseEnv(SHAPE, env);
  const loss = setting(env, 'GOVERNOR_MAX_DAILY_LOSS_USD', 'off', positiveDecimal, 'must be a positive decimal (USD)');
  return {
    collarBps: setting(env, 'GOVERNOR_PRICE_COLLAR_BPS', '100', positiveDecimal, 'must be a positive decimal (basis points)'),
    markIndexMaxBps: setting(env, 'GOVERNOR_MARK_INDEX_MAX_BPS', '200', positiveDecimal, 'must be a positive decimal (basis points)'),
    markMaxAgeMs: setting(env, 'GOVERNOR_MARK_MAX_AGE_MS', '5000', positiveInt, 'must be a positive integer (ms)'),
    restricted: e.GOVERNOR_RESTRICTED_SYMBOLS,
    maxOrderQty: setting(env, 'GOVERNOR_MAX_ORDER_QTY', 'off', positiveDecimal, 'must be a positive decimal (base units)'),
    maxOrderPctOfPositionLimit: setting(env, 'GOVERNOR_MAX_ORDER_PCT_OF_POSITION_LIMIT', '50', percent, 'must be a percentage in (0, 100]'),
    maxFillsPerSymbol: setting(env, 'GOVERNOR_MAX_FILLS_PER_SYMBOL', 'off', positiveInt, 'must be a positive integer (fills)'),
    maxFillsWindowSec: e.GOVERNOR_MAX_FILLS_WINDOW_SEC,
    maxDailyLossUsd: loss.default,
    lossDayStartHourUtc: e.GOVERNOR_LOSS_DAY_START_HOUR_UTC,
    lossCheckIntervalMs: e.GOVERNOR_LOSS_CHECK_INTERVAL_MS,
  };
}

/** The value of `s` for `symbol`: its override when set (null = off there), else the default. */
export function forSymbol<T>(s: PerSymbol<T>, symbol: string): T | null {
  return Object.hasOwn(s.bySymbol, symbol) ? (s.bySymbol[symbol] as T | null) : s.default;
}

/** The resolved settings of `symbol`; `maxPositionUsd` is the governor's position limit of the symbol. */
export function symbolRiskSettings(cfg: RiskConfig, symbol: string, maxPositionUsd: Decimal | null): SymbolRiskSettings {
  return {
    collarBps: forSymbol(cfg.collarBps, symbol),
    markIndexMaxBps: forSymbol(cfg.markIndexMaxBps, symbol),
    markMaxAgeMs: forSymbol(cfg.markMaxAgeMs, symbol),
    restricted: cfg.restricted,
    maxOrderQty: forSymbol(cfg.maxOrderQty, symbol),
    maxOrderPctOfPositionLimit: forSymbol(cfg.maxOrderPctOfPositionLimit, symbol),
    maxPositionUsd,
  };
}

/** The settings as decimal strings (`off` = switched off), per-symbol overrides included: what `p3 status` shows. */
export function riskSettingsSummary(cfg: RiskConfig): Record<string, unknown> {
  const show = <T>(s: PerSymbol<T>) => ({ default: s.default === null ? 'off' : String(s.default), by_symbol: Object.fromEntries(Object.entries(s.bySymbol).map(([k, v]) => [k, v === null ? 'off' : String(v)])) });
  return {
    price_collar_bps: show(cfg.collarBps),
    mark_index_max_bps: show(cfg.markIndexMaxBps),
    mark_max_age_ms: show(cfg.markMaxAgeMs),
    restricted_symbols: cfg.restricted,
    max_order_qty: show(cfg.maxOrderQty),
    max_order_pct_of_position_limit: show(cfg.maxOrderPctOfPositionLimit),
    max_fills_per_symbol: show(cfg.maxFillsPerSymbol),
    max_fills_window_sec: cfg.maxFillsWindowSec,
    max_daily_loss_usd: cfg.maxDailyLossUsd === null ? 'off' : String(cfg.maxDailyLossUsd),
    loss_day_start_hour_utc: cfg.lossDayStartHourUtc,
  };
}
