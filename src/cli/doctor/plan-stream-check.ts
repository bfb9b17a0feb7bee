/**
 * `p3 doctor` check `plan-stream`: FAIL while the plan stream is damaged in a way Redis ACLs cannot
 * prevent (a producer's XADD with MAXLEN/MINID deleted unread plans, a planted future or largest id blocks
 * every XADD; src/adapters/redis/plan-stream-health.ts), and while the apply layer's sticky marker
 * `quantum:apply:plan_stream_damage` exists (damage it saw earlier, even if the stream looks sound now,
 * e.g. trimmed plans that later entries moved past), and while a consumer reads a group of the plan stream
 * without a liveness lease in two looks {@link UNLEASED_RECHECK_MS} apart (every p3 consumer holds one: it is
 * another Redis user reading or acknowledging that group's plans, or a consumer whose lease writes are
 * refused). Reads only.
 */
import type { Redis } from 'ioredis';
import { CONSUMER_LEASE_MS, groupLiveness } from '../../adapters/redis/consumer-liveness.js';
import { STREAMS, keys } from '../../adapters/redis/keys.js';
import { planStreamDamage } from '../../adapters/redis/plan-stream-health.js';
import { sleep } from '../../lib/sleep.js';

/** How long apart the two looks for consumers without a lease are, ms (a consumer resumed from a freeze renews its lease within a second). */
export const UNLEASED_RECHECK_MS = 1_500;

/** `group/consumer` of every plan-stream consumer reading without a liveness lease. */
async function unleasedPlanConsumers(redis: Redis): Promise<Set<string>> {
  const out = new Set<string>();
  let groups: string[];
  try {
    groups = ((await redis.call('XINFO', 'GROUPS', STREAMS.applyPlan)) as unknown[][]).map((g) => String(g[g.indexOf('name') + 1]));
  } catch {
    return out; // no stream yet
  }
  for (const g of groups) for (const c of (await groupLiveness(redis, STREAMS.applyPlan, g, '', CONSUMER_LEASE_MS)).unleasedActive) out.add(`${g}/${c.name}`);
  return out;
}

/** One doctor line (same shape as `CheckResult` of checks.ts). */
export interface PlanStreamCheckResult {
  check: 'plan-stream';
  status: 'OK' | 'FAIL';
  detail: string;
}

/**
 * Runs the check (see the module comment).
 * @param nowMs the clock, epoch ms
 * @throws on a Redis error (the doctor reports a crashed check as FAIL)
 */
export async function checkPlanStream(redis: Redis, nowMs = Date.now()): Promise<PlanStreamCheckResult> {
  const found = await planStreamDamage(redis, nowMs);
  const marker = await redis.hgetall(keys.planStreamDamage());
  const parts = found.map((d) => d.detail);
  const first = await unleasedPlanConsumers(redis);
  if (first.size) {
    await sleep(UNLEASED_RECHECK_MS);
    const again = [...(await unleasedPlanConsumers(redis))].filter((c) => first.has(c));
    if (again.length) parts.push(`consumers reading without a liveness lease (not p3 consumers of their group; see ops/redis/README.md): ${again.join(', ')}`);
  }
  if (marker.first_ts_ms) {
    parts.push(`the apply layer recorded damage (${marker.kinds ?? '?'}) first at ${new Date(Number(marker.first_ts_ms)).toISOString()}, last at ${new Date(Number(marker.last_ts_ms)).toISOString()}: ${marker.detail ?? ''}; after the repair and review: DEL ${keys.planStreamDamage()}`);
  }
  if (parts.length) return { check: 'plan-stream', status: 'FAIL', detail: `${parts.join(' | ')} (docs/runbook.md, "Plan stream damaged")` };
  return { check: 'plan-stream', status: 'OK', detail: 'quantum:stream:apply.plan: no planted id, no plan deleted before every group read it' };
}
