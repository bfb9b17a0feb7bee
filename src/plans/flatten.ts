/**
 * Submitting FLATTEN plans (`p3 flatten`, the console): an operator's signed order to close a symbol's whole
 * position in any trading state (docs/architecture.md#plans, docs/architecture.md#risk-limits-and-trading-states; src/domain/flatten.ts for the rules).
 */
import type { Redis } from 'ioredis';
import { EVENTS_MAXLEN, STREAMS } from '../adapters/redis/keys.js';
import { buildFlattenPlan, type FlattenRequest } from '../domain/flatten.js';
import { signPlan } from '../domain/plan.js';
import { checkOperatorText } from '../domain/operator-text.js';
import { EVENT } from '../domain/events.js';

/**
 * Signs a FLATTEN plan with the operator key and adds it to `quantum:stream:apply.flatten`, with a
 * `FLATTEN_REQUESTED` event (who, why) on `quantum:stream:reconcile.events`, in one MULTI.
 * @param key the value of `P3_KEY_OPERATOR`
 * @returns the plan id and the stream entry id
 * @throws OperatorTextError for a reason with control characters; ZodError for a malformed symbol or plan id;
 *   Redis errors as thrown by ioredis
 */
export async function submitFlatten(redis: Redis, req: FlattenRequest, key: string): Promise<{ planId: string; entryId: string }> {
  checkOperatorText(req.reason);
  checkOperatorText(req.by, 'by');
  const plan = buildFlattenPlan(req);
  const signed = signPlan(plan, key);
  const res = await redis
    .multi()
    .xadd(STREAMS.applyFlatten, 'MAXLEN', '~', 100_000, '*', 'plan', signed.plan, 'mac', signed.mac)
    .xadd(STREAMS.reconcileEvents, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'event', EVENT.FLATTEN_REQUESTED, 'symbol', req.symbol, 'plan_id', plan.plan_id, 'by', req.by, 'reason', req.reason, 'ts_ms', String(req.nowMs))
    .exec();
  const err = res?.find(([e]) => e)?.[0];
  if (!res || err) throw err ?? new Error('FLATTEN submission aborted');
  return { planId: plan.plan_id, entryId: String(res[0]?.[1] ?? '') };
}
