/**
 * The send-time gate: an order is never sent from a position view the symbol has moved away
 * from. Pure: no I/O. The apply layer enforces the same rule atomically in `applyBegin-13.lua`, in the one
 * step that moves a plan to `sending` and marks its order in flight.
 *
 * Invariants (every order of every action: exits, entries, RECONCILE_CLOSE, FLATTEN; action-agnostic):
 * - An order carries the time its size was decided from (`snapshot_ts_ms`, epoch ms): for a permitted plan
 *   the `ts_ms` of the snapshot the position brain sized it from (the time the positions REQUEST was sent,
 *   a lower bound of when the exchange state was observed); for a RECONCILE_CLOSE the time the apply
 *   layer's fresh position read was sent. Unknown or unparseable → `snapshot_unknown` (fail closed).
 * - `order_in_flight`: another order of the symbol is in flight (`quantum:apply:inflight:<SYM>` has a
 *   client order id other than this order's): its fill may land at any moment, so no view is current.
 * - `snapshot_superseded`: `snapshot_ts_ms <= last_fill_ms` (`quantum:apply:last_fill_ms:<SYM>`, the
 *   record time of the symbol's newest EXECUTED result, taken after the exchange answered): the view may
 *   predate that fill. Equal times count as superseded (same rule as the brain's `snapshot_older_than_fill`).
 * - Passing the gate marks the order in flight in the same atomic step, so of two orders sized on the same
 *   view at most one is ever sent; the other ends SKIPPED with the reason (the strategy may re-submit; a
 *   new permit is sized from a snapshot taken after the fill).
 * Consequence: at most one order per symbol is in flight at any time, and every order sent was sized on
 * the position it executes against, so a reduce-only exit can never exceed the position (no -2022 from
 * our own exits). Assumes the services' clocks agree (NTP; `p3 doctor` checks skew); a fill the system
 * did not make (a manual trade) is the reconcile engine's business (hold), not this gate's.
 */

/** Why an order may not be sent. */
export const SEND_GATE_REASONS = ['order_in_flight', 'snapshot_superseded', 'snapshot_unknown'] as const;
/** One of {@link SEND_GATE_REASONS}. */
export type SendGateReason = (typeof SEND_GATE_REASONS)[number];

/** Verdict of {@link sendGate}. */
export type SendGateVerdict = { ok: true } | { ok: false; reason: SendGateReason; detail: string };

/** Inputs of {@link sendGate}, as read at send time. */
export interface SendGateInput {
  /** When the position the order was sized from was requested, epoch ms; null when unknown. */
  snapshotTsMs: number | null;
  /** The symbol's newest recorded fill (`last_fill_ms`), epoch ms; null when none. */
  lastFillMs: number | null;
  /** Client order ids in the symbol's in-flight hash. */
  inflight: readonly string[];
  /** This order's client order id (ignored in `inflight`). */
  ownCid: string;
  /**
   * Now, epoch ms (the Redis server's clock in applyBegin-13.lua). A newest fill later than now (its writer's clock
   * jumped ahead) counts as now: any snapshot requested after now includes it, and the symbol is not blocked until
   * the wrong time has passed. Omitted: no such bound.
   */
  nowMs?: number;
}

/**
 * The send-time rule (see the module comment). Checked in this order: snapshot known, nothing else in
 * flight, snapshot newer than the newest fill.
 */
export function sendGate(i: SendGateInput): SendGateVerdict {
  if (i.snapshotTsMs === null || !Number.isFinite(i.snapshotTsMs)) return { ok: false, reason: 'snapshot_unknown', detail: 'the order carries no snapshot time' };
  const others = i.inflight.filter((c) => c !== i.ownCid);
  if (others.length > 0) return { ok: false, reason: 'order_in_flight', detail: `another order of the symbol is in flight (${others.join(',')})` };
  const lastFill = i.lastFillMs !== null && i.nowMs !== undefined && i.lastFillMs > i.nowMs ? i.nowMs : i.lastFillMs;
  if (lastFill !== null && i.snapshotTsMs <= lastFill) {
    return { ok: false, reason: 'snapshot_superseded', detail: `sized on a snapshot of ${i.snapshotTsMs} ms, the newest fill was recorded at ${lastFill} ms` };
  }
  return { ok: true };
}

/**
 * Reads the snapshot time a p33 permit was sized from: the top-level field `snapshot_ts_ms`, else the
 * `snapshot_ts_ms` of its JSON `context` (the position brain writes it on every ALLOW).
 * @returns epoch ms, or null when absent or not a positive integer
 */
export function permitSnapshotTs(p33: Record<string, string>): number | null {
  const asMs = (v: unknown): number | null => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
    return Number.isSafeInteger(n) && n > 0 ? n : null;
  };
  const top = asMs(p33.snapshot_ts_ms);
  if (top !== null) return top;
  try {
    const ctx = JSON.parse(p33.context ?? '') as unknown;
    if (ctx && typeof ctx === 'object') return asMs((ctx as Record<string, unknown>).snapshot_ts_ms);
  } catch {
    // not JSON: unknown
  }
  return null;
}
