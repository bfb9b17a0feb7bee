/**
 * Entry point of the `governor` service (`p3 run governor`, P3.2): "can we trade at all?" Trading
 * state, reconcile hold, snapshot freshness, max notional, plan rate, circuit breaker and plan age decide
 * `quantum:permit:governor:<plan_id>` for every plan of `quantum:stream:apply.plan`. See `governor.ts`.
 */
import type { Env } from '../../config/env.js';
import { createServiceContext } from '../../host/context.js';
import { parseRedisTarget } from '../../config/redis.js';
import type { Service } from '../../host/service.js';
import { parseGovernorConfig } from './config.js';
import { Governor } from './governor.js';

/**
 * Builds the governor service from the environment (variables in `config.ts`).
 * @throws ConfigError for a bad variable (the CLI exits 2 naming it)
 */
export async function createGovernorService(env: Env): Promise<Service> {
  const cfg = parseGovernorConfig(env);
  const ctx = createServiceContext('governor', { redis: parseRedisTarget(env), logLevel: cfg.logLevel, instanceId: cfg.instanceId });
  const governor = new Governor({ redis: ctx.redis, logger: ctx.logger, registry: ctx.registry, instanceId: ctx.instanceId, env }, cfg);
  let stopped = false;
  return {
    name: 'governor',
    registry: ctx.registry,
    metricsPort: cfg.metricsPort,
    redis: ctx.redis,
    instanceId: ctx.instanceId,
    async start() {
      await governor.start();
      ctx.logger.info({ mode: cfg.mode, group: cfg.group, instance: ctx.instanceId, allowlist: cfg.allowlist }, `governor started (mode=${cfg.mode})`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await governor.stop();
      ctx.redis.disconnect();
    },
    readiness() {
      return { redis: ctx.redis.status === 'ready', ...governor.readiness() };
    },
  };
}
