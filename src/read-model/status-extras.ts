/**
 * The parts of `p3 status` beyond the per-symbol reconcile table: which services are alive (heartbeats)
 * and the trading state (global, per symbol, open circuit breakers). Read with SCAN, never KEYS.
 */
import type { Redis } from 'ioredis';
import { livenessReport, readHeartbeats, type LivenessReport } from './heartbeats.js';
import { readTradingStates, type TradingStateView } from './trading-state.js';
import { SERVICE_NAMES } from '../host/service-names.js';
import { readUserStreamStates, renderUserStreams, type UserStreamView } from './user-streams.js';
import type { StatusRow } from './symbol-status.js';
import { readRiskStatus, renderRiskStatus, type RiskStatusView } from './risk-controls.js';

/** Age (seconds) past which a symbol's snapshot or the engine's last verdict is too old to trust. */
const STALE_SEC = 10;

/** Services and trading state, as shown by `p3 status`. */
export interface StatusExtras {
  services: LivenessReport;
  trading: TradingStateView;
  /** The position brains' user data streams (one per brain instance with the stream on). */
  user_streams: UserStreamView[];
  /** The governor's pre-trade risk controls (settings, loss limit), docs/risk-controls.md. */
  risk: RiskStatusView;
}

/** Reads heartbeats and trading state. @param nowMs epoch ms */
export async function collectStatusExtras(redis: Redis, nowMs: number): Promise<StatusExtras> {
  const [heartbeats, trading, userStreams, risk] = await Promise.all([readHeartbeats(redis), readTradingStates(redis), readUserStreamStates(redis, nowMs), readRiskStatus(redis)]);
  return { services: livenessReport(heartbeats, SERVICE_NAMES, nowMs), trading, user_streams: userStreams, risk };
}

/** Renders the services and trading-state sections for a person. */
export function renderStatusExtras(x: StatusExtras, nowMs: number): string {
  const out: string[] = ['', 'Services (heartbeats):'];
  for (const name of SERVICE_NAMES) {
    const live = Object.hasOwn(x.services.alive, name) ? x.services.alive[name]! : [];
    if (live.length === 0) out.push(`  ${name.padEnd(22)} MISSING   no live instance: check systemctl status quantum-${name}`);
    else for (const hb of live) out.push(`  ${name.padEnd(22)} alive     ${hb.instance} (beat ${hb.lastBeatMs === null ? '?' : `${Math.round((nowMs - hb.lastBeatMs) / 1000)} s ago`})`);
  }
  for (const hb of x.services.stale) out.push(`  ${hb.name.padEnd(22)} STALE     ${hb.instance}: no beat for a while (frozen process?)`);
  out.push('', ...renderUserStreams(x.user_streams, nowMs));
  const t = x.trading;
  const show = (s: TradingStateView['global']) => (s.state === 'INVALID' ? `INVALID (${s.error}; read as HALTED)` : `${s.state}${s.set && s.reason ? ` (${s.reason})` : ''}`);
  out.push('', `Trading state: global ${show(t.global)}`);
  for (const [sym, s] of Object.entries(t.symbols)) out.push(`  ${sym.padEnd(22)} ${show(s)}`);
  for (const b of t.breakers) out.push(`  ${b.symbol.padEnd(22)} circuit breaker OPEN (${b.ttlSec} s left): symbol HALTED`);
  out.push(...renderRiskStatus(x.risk, nowMs));
  return `${out.join('\n')}\n`;
}

/**
 * The bottom line of `p3 status`: whether plans can trade now, and if not, every reason why (holds,
 * trading state, open breakers, missing services, stale snapshots or engine verdicts). Never says
 * "allowed" when something it needs is missing.
 */
export function tradingVerdict(rows: StatusRow[], x: StatusExtras): string {
  const why: string[] = [];
  const g = x.trading.global;
  if (g.state !== 'ACTIVE') why.push(`global trading state ${g.state}${g.state === 'REDUCING' ? ' (reduce-only plans only)' : ''}`);
  for (const [sym, st] of Object.entries(x.trading.symbols)) if (st.state !== 'ACTIVE') why.push(`${sym} ${st.state}`);
  for (const b of x.trading.breakers) why.push(`${b.symbol} circuit breaker open`);
  if (x.risk.lossUnknown && x.risk.maxDailyLossUsd !== null && x.risk.maxDailyLossUsd !== 'off') why.push(`loss limit cannot measure the loss (${x.risk.lossUnknown}): entries denied`);
  if (x.services.missing.length) why.push(`service(s) not running: ${x.services.missing.join(', ')}`);
  const held = rows.filter((r) => r.hold.active).map((r) => r.symbol);
  if (held.length) why.push(`on hold: ${held.join(', ')}`);
  const manual = rows.filter((r) => r.status === 'MANUAL_REQUIRED' || r.manual_required).map((r) => r.symbol);
  if (manual.length) why.push(`MANUAL_REQUIRED (a person must act, see the notes above): ${manual.join(', ')}`);
  const stale = rows.filter((r) => (r.snapshot_age_sec !== null && r.snapshot_age_sec > STALE_SEC) || (r.engine_age_sec !== null && r.engine_age_sec > STALE_SEC) || r.status === 'UNKNOWN').map((r) => r.symbol);
  if (stale.length) why.push(`stale or no data: ${stale.join(', ')}`);
  return why.length === 0 ? 'VERDICT: trading allowed on every symbol shown\n' : `VERDICT: trading NOT fully allowed: ${why.join('; ')}\n`;
}
