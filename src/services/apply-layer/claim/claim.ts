/**
 * The claim step of the apply layer's staircase (see ../index.ts): a plan is claimed once
 * (`SET quantum:apply:dedupe:<plan_id> claimed|<entry>|<token> NX EX 86400`, store.ts `claimPlan`), or found to
 * be a duplicate (`DROPPED_DUPLICATE`), or a redelivered entry whose own processing was interrupted: stage
 * `claimed` resumes under a fresh token (no order was sent yet), stage `sending` is resolved by client order
 * id (send/inflight.ts), never sent again. A fresh or resumed claim starts the pre-send query of
 * durability.ts when the claim is not proven durable.
 */
import { randomUUID } from 'node:crypto';
import type { StreamEntry } from '../../../adapters/redis/consumer.js';
import { clientOrderIdFor, dedupeValue } from '../../../domain/apply.js';
import type { Plan } from '../../../domain/plan.js';
import { casDedupe, claimPlan } from '../store.js';
import type { ApplyDeps } from '../deps.js';
import { publishOnly, resultFields } from '../results.js';
import { throwIfHandedOver } from '../record/record.js';
import { resolveInflight } from '../send/inflight.js';
import { startPriorCheck } from './durability.js';

/** A fresh owner token for one processing attempt (`<instance>:<random>`; never contains `|`). */
export function newToken(instanceId: string): string {
  return `${instanceId.replace(/\|/g, '_')}:${randomUUID().slice(0, 8)}`;
}

/**
 * Claims the plan or decides it is a duplicate / a resumable interruption. A fresh claim, or a resumed
 * `claimed` stage, starts the pre-send query of the plan's client order id when the claim is not proven
 * durable (durability.ts; its answer is awaited before any send or refusal is recorded).
 * @returns the claimed dedupe value to continue with, or null when handled (duplicate, resolved, lost)
 */
export async function claimOrResume(d: ApplyDeps, plan: Plan, entry: StreamEntry, redelivered: boolean, token: string): Promise<string | null> {
  const claim = await claimPlan(d.redis, plan.plan_id, entry.id, token);
  if (claim.claimed) {
    await startPriorCheck(d, plan, entry.id, claim.value);
    return claim.value;
  }
  const ex = claim.existing;
  // this very entry already finished (its XACK was lost, or it came back after a hand-over): nothing to publish
  if (redelivered && ex.stage === 'done' && ex.raw.split('|')[1] === entry.id) return null;
  if (redelivered && ex.stage !== 'done' && ex.entryId === entry.id) {
    if (ex.stage === 'claimed') {
      const next = dedupeValue('claimed', entry.id, token);
      if (await casDedupe(d.redis, plan.plan_id, dedupeValue('claimed', ex.entryId, ex.token), next)) {
        d.logger.info({ plan_id: plan.plan_id }, `${plan.symbol}: resuming interrupted plan ${plan.plan_id} (no order was sent)`);
        await startPriorCheck(d, plan, entry.id, next);
        return next;
      }
      // lost the resume to another consumer (or the claim moved on or vanished meanwhile): never acknowledge
      // an entry whose work another consumer now owns (hostile review of the seed-102 fix)
      await throwIfHandedOver(d, plan.symbol, plan.plan_id, entry.id, '', 'not resumed', { retryIfGone: true });
      return null; // done, or held by another entry of the plan
    }
    await resolveInflight(d, clientOrderIdFor(plan.plan_id));
    return null;
  }
  await publishOnly(
    d,
    resultFields({ plan_id: plan.plan_id, symbol: plan.symbol, decision: plan.decision, status: 'DROPPED_DUPLICATE', dedupe_hit: 'true', reason: 'duplicate_plan_id', error: 'Duplicate plan_id' }),
  );
  if (plan.decision === 'RECONCILE_CLOSE') d.metrics.closeRejected.inc({ symbol: plan.symbol, reason: 'duplicate' });
  return null;
}
