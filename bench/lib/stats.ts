/** Latency summaries of the bench (milliseconds, 3 decimals). */

/** Percentile `p` (0-100) of `xs` by the nearest-rank method; NaN for an empty list. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1] as number;
}

/** Rounds to 3 decimals (microsecond resolution for millisecond figures). */
export const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** `{n, p50, p99, max}` of samples in ms. */
export function summarize(xs: number[]): { n: number; p50: number; p99: number; max: number } {
  return { n: xs.length, p50: r3(percentile(xs, 50)), p99: r3(percentile(xs, 99)), max: r3(xs.length ? Math.max(...xs) : NaN) };
}

/** Median of `xs`. */
export const median = (xs: number[]): number => percentile(xs, 50);

/** Monotonic clock in ms (performance.now). */
export const now = (): number => performance.now();
