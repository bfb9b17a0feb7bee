/**
 * The risk controls' lines of `p3 status` (docs/risk-controls.md): what the governor last recorded in
 * `quantum:governor:risk` (its settings, the loss limit's latest measurement and latch). One line per
 * control; a missing or old record says so (no governor measuring: the settings shown are unknown).
 */
import type { Redis } from 'ioredis';
import { keys } from '../adapters/redis/keys.js';

/** What `p3 status` shows of the risk controls (`null` fields: never recorded). */
export interface RiskStatusView {
  /** When the governor last recorded, epoch ms (null = never: no governor running with this version). */
  measuredMs: number | null;
  /** The settings as recorded (see `riskSettingsSummary`), null when unreadable. */
  controls: Record<string, unknown> | null;
  lossUsd: string | null;
  realizedUsd: string | null;
  unrealizedUsd: string | null;
  /** Why the loss could not be measured ('' = it could). */
  lossUnknown: string;
  maxDailyLossUsd: string | null;
  /** The latch: the day's next trip threshold and the last trip time (null = not tripped that day). */
  nextTripUsd: string | null;
  trippedMs: number | null;
  latchDayStartMs: number | null;
  measuredDayStartMs: number | null;
  /** The repeated-execution throttle's last trip per symbol. */
  throttleTrips: Array<{ symbol: string; atMs: number }>;
}

/** Reads `quantum:governor:risk`. */
export async function readRiskStatus(redis: Redis): Promise<RiskStatusView> {
  const h = await redis.hgetall(keys.governorRisk());
  const num = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : null);
  let controls: Record<string, unknown> | null = null;
  try {
    const c: unknown = h.controls ? JSON.parse(h.controls) : null;
    controls = c !== null && typeof c === 'object' && !Array.isArray(c) ? (c as Record<string, unknown>) : null;
  } catch {
    controls = null;
  }
  const str = (v: string | undefined) => (v === undefined || v === '' ? null : v);
  return {
    measuredMs: num(h.measured_ts_ms),
    controls,
    lossUsd: str(h.loss_usd),
    realizedUsd: str(h.realized_usd),
    unrealizedUsd: str(h.unrealized_usd),
    lossUnknown: h.loss_unknown ?? '',
    maxDailyLossUsd: str(h.max_daily_loss_usd),
    nextTripUsd: str(h.next_trip_usd),
    trippedMs: num(h.tripped_ts_ms),
    latchDayStartMs: num(h.day_start_ms),
    measuredDayStartMs: num(h.measured_day_start_ms),
    throttleTrips: Object.entries(h)
      .filter(([k, v]) => k.startsWith('throttle_tripped_ms:') && /^\d+$/.test(v))
      .map(([k, v]) => ({ symbol: k.slice('throttle_tripped_ms:'.length), atMs: Number(v) }))
      .sort((a, b) => a.symbol.localeCompare(b.symbol)),
  };
}

/** A per-symbol setting as recorded: `{default, by_symbol}`. */
function setting(v: unknown, unit: string): string {
  if (v === null || typeof v !== 'object') return '?';
  const s = v as { default?: unknown; by_symbol?: Record<string, unknown> };
  const show = (x: unknown) => (x === 'off' ? 'off' : `${String(x)}${unit}`);
  const over = Object.entries(s.by_symbol ?? {}).map(([k, x]) => `${k} ${show(x)}`);
  return `${show(s.default)}${over.length ? ` (${over.join(', ')})` : ''}`;
}

/** Age past which the record is reported as old (the governor measures every 2 s by default). */
const OLD_MS = 30_000;

/** The lines of the "Risk controls" section. */
export function renderRiskStatus(v: RiskStatusView, nowMs: number): string[] {
  const out = [''];
  if (v.measuredMs === null || v.controls === null) {
    out.push('Risk controls: UNKNOWN (no governor has recorded its settings in quantum:governor:risk)');
    return out;
  }
  const age = Math.round((nowMs - v.measuredMs) / 1000);
  out.push(`Risk controls (governor, recorded ${age} s ago${nowMs - v.measuredMs > OLD_MS ? ': OLD, is the governor running?' : ''}):`);
  const c = v.controls;
  const pad = (k: string) => `  ${k.padEnd(22)} `;
  out.push(`${pad('price collar')}mark vs ref_price ${setting(c.price_collar_bps, ' bps')}; without ref_price mark vs index ${setting(c.mark_index_max_bps, ' bps')}`);
  out.push(`${pad('stale mark')}entries need a mark at most ${setting(c.mark_max_age_ms, ' ms')} old`);
  const restricted = Array.isArray(c.restricted_symbols) ? (c.restricted_symbols as unknown[]).map(String) : [];
  out.push(`${pad('restricted symbols')}${restricted.length ? `${restricted.join(', ')} (entries denied, exits pass)` : 'none'}`);
  out.push(`${pad('max order quantity')}${setting(c.max_order_qty, ' base units')}`);
  out.push(`${pad('fill throttle')}${setting(c.max_fills_per_symbol, ' fills')} per ${String(c.max_fills_window_sec ?? '?')} s and symbol${v.throttleTrips.length ? `; TRIPPED: ${v.throttleTrips.map((t) => `${t.symbol} at ${new Date(t.atMs).toISOString()}`).join(', ')}` : ''}`);
  out.push(`${pad('fat finger')}${setting(c.max_order_pct_of_position_limit, ' %')} of the position limit per entry`);
  if (v.maxDailyLossUsd === null || v.maxDailyLossUsd === 'off') out.push(`${pad('loss limit')}off`);
  else {
    const from = `from ${String(c.loss_day_start_hour_utc ?? 0).padStart(2, '0')}:00 UTC`;
    const loss = v.lossUnknown ? `loss UNKNOWN (${v.lossUnknown}): entries denied` : `loss today ${v.lossUsd} USD (realized ${v.realizedUsd}, unrealized ${v.unrealizedUsd})`;
    const tripped = v.trippedMs !== null && v.latchDayStartMs !== null && v.latchDayStartMs === v.measuredDayStartMs ? `; TRIPPED at ${new Date(v.trippedMs).toISOString()}, next trip above ${v.nextTripUsd} USD` : '';
    out.push(`${pad('loss limit')}${v.maxDailyLossUsd} USD per day (${from}): ${loss}${tripped}`);
  }
  return out;
}
