/**
 * Stale market data (docs/risk-controls.md#stale-mark). Pure: no I/O.
 *
 * Invariants:
 * - A mark price older than `maxAgeMs` (now − its time > maxAgeMs) is never used for an entry: DENY
 *   `stale_mark`. Exactly `maxAgeMs` old passes.
 * - A mark with no known time is stale (fail closed). A mark dated more than {@link MARK_FUTURE_SKEW_MS}
 *   ahead of the reader's clock is refused too (it would look fresh for too long).
 */
import type { ControlVerdict } from './price-collar.js';

/** How far a mark's time may lie ahead of the reader's clock, ms (hosts are NTP-synced). */
export const MARK_FUTURE_SKEW_MS = 2000;

/**
 * Decides whether the mark price is fresh enough.
 * @param markTsMs when the mark was read from the exchange, epoch ms (null = unknown)
 * @param nowMs the reader's clock, epoch ms
 * @param maxAgeMs `GOVERNOR_MARK_MAX_AGE_MS[_<SYM>]`, ms; null = off
 */
export function checkMarkAge(markTsMs: number | null, nowMs: number, maxAgeMs: number | null): ControlVerdict {
  if (maxAgeMs === null) return { ok: true };
  if (markTsMs === null || !Number.isFinite(markTsMs)) return { ok: false, reason: 'stale_mark', context: { why: 'mark_time_unknown', max_age_ms: String(maxAgeMs) } };
  const age = nowMs - markTsMs;
  const ctx = { mark_age_ms: String(age), max_age_ms: String(maxAgeMs) };
  if (-age > MARK_FUTURE_SKEW_MS) return { ok: false, reason: 'stale_mark', context: { ...ctx, why: 'mark_from_future' } };
  return age > maxAgeMs ? { ok: false, reason: 'stale_mark', context: ctx } : { ok: true, context: ctx };
}
