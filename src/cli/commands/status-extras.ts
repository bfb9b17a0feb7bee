/**
 * The parts of `p3 status` beyond the per-symbol reconcile table: which services are alive (heartbeats)
 * and the trading state (global, per symbol, open circuit breakers). Read with SCAN, never KEYS.
 */
import type { Redis } from 'ioredis';
import { livenessReport, readHeartbeats, type LivenessReport } from '../../services/heartbeat.js';
import { readTradingStates, type TradingStateView } from '../../services/governor/trading-state.js';
import { SERVICE_NAMES } from '../../services/registry.js';

/** Services and trading state, as shown by `p3 status`. */
export interface StatusExtras {
  services: LivenessReport;
  trading: TradingStateView;
}

/** Reads heartbeats and trading state. @param nowMs epoch ms */
export async function collectStatusExtras(redis: Redis, nowMs: number): Promise<StatusExtras> {
  const [heartbeats, trading] = await Promise.all([readHeartbeats(redis), readTradingStates(redis)]);
  return { services: livenessReport(heartbeats, SERVICE_NAMES, nowMs), trading };
}

/** Renders the services and trading-state sections for a person. */
export function renderStatusExtras(x: StatusExtras, nowMs: number): string {
  const out: string[] = ['', 'Services (heartbeats):'];
  for (const name of SERVICE_NAMES) {
    const live = x.services.alive[name] ?? [];
    if (live.length === 0) out.push(`  ${name.padEnd(22)} MISSING   no live instance: check systemctl status quantum-${name}`);
    else for (const hb of live) out.push(`  ${name.padEnd(22)} alive     ${hb.instance} (beat ${hb.lastBeatMs === null ? '?' : `${Math.round((nowMs - hb.lastBeatMs) / 1000)} s ago`})`);
  }
  for (const hb of x.services.stale) out.push(`  ${hb.name.padEnd(22)} STALE     ${hb.instance}: no beat for a while (frozen process?)`);
  const t = x.trading;
  const show = (s: TradingStateView['global']) => (s.state === 'INVALID' ? `INVALID (${s.error}; read as HALTED)` : `${s.state}${s.set && s.reason ? ` (${s.reason})` : ''}`);
  out.push('', `Trading state: global ${show(t.global)}`);
  for (const [sym, s] of Object.entries(t.symbols)) out.push(`  ${sym.padEnd(22)} ${show(s)}`);
  for (const b of t.breakers) out.push(`  ${b.symbol.padEnd(22)} circuit breaker OPEN (${b.ttlSec} s left): symbol HALTED`);
  return `${out.join('\n')}\n`;
}
