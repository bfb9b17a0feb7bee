/**
 * Order-count budget (docs/risk-controls.md): keeps entries below a share of the account's order-count
 * limits (Binance USDⓈ-M `rateLimits` of type ORDERS in GET /fapi/v1/exchangeInfo, e.g. 300 orders per
 * 10 s and 1200 per 1 min), so the rest stays reserved for reduce-only orders and the exchange's `-1015`
 * (too many new orders) never hits a close. Pure: no I/O.
 *
 * Invariants:
 * - Exits and closes (reduce-only) are never refused by this control.
 * - An entry is allowed only when, for every window, `used + 1 <= floor(limit × entryPct / 100)`.
 * - A count observed longer ago than its window no longer applies (the window it counted has passed at the
 *   exchange too), so it is read as 0 used: safe, since the exchange's own count is then at most what was
 *   sent since, and that is recorded again by the next order's response headers.
 * - A count observed in the future (clock skew past `ORDER_COUNT_FUTURE_SKEW_MS`) or not a finite
 *   non-negative integer denies an entry (fail closed).
 * - Off (`entryPct` null): never a breach.
 */
import type { ControlVerdict } from './price-collar.js';

/** Allowed skew between the observation time and now, ms. */
export const ORDER_COUNT_FUTURE_SKEW_MS = 1000;

/** One order-count window as read from a `X-MBX-ORDER-COUNT-<interval>` response header. */
export interface OrderCountWindow {
  /** Window length, ms (10 s = 10000, 1 min = 60000). */
  windowMs: number;
  /** The account's order limit in the window (orders). */
  limit: number;
  /** Orders counted by the exchange, as of `observedMs`; null = never observed. */
  used: number | null;
  /** When the header was read, epoch ms; null = never observed. */
  observedMs: number | null;
}

/**
 * Decides whether one order may go out under the budget.
 * @param isEntry OPEN/INCREASE = true; exits, closes, reduce-only = false (always ok)
 * @param entryPct `GOVERNOR_ORDER_BUDGET_ENTRY_PCT` (0–100) share of each limit entries may use; null = off
 */
export function checkOrderCountBudget(isEntry: boolean, windows: readonly OrderCountWindow[], nowMs: number, entryPct: number | null): ControlVerdict {
  if (!isEntry || entryPct === null) return { ok: true };
  const context: Record<string, string> = {};
  for (const w of windows) {
    const tag = `order_count_${w.windowMs / 1000}s`;
    let used = 0;
    if (w.used !== null || w.observedMs !== null) {
      if (w.used === null || w.observedMs === null || !Number.isInteger(w.used) || w.used < 0 || !Number.isFinite(w.observedMs) || w.observedMs > nowMs + ORDER_COUNT_FUTURE_SKEW_MS) {
        return { ok: false, reason: 'order_count_budget', context: { [tag]: 'invalid' } };
      }
      used = nowMs - w.observedMs >= w.windowMs ? 0 : w.used;
    }
    const budget = Math.floor((w.limit * entryPct) / 100);
    context[tag] = String(used);
    context[`${tag}_entry_budget`] = String(budget);
    if (used + 1 > budget) return { ok: false, reason: 'order_count_budget', context };
  }
  return { ok: true, context };
}

/**
 * Reads the order counts Binance sends on order responses: `X-MBX-ORDER-COUNT-<n><unit>` (unit S, M, H, D;
 * header names case-insensitive), one per ORDERS rate limiter of the account. See "Order Rate Limits" in
 * https://developers.binance.com/docs/derivatives/usds-margined-futures/general-info
 * @param headers response headers (ccxt `exchange.last_response_headers`)
 * @returns window length in ms → orders counted; a header whose value is not a non-negative integer is left
 *   out (so its window reads as never observed, and the caller must treat that as unknown, not as 0)
 */
export function parseOrderCountHeaders(headers: Readonly<Record<string, unknown>>): Map<number, number> {
  const unitMs: Record<string, number> = { S: 1000, M: 60_000, H: 3_600_000, D: 86_400_000 };
  const out = new Map<number, number>();
  for (const [name, value] of Object.entries(headers)) {
    const m = /^x-mbx-order-count-(\d+)([smhd])$/i.exec(name);
    if (!m) continue;
    const raw = String(value).trim();
    if (!/^\d+$/.test(raw)) continue;
    out.set(Number(m[1]) * (unitMs[m[2]!.toUpperCase()] as number), Number(raw));
  }
  return out;
}
