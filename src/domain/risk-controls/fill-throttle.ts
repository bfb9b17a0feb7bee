/**
 * Repeated-execution throttle (docs/risk-controls.md#repeated-execution-throttle). Pure: no I/O.
 *
 * Invariants:
 * - Fills of one symbol count while they are inside the window `(now − windowMs, now]` and newer than the
 *   last trip (`sinceMs`): after a trip, an operator who re-arms the symbol starts from zero.
 * - More than `maxFills` counted fills is a breach (`fill_throttle`); exactly `maxFills` passes.
 * - Off (`maxFills` null): never a breach.
 */
import type { ControlVerdict } from './price-collar.js';

/**
 * Counts the fills that count (see the module comment).
 * @param fillsMs fill times of the symbol, epoch ms, any order
 */
export function countFills(fillsMs: readonly number[], nowMs: number, windowMs: number, sinceMs: number | null): number {
  const from = Math.max(nowMs - windowMs, sinceMs ?? -Infinity);
  let n = 0;
  for (const t of fillsMs) if (t > from && t <= nowMs) n++;
  return n;
}

/**
 * Decides the throttle of one symbol.
 * @param maxFills `GOVERNOR_MAX_FILLS_PER_SYMBOL[_<SYM>]`; null = off
 * @param windowMs `GOVERNOR_MAX_FILLS_WINDOW_SEC` × 1000
 * @param sinceMs the symbol's last trip, epoch ms (null = never)
 */
export function checkFillThrottle(fillsMs: readonly number[], nowMs: number, maxFills: number | null, windowMs: number, sinceMs: number | null): ControlVerdict {
  if (maxFills === null) return { ok: true };
  const n = countFills(fillsMs, nowMs, windowMs, sinceMs);
  const ctx = { fills_in_window: String(n), max_fills: String(maxFills), window_sec: String(windowMs / 1000) };
  return n > maxFills ? { ok: false, reason: 'fill_throttle', context: ctx } : { ok: true, context: ctx };
}
