/**
 * Entry point of the `reconcile-engine` service (P3.4, `p3 run reconcile-engine`): "why doesn't our state
 * match the exchange, can we repair it, and if not, hold and heal" (docs/architecture.md#components, docs/architecture.md#reconcile-policy; seeds 000-004).
 *
 * Files of this folder: `config.ts` (env), `store.ts` (Redis reads and atomic scripts), `engine.ts`
 * (loops, applying decisions), `metrics.ts`, `status.ts` (`p3 status`). The decision itself is pure:
 * `src/domain/reconcile.ts` (+ `reconcile-evidence.ts`, `reconcile-close.ts`).
 */
import type { Redis } from 'ioredis';
import { GROUPS, STREAMS } from '../../adapters/redis/keys.js';
import type { Registry } from 'prom-client';
import type { Env } from '../../config/env.js';
import { createServiceContext } from '../../host/context.js';
import { parseRedisTarget } from '../../config/redis.js';
import type { Service } from '../../host/service.js';
import { parseReconcileEngineConfig, type ReconcileEngineConfig } from './config.js';
import { ReconcileEngine } from './engine.js';
import { createReconcileMetrics } from './metrics.js';

/** The running service; `engine` is exposed for tests (`engine.pass([...])`). */
export interface ReconcileEngineService extends Service {
  readonly redis: Redis;
  readonly engine: ReconcileEngine;
  readonly config: ReconcileEngineConfig;
}

/**
 * Builds the reconcile-engine service from the environment (see `config.ts` for every variable).
 * @throws ConfigError for a bad variable
 */
export async function createReconcileEngineService(env: Env): Promise<ReconcileEngineService> {
  const cfg = parseReconcileEngineConfig(env);
  const ctx = createServiceContext('reconcile-engine', { redis: parseRedisTarget(env), logLevel: cfg.logLevel, instanceId: cfg.instanceId });
  const metrics = createReconcileMetrics(ctx.registry, cfg.allowlist);
  const engine = new ReconcileEngine(ctx.redis, cfg, ctx.logger, metrics, ctx.instanceId);
  const registry: Registry = ctx.registry;
  let stopped = false;
  return {
    name: 'reconcile-engine',
    registry,
    metricsPort: cfg.metricsPort,
    redis: ctx.redis,
    instanceId: ctx.instanceId,
    engine,
    config: cfg,
    async start() {
      if (cfg.allowlist.length === 0) ctx.logger.warn('P34_ALLOWLIST / P3_ALLOWLIST is empty: nothing to reconcile');
      ctx.logger.info(
        {
          allowlist: cfg.allowlist,
          cadence_sec: cfg.cadenceSec,
          freshness_sec: cfg.decision.freshnessSec,
          drift_tolerance_pct: cfg.decision.driftTolerancePct,
          evidence_window_sec: cfg.decision.evidenceWindowSec,
          grace_ms: cfg.decision.graceMs,
          hold_ttl_sec: cfg.holdTtlSec,
          reconcile_close_enabled: cfg.decision.closeEnabled,
          reconcile_close_why: cfg.closeEnabledWhy,
          instance: ctx.instanceId,
        },
        `P3.4 reconcile engine starting (close ${cfg.decision.closeEnabled ? 'enabled' : 'disabled'}: ${cfg.closeEnabledWhy})`,
      );
      // The apply layer's close group must exist before the first close is published, or a close
      // published before the apply layer's first start would never be delivered (its group starts at $).
      if (cfg.decision.closeEnabled) {
        await ctx.redis.xgroup('CREATE', STREAMS.reconcileClose, GROUPS.applyClose, '$', 'MKSTREAM').catch((err: Error) => {
          if (!err.message.includes('BUSYGROUP')) ctx.logger.warn({ err: err.message }, 'could not create the apply layer close group yet');
        });
      }
      engine.start();
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await engine.stop();
      ctx.redis.disconnect();
    },
    readiness: () => engine.readiness(),
  };
}
