/**
 * Entry point of the `apply-layer` service (`p3 run apply-layer`): the ONLY component that sends
 * orders, each plan exactly once (docs/architecture.md#exactly-once-execution), and RECONCILE_CLOSE plans under the invariants of
 * docs/architecture.md#reconcile_close-invariants.
 *
 * Loops:
 * - consumer group `apply` on `quantum:stream:apply.plan` (`intake/plan-handler.ts`);
 * - consumer group `apply-close` on `quantum:stream:reconcile.close` (`intake/close-handler.ts`), unless
 *   `APPLY_RECONCILE_CLOSE_ENABLED=false`; partitioned by symbol (different symbols concurrently);
 * - consumer group `apply-flatten` on `quantum:stream:apply.flatten` (`intake/flatten-handler.ts`): an operator's
 *   FLATTEN plans (`p3 flatten`), in every trading state;
 * - every consumer keeps a liveness lease: a killed apply layer's pending entries are taken over by
 *   another within seconds and its consumer deleted (`src/adapters/redis/consumer-liveness.ts`);
 * - the in-flight sweep (`send/inflight.ts`): at start and every `APPLY_INFLIGHT_SWEEP_MS`, orders sent more
 *   than `APPLY_INFLIGHT_SETTLE_MS` ago and never recorded (crash between send and record) are resolved
 *   by client order id lookup, never re-sent;
 * - the plan stream watch (`plan-stream-watch.ts`): damage a producer's XADD arguments can do (deleted
 *   unread plans, a planted id blocking every XADD) is logged as an error, counted and marked for `p3 doctor`.
 * `dry_run` builds no exchange gateway at all: nothing can be sent, the ledger is never written.
 *
 * ## Layout: a one-way staircase
 *
 * A stream entry goes down five steps; each module imports only from the steps below it and from the base,
 * never from a step above or a sibling handler (test/apply/layout.test.ts holds this):
 *
 * 1. intake (`intake/`): one handler per stream (`plan-handler.ts` with the permit wait,
 *    `close-handler.ts` with the RECONCILE_CLOSE guardrails, `flatten-handler.ts`): verify the entry,
 *    refuse what can be refused before a claim, decide what to send after it;
 * 2. claim (`claim/`): `claim.ts` claims the plan once, or names it a duplicate, or resumes an interrupted
 *    entry; `durability.ts` starts the pre-send query of a claim Redis may have lost;
 * 3. send (`send/`): `send.ts` is the only place an order is sent (send-time gate, last-moment check,
 *    executor, then record); `inflight.ts` resolves orders left in flight (redeliveries, the sweep);
 *    `quiet.ts` and `symbol-lock.ts` keep a symbol still while a close or flatten is sized;
 * 4. record (`record/`): `record.ts` records the final result exactly once under the claim (or the
 *    order the pre-send query found, left in `prior-checks.ts` by the claim step);
 * 5. results (`results.ts`): the result fields, their count and log line, and results that record nothing.
 *
 * The base, below every step: `deps.ts` (what each step is given), `store.ts` (every Redis call of the
 * apply layer), `executor.ts` (every exchange call of an order: send, lookups), `config.ts`, `metrics.ts`,
 * `permit-waker.ts`, `plan-stream-watch.ts`. This module wires the steps into the service.
 */
import type { Env } from '../../config/env.js';
import { envKeyLookup, planPartition } from '../../domain/plan.js';
import { GROUPS, STREAMS } from '../../adapters/redis/keys.js';
import { StreamConsumer } from '../../adapters/redis/consumer.js';
import { createExchangeGateway, parseExchangeConfig } from '../../adapters/exchange/factory.js';
import { withSharedBackoff } from '../../adapters/exchange/backoff.js';
import type { ExchangeGateway } from '../../ports/exchange.js';
import { sleep } from '../../lib/sleep.js';
import { createServiceContext } from '../../host/context.js';
import { parseRedisTarget } from '../../config/redis.js';
import type { Service } from '../../host/service.js';
import { parseApplyConfig } from './config.js';
import { createApplyMetrics } from './metrics.js';
import type { ApplyDeps, ApplyHooks } from './deps.js';
import { keepUnresolvedInflight } from './store.js';
import { sweepInflight } from './send/inflight.js';
import { createPlanHandler } from './intake/plan-handler.js';
import { createCloseHandler } from './intake/close-handler.js';
import { createFlattenHandler } from './intake/flatten-handler.js';
import { PermitWaker } from './permit-waker.js';
import { PlanStreamWatch } from './plan-stream-watch.js';
import { PLAN_CONSUMER } from '../../plans/entry.js';

/** Longest the exchange warm-up may delay start, ms. */
const WARM_UP_MAX_MS = 5000;

/** Most RECONCILE_CLOSE plans handled at once (each of a different symbol). */
const CLOSE_CONCURRENCY = 16;

/** Consumer group of the plan stream (`quantum:stream:apply.plan`). */
export const APPLY_GROUP = GROUPS.applyPlan;
/** Consumer group of the RECONCILE_CLOSE stream (`quantum:stream:reconcile.close`). */
export const APPLY_CLOSE_GROUP = GROUPS.applyClose;

/** Optional injections (tests): a gateway instead of the factory's, and test seams. */
export interface ApplyLayerOptions {
  gateway?: ExchangeGateway;
  hooks?: ApplyHooks;
}

/**
 * Builds the apply-layer service from the environment (see `config.ts` for the variables; exchange
 * variables per the exchange factory).
 * @throws ConfigError for a bad variable, and for `APPLY_MODE=live` without `APPLY_ALLOW_LIVE=yes`
 */
export async function createApplyLayerService(env: Env, opts: ApplyLayerOptions = {}): Promise<Service> {
  const cfg = parseApplyConfig(env);
  const exchangeCfg = cfg.mode === 'dry_run' || opts.gateway ? null : parseExchangeConfig(env);
  const ctx = createServiceContext('apply-layer', { redis: parseRedisTarget(env), logLevel: cfg.logLevel, instanceId: cfg.instanceId });
  const metrics = createApplyMetrics(ctx.registry, cfg.allowlist);
  const abort = new AbortController();
  let gateway: ExchangeGateway | null = null;
  const waker = new PermitWaker(ctx.redis, ctx.logger);
  const deps: ApplyDeps = { cfg, redis: ctx.redis, gateway: null, logger: ctx.logger, metrics, instanceId: ctx.instanceId, hooks: opts.hooks ?? {}, signal: abort.signal, waker };
  const keyFor = envKeyLookup(env);
  const consumers: StreamConsumer[] = [];
  let sweepDone: Promise<void> | null = null;
  const planStreamWatch = new PlanStreamWatch(ctx.redis, ctx.logger, ctx.registry);
  let watchDone: Promise<void> | null = null;
  let stopped = false;

  // Orders whose outcome is still unknown stay in their symbol's in-flight hash (its TTL refreshed), on a timer of
  // their own: one sweep pass can spend minutes looking up a single order.
  const keepLoop = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      await sleep(Math.min(30_000, Math.max(1000, (cfg.inflightTtlSec * 1000) / 3)), abort.signal);
      if (abort.signal.aborted) break;
      await keepUnresolvedInflight(ctx.redis, cfg.inflightTtlSec).catch((err: Error) => ctx.logger.warn({ err: err.message }, 'keeping unresolved orders in flight failed; retrying'));
    }
  };

  const sweepLoop = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      try {
        const n = await sweepInflight(deps);
        if (n > 0) ctx.logger.info({ resolved: n }, `in-flight sweep resolved ${n} order(s)`);
      } catch (err) {
        if (!abort.signal.aborted) ctx.logger.warn({ err: (err as Error).message }, 'in-flight sweep failed; retrying');
      }
      await sleep(cfg.inflightSweepMs, abort.signal);
    }
  };

  // Loads markets, the clock offset and the position mode once at start, before the consumers run (at
  // most WARM_UP_MAX_MS), so the first order or RECONCILE_CLOSE does not pay ccxt's warm-up (~1.5 s
  // measured against the paper exchange). Failures only log: every later call retries on its own.
  const warmUp = async (g: ExchangeGateway): Promise<void> => {
    try {
      await g.serverTime();
      for (const sym of cfg.allowlist) await g.symbolRules(sym);
      if (cfg.closeEnabled) await g.fetchPositions();
    } catch (err) {
      if (!abort.signal.aborted) ctx.logger.warn({ err: (err as Error).message }, 'exchange warm-up failed; the first order will load markets itself');
    }
  };

  return {
    name: 'apply-layer',
    registry: ctx.registry,
    metricsPort: cfg.metricsPort,
    redis: ctx.redis,
    instanceId: ctx.instanceId,
    async start() {
      if (cfg.mode !== 'dry_run') {
        const raw = opts.gateway ?? createExchangeGateway(exchangeCfg!);
        gateway = withSharedBackoff(raw, ctx.redis, ctx.logger);
        deps.gateway = gateway;
        await Promise.race([warmUp(gateway), sleep(WARM_UP_MAX_MS, abort.signal)]);
      }
      // permit notifications before the plan consumer starts (never fails: without them plans wait for
      // their fallback re-read)
      await waker.start();
      // exhausted: 'park' — an entry is never acknowledged without its final result: one dead-lettered after
      // repeated failures (an exchange unreachable for minutes while its claim could not be proven) would leave
      // its dedupe claim orphaned for 24 h and every re-submission answered DROPPED_DUPLICATE
      const common = {
        redis: ctx.redis,
        consumer: ctx.instanceId,
        logger: ctx.logger,
        claimIdleMs: cfg.claimIdleMs,
        exhausted: 'park' as const,
        onUnleasedConsumer: () => planStreamWatch.unleased.inc(),
      };
      const parked = (stream: string) => ({ onParked: () => metrics.entriesParked.inc({ stream }) });
      // A new plan group starts at 0 (plans published before the first start are still answered; old
      // ones end as SKIPPED stale_plan or DROPPED_DUPLICATE). A new close group starts at `$`: old
      // closes are stale by construction and would only count as guardrail failures.
      // Plans of different symbols concurrently, one symbol's in stream order (PLAN_CONSUMER):
      // every per-plan check stays atomic in Redis (dedupe claim, send-time gate in applyBegin-13).
      // It also deletes the dead consumers of the governor's and the brain's groups (reap: 'stream'): only
      // the apply layer's Redis user may use XGROUP DELCONSUMER on the shared plan stream.
      consumers.push(new StreamConsumer({ ...common, ...parked(STREAMS.applyPlan), startId: '0', stream: STREAMS.applyPlan, group: APPLY_GROUP, handler: createPlanHandler(deps, keyFor), ...PLAN_CONSUMER, reap: 'stream' }));
      // Closes of different symbols run concurrently (one slow close, an exchange timeout, never delays
      // another symbol's); closes of one symbol one at a time, in stream order.
      if (cfg.closeEnabled) {
        consumers.push(new StreamConsumer({ ...common, ...parked(STREAMS.reconcileClose), startId: '$', stream: STREAMS.reconcileClose, group: APPLY_CLOSE_GROUP, handler: createCloseHandler(deps), partitionOf: planPartition, concurrency: CLOSE_CONCURRENCY }));
      }
      // FLATTEN: a group created at 0, so a flatten submitted while no apply layer ran is still executed
      // (or refused as stale_plan when older than APPLY_MAX_PLAN_AGE_SEC).
      consumers.push(new StreamConsumer({ ...common, ...parked(STREAMS.applyFlatten), startId: '0', stream: STREAMS.applyFlatten, group: GROUPS.applyFlatten, handler: createFlattenHandler(deps) }));
      for (const c of consumers) await c.ensureGroup().catch((err: Error) => ctx.logger.warn({ err: err.message }, 'consumer group not created yet; the loop retries'));
      for (const c of consumers) c.start();
      if (gateway) sweepDone = Promise.all([sweepLoop(), keepLoop()]).then(() => undefined);
      watchDone = planStreamWatch.run(abort.signal);
      ctx.logger.info({ mode: cfg.mode, allowlist: cfg.allowlist, instance: ctx.instanceId, reconcile_close: cfg.closeEnabled }, `apply-layer started (mode=${cfg.mode})`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      abort.abort();
      await Promise.all(consumers.map((c) => c.stop()));
      await sweepDone;
      await watchDone;
      waker.stop();
      await gateway?.close().catch(() => undefined);
      ctx.redis.disconnect();
    },
    readiness() {
      return { redis: ctx.redis.status === 'ready', consumers: consumers.length > 0 && consumers.every((c) => c.healthy) };
    },
  };
}
