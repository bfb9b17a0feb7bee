/**
 * The producer side of the strategy client: the state of each submitted plan and the rules of the
 * producer contract (README "Producer contract", docs/plan-format.md#the-producer-contract).
 *
 * Invariants:
 * - Pure: no I/O; the client (client.ts) does the reads and writes this module decides.
 * - A plan is only ever re-submitted as the SAME signed entry (same `plan` string, same `mac`).
 * - A plan without a final result is re-submitted only when it may be lost: its XADD was never answered, or
 *   Redis restarted or failed over (its `run_id` changed) since its last submission; then no sooner than
 *   `resubmitAfterMs` after it, doubling per re-submission up to `resubmitMaxMs`.
 * - A final result seen is read back `durableAfterMs` later; gone = lost with Redis's last writes, and the
 *   plan is re-submitted (the apply layer then records the outcome recovered from the exchange, never a
 *   second order). Read back = durable: the plan is finished and dropped.
 * - Nothing is re-submitted `keepMs` after the first submission (the apply layer refuses plans that old).
 */
import type { SignedPlanFields } from '../domain/plan.js';
import type { P3Result } from './result.js';

/** Timing of the producer contract, ms. */
export interface ProducerTiming {
  /** First re-submission of a possibly lost plan this long after its last submission (default 4000). */
  resubmitAfterMs: number;
  /** Longest gap between re-submissions (default 30000). */
  resubmitMaxMs: number;
  /** A final result is read back this long after it was seen (default 5000: `appendfsync everysec` loses ~1-2 s). */
  durableAfterMs: number;
  /** The producer gives up on a plan this long after its first submission (default 150000). */
  keepMs: number;
}

/** The defaults (the chaos tool's producer, harness/chaos/driver.ts, uses the same). */
export const DEFAULT_TIMING: ProducerTiming = { resubmitAfterMs: 4000, resubmitMaxMs: 30_000, durableAfterMs: 5000, keepMs: 150_000 };

/** One submitted plan. */
export interface ProducedPlan {
  planId: string;
  symbol: string;
  signed: SignedPlanFields;
  /** Epoch ms of the first XADD attempt. */
  firstSubmitMs: number;
  /** Epoch ms of the newest XADD attempt. */
  lastSubmitMs: number;
  /** Redis `run_id` when it was last submitted (null: unknown, counts as changed). */
  submitEpoch: string | null;
  /** True once Redis answered one of its XADDs. */
  acked: boolean;
  resubmits: number;
  /** Stream entry ids of its XADDs. */
  entryIds: string[];
  /** The final result seen (null until then). */
  final: { result: P3Result; seenMs: number } | null;
  /** True once the final result was read back after `durableAfterMs`. */
  durable: boolean;
  /** True once a final result was handed to the caller (a later one, recorded again after a loss, is not). */
  reported?: boolean;
}

/** What to do with a plan on one producer pass. */
export type ProducerAction = 'none' | 'resubmit' | 'check_durable' | 'drop';

/**
 * The producer's decision for `p` at `now` with Redis's current `run_id` `epoch`.
 * `check_durable`: read the final result's entry back (present: durable; gone: re-submit).
 */
export function producerAction(p: ProducedPlan, now: number, epoch: string | null, t: ProducerTiming = DEFAULT_TIMING): ProducerAction {
  if (p.durable || now - p.firstSubmitMs > t.keepMs) return 'drop';
  if (p.final) return now - p.final.seenMs >= t.durableAfterMs ? 'check_durable' : 'none';
  const mayBeLost = !p.acked || p.submitEpoch === null || p.submitEpoch !== epoch;
  const gap = Math.min(t.resubmitMaxMs, t.resubmitAfterMs * 2 ** Math.min(p.resubmits, 6));
  return mayBeLost && now - p.lastSubmitMs >= gap ? 'resubmit' : 'none';
}

/** Redis's `run_id` from an `INFO server` answer (null when absent). */
export function runIdOf(info: string): string | null {
  return /^run_id:(\S+)/m.exec(info)?.[1] ?? null;
}
