/**
 * Reading plan entries of `quantum:stream:apply.plan` in a consumer (docs/architecture.md#plans): verify, or throw
 * {@link PoisonEntry} so the `StreamConsumer` copies the entry to `<stream>.dlq` with the reason and
 * acknowledges it (never retried forever, never a crash, never a permit).
 */
import { PoisonEntry } from '../adapters/redis/consumer.js';
import { planPartition, verifyPlanEntry, type Plan } from '../domain/plan.js';

/** DLQ reasons of plan entries (`verifyPlanEntry` reasons). */
export const PLAN_POISON_REASONS = ['malformed', 'unknown_source', 'bad_mac', 'invalid_schema', 'handler_error'] as const;

/**
 * Verifies a plan entry (JSON, known source, MAC over the exact string, schema).
 * @param keyFor key of a source, undefined for an unknown source (`envKeyLookup(env)`)
 * @returns the plan
 * @throws PoisonEntry with reason `malformed` | `unknown_source` | `bad_mac` | `invalid_schema`
 */
export function planFromEntry(fields: Record<string, string>, keyFor: (source: string) => string | undefined): Plan {
  const v = verifyPlanEntry(fields, keyFor);
  if (!v.ok) throw new PoisonEntry(v.reason, `${v.reason}: ${v.detail}${v.planId ? ` (plan_id=${v.planId})` : ''}`);
  return v.plan;
}

/**
 * How the plan consumers (governor, position brain, apply layer) read `quantum:stream:apply.plan`:
 * entries per XREADGROUP, and plans in hand at once (different symbols concurrently, one symbol in
 * stream order, a failed plan retried in place so later plans of its symbol wait for it).
 */
export const PLAN_CONSUMER = { count: 64, concurrency: 64, ordered: true, partitionOf: planPartition } as const;
