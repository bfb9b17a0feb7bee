/**
 * `p3 doctor` check `plan-stream`: FAIL while the plan stream is damaged in a way Redis ACLs cannot
 * prevent (a producer's XADD with MAXLEN/MINID deleted unread plans, a planted future or largest id blocks
 * every XADD; src/adapters/redis/plan-stream-health.ts), and while the apply layer's sticky marker
 * `quantum:apply:plan_stream_damage` exists (damage it saw earlier, even if the stream looks sound now,
 * e.g. trimmed plans that later entries moved past). Reads only.
 */
import type { Redis } from 'ioredis';
import { keys } from '../../adapters/redis/keys.js';
import { planStreamDamage } from '../../adapters/redis/plan-stream-health.js';

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
  if (marker.first_ts_ms) {
    parts.push(`the apply layer recorded damage (${marker.kinds ?? '?'}) first at ${new Date(Number(marker.first_ts_ms)).toISOString()}, last at ${new Date(Number(marker.last_ts_ms)).toISOString()}: ${marker.detail ?? ''}; after the repair and review: DEL ${keys.planStreamDamage()}`);
  }
  if (parts.length) return { check: 'plan-stream', status: 'FAIL', detail: `${parts.join(' | ')} (docs/runbook.md, "Plan stream damaged")` };
  return { check: 'plan-stream', status: 'OK', detail: 'quantum:stream:apply.plan: no planted id, no plan deleted before every group read it' };
}
