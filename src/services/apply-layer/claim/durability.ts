/**
 * Durability of the dedupe claim (docs/architecture.md#claim-durability, `P3_CLAIM_DURABILITY`; docs/reliability.md).
 *
 * `SET quantum:apply:dedupe:<plan_id> NX` answers "nobody handled this plan" — but after Redis lost its last
 * writes (a host crash under `appendfsync everysec`, a failover to a lagging replica) that answer can be wrong:
 * the plan's order may have been sent and filled, and its claim, result and ledger update lost. Binance keeps
 * client order ids unique only among OPEN orders, so a filled MARKET order sent again executes again.
 *
 * `exchange-query` (the default): a fresh claim (or a resumed `claimed` stage) of a plan created BEFORE the
 * last moment Redis can have lost writes ({@link redisEpochSince}: the Redis server's start, or when a
 * promoted replica was first seen) cannot be trusted; for such a plan the apply layer asks the exchange for
 * the plan's client order id (`GET /fapi/v1/order?origClientOrderId=`, Binance "Query
 * Order (USER_DATA)": https://developers.binance.com/docs/derivatives/usds-margined-futures/trade/rest-api/Query-Order
 * — a filled order is found for 90 days; an unknown id is `-2013 Order does not exist`). The query starts
 * right after the claim and runs while the permits are awaited; its answer is awaited before the first
 * send AND before any refusal is recorded (record/record.ts `finalize`, send/send.ts `sendAndRecord`), because a refusal
 * would record "not executed" for an order that did execute:
 * - found: the plan's result is recorded from the exchange's order (EXECUTED with its `executedQty`), with
 *   the ledger update in the same atomic step when the ledger plus the fill equals the exchange position
 *   (else the result alone: the reconcile engine takes it as evidence) — never sent again;
 * - not found (-2013): nothing was sent, provided no request of the plan signed before the last possible
 *   Redis loss can still reach the exchange: the plan was created after that moment (its `ts_ms`), or the
 *   moment is older than `APPLY_CLAIM_QUERY_SETTLE_MS` (the exchange refuses a request whose `recvWindow`
 *   has passed). The moment is the Redis server's start, or for a promoted replica when an apply layer first
 *   saw it ({@link redisEpochSince}). Otherwise the apply layer waits out the settle time and asks again;
 * - no answer (rate limit, ban, timeout) after bounded retries: the handler throws, nothing is recorded or
 *   sent; the entry stays pending and is retried (the resumed claim asks again).
 * A plan created after that moment needs no query (every claim and send of it happened in a dataset that has
 * lost nothing since): in steady state the cost is one `INFO` and one script call per claim.
 * `replica-wait`: no query; `WAIT` after the in-flight record (send/send.ts). `fsync-always`: no query while
 * `INFO persistence` shows the AOF on (checked every 30 s; otherwise the query is made).
 */
import type { Redis } from 'ioredis';
import { applyEpoch } from '../../../adapters/redis/scripts/index.js';
import { clientOrderIdFor } from '../../../domain/apply.js';
import { sleep } from '../../../lib/sleep.js';
import { orderIsFinal, rateLimitWaitMs, resolveByLookup } from '../executor.js';
import { serverInfo } from '../store.js';
import { executorDeps, type ApplyDeps } from '../deps.js';
import { putPriorCheck, type PriorOutcome } from '../record/prior-checks.js';

/** `fsync-always`: when the AOF was last seen on, per apply layer. */
const aofSeen = new WeakMap<ApplyDeps, number>();

/**
 * True when a fresh claim must be checked against the exchange before anything is sent or refused.
 * Never in dry_run (nothing is ever sent). `fsync-always` asks `INFO persistence replication` (cached 30 s): no
 * query only while the AOF is on and the server is a master without replicas (Redis 7.0 does not show the
 * fsync policy itself: `appendfsync always` is the operator's assertion).
 */
export async function claimNeedsQuery(d: ApplyDeps): Promise<boolean> {
  if (!d.gateway || d.cfg.mode === 'dry_run') return false;
  if (d.cfg.claimDurability === 'replica-wait') return false;
  if (d.cfg.claimDurability === 'exchange-query') return true;
  const seen = aofSeen.get(d);
  if (seen !== undefined && Date.now() - seen < 30_000) return false;
  try {
    const info = await serverInfo(d.redis, 'persistence', 'replication');
    // a master with replicas can fail over to one that lagged: fsync on the master does not cover that
    if (/^aof_enabled:1\s*$/m.test(info) && /^role:master\s*$/m.test(info) && /^connected_slaves:0\s*$/m.test(info)) {
      aofSeen.set(d, Date.now());
      return false;
    }
  } catch {
    // unreadable: query (fail closed)
  }
  d.logger.warn('P3_CLAIM_DURABILITY=fsync-always but Redis does not show appendonly on, or has replicas (INFO persistence, replication): asking the exchange before sending');
  return true;
}

/** Clock skew allowed between the producer's host (plan `ts_ms`) and the apply layer's host, ms. */
export const PRODUCER_CLOCK_SKEW_MS = 1000;

/**
 * The Redis dataset epoch: a time no earlier than the last moment Redis can have lost acknowledged writes,
 * epoch ms. A master never promoted since it started (`second_repl_offset:-1`) can only have lost writes when
 * it (re)started: its start time (`uptime_in_seconds`, rounded so the estimate is never early). A promoted
 * replica: when an apply layer first saw its run_id (applyEpoch-1.lua).
 * @throws Error when Redis does not answer
 */
export async function redisEpochSince(redis: Redis): Promise<number> {
  const info = await serverInfo(redis, 'server', 'replication');
  // the dataset's identity: the server process (a restart) and its replication id (a promotion; a replica
  // resynchronised from another master takes that master's id)
  const runId = `${/^run_id:(\S+)/m.exec(info)?.[1] ?? 'unknown'}:${/^master_replid:(\S+)/m.exec(info)?.[1] ?? 'unknown'}`;
  const uptimeS = Number(/^uptime_in_seconds:(\d+)/m.exec(info)?.[1] ?? NaN);
  const neverPromoted = /^role:master\s*$/m.test(info) && /^second_repl_offset:-1\s*$/m.test(info);
  const seen = await applyEpoch(redis, runId, Date.now());
  return neverPromoted && Number.isFinite(uptimeS) ? Math.min(seen, Date.now() - uptimeS * 1000) : seen + PROMOTED_MARGIN_MS;
}

/**
 * How long after a promoted replica was first seen the old master may still have accepted writes that are
 * lost, ms: in a partition the old master keeps writing until `min-replicas-max-lag` (5 s in
 * ops/redis/replica.conf) passes without a replica's ack, and it can be promoted away from before that
 * (hostile review). 10 s covers that plus host clock skew between apply layers; plans created inside it are
 * asked of the exchange. Operators who raise `min-replicas-max-lag` above 8 s must keep this above it.
 */
export const PROMOTED_MARGIN_MS = 10_000;

/**
 * True when a "not found" answer proves the plan was never sent: the plan was created after the last possible
 * Redis loss (nothing of it can have been signed before; `planTsMs` not in the future), or the loss is older
 * than `settleMs` (no request signed before it can still be accepted: recvWindow).
 */
export function notFoundIsFinal(planTsMs: number | null, sinceMs: number, nowMs: number, settleMs: number): boolean {
  return nowMs - sinceMs >= settleMs || createdAfterEpoch(planTsMs, sinceMs, nowMs);
}

/**
 * True when the plan was created after the last moment Redis can have lost writes (`sinceMs`, see
 * {@link redisEpochSince}), with the producer's clock trusted within {@link PRODUCER_CLOCK_SKEW_MS} and never
 * in the future: every claim and send of such a plan happened in the current dataset, which has lost
 * nothing since, so its fresh claim proves nothing was sent and no query is needed.
 */
export function createdAfterEpoch(planTsMs: number | null, sinceMs: number, nowMs: number): boolean {
  return planTsMs !== null && planTsMs <= nowMs + PRODUCER_CLOCK_SKEW_MS && planTsMs > sinceMs + PRODUCER_CLOCK_SKEW_MS;
}

/**
 * Asks the exchange whether the plan's order exists (see the module comment). Never throws.
 * Retries errors with back-off (`lookupAttempts` × 3 tries from `lookupBackoffMs`, doubling, capped at 4 s),
 * honours Retry-After / ban ends (at most 60 s in total), and waits out the settle time of a young epoch.
 */
export async function queryPriorOrder(d: ApplyDeps, symbol: string, planId: string, planTsMs: number | null): Promise<PriorOutcome> {
  const gateway = d.gateway;
  if (!gateway) return { kind: 'none' };
  const cid = clientOrderIdFor(planId);
  let errors = 0;
  let rlWaited = 0;
  let lastErr = 'no answer';
  while (!d.signal.aborted) {
    try {
      const o = await gateway.fetchOrderByClientId(symbol, cid);
      const tsMs = Date.now();
      if (o) {
        if (orderIsFinal(o)) return { kind: 'found', order: o, tsMs };
        // known to the exchange, not final yet: it was sent; resolve it as an in-flight order, never send again
        const r = await resolveByLookup(executorDeps(d), symbol, cid);
        if (r.kind === 'order') return { kind: 'found', order: r.order, tsMs: r.tsMs };
        return { kind: 'unknown', error: `order ${cid} exists and is not final: ${r.error}` };
      }
      // -2013: final only when no request signed before a Redis loss can still be accepted
      const since = await redisEpochSince(d.redis);
      if (notFoundIsFinal(planTsMs, since, Date.now(), d.cfg.claimQuerySettleMs)) return { kind: 'none' };
      const left = Math.max(50, since + d.cfg.claimQuerySettleMs - Date.now());
      const ago = Date.now() - since;
      // a promoted master's epoch lies PROMOTED_MARGIN_MS after it was first seen: it can be in the future
      const when = ago >= 0 ? `Redis changed ${ago} ms ago (restart or failover)` : `Redis failed over moments ago (writes may be lost until ${-ago} ms from now)`;
      d.logger.info({ plan_id: planId, client_order_id: cid, wait_ms: left }, `${symbol}: plan ${planId} not at the exchange, but ${when}; asking again in ${left} ms`);
      await sleep(left, d.signal);
      continue;
    } catch (err) {
      lastErr = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      const wait = rateLimitWaitMs(err);
      if (wait !== null && rlWaited + wait <= 60_000) {
        rlWaited += wait;
        await sleep(wait + 50, d.signal);
        continue;
      }
      if (++errors >= d.cfg.lookupAttempts * 3) break;
      await sleep(Math.min(4000, d.cfg.lookupBackoffMs * 2 ** Math.min(errors - 1, 5)), d.signal);
    }
  }
  return { kind: 'unknown', error: `cannot tell whether order ${cid} exists: ${lastErr}` };
}

/**
 * Starts the pre-send query of a plan just claimed (fresh, or a resumed `claimed` stage) when the claim is
 * not proven durable; its answer is taken by the record step (record/prior-checks.ts `takePriorCheck`).
 * No-op in dry_run and when the mode needs no query.
 * @param claimedValue the dedupe value this consumer now holds (`claimed|<entry>|<token>`)
 */
export async function startPriorCheck(d: ApplyDeps, plan: { plan_id: string; symbol: string; decision: string; ts_ms?: unknown; basis_amt?: unknown }, entryId: string, claimedValue: string): Promise<void> {
  if (!(await claimNeedsQuery(d))) return;
  const tsMs = typeof plan.ts_ms === 'number' && Number.isFinite(plan.ts_ms) ? plan.ts_ms : null;
  // read AFTER the claim: a loss between the two shows as a newer epoch, and the plan is then queried
  const since = await redisEpochSince(d.redis).catch(() => Number.POSITIVE_INFINITY);
  if (createdAfterEpoch(tsMs, since, Date.now())) {
    d.metrics.claimQueries.inc({ outcome: 'not_needed' });
    return;
  }
  const now = Date.now();
  const result = queryPriorOrder(d, plan.symbol, plan.plan_id, tsMs).then(
    (o) => {
      d.metrics.claimQueries.inc({ outcome: o.kind === 'none' ? 'not_found' : o.kind });
      return o;
    },
    (err: Error): PriorOutcome => ({ kind: 'unknown', error: err.message }),
  );
  putPriorCheck(d, claimedValue, {
    planId: plan.plan_id,
    symbol: plan.symbol,
    decision: plan.decision,
    entryId,
    basisAmt: typeof plan.basis_amt === 'string' ? plan.basis_amt : undefined,
    startedMs: now,
    result,
  });
}
