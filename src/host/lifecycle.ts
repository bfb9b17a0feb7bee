/**
 * The life of the services in one process (`p3 run`, the demo, tests): start each with its HTTP server
 * (`/metrics`, `/healthz`, `/readyz`) and its heartbeat, stop them in reverse order, and wait for the
 * signal that ends the process. What a service is: `service.ts`.
 */
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { startOpsServer, type OpsServer } from '../adapters/metrics/http.js';
import { createRedis } from '../adapters/redis/client.js';
import { parseRedisTarget } from '../config/redis.js';
import { registerBackoffGauge, registerDlqGauge } from './gauges.js';
import { startHeartbeat, type Heartbeat } from './heartbeat.js';
import type { Service } from './service.js';

/** A started service with its HTTP server. */
export interface RunningService {
  service: Service;
  ops: OpsServer;
  /** The service's heartbeat (absent when no Redis is known for it, see `heartbeat.ts`). */
  heartbeat?: Heartbeat;
  /** A connection opened for the heartbeat only (closed on stop). */
  heartbeatRedis?: Redis;
}

/**
 * Starts the heartbeat of a started service: on its own `redis`, else on a connection to
 * `process.env.REDIS_URL` (through Sentinel when `REDIS_SENTINELS` is set), else none; on the same connection, registers the `p3_dlq_entries` and
 * `p3_exchange_backoff_remaining_seconds` gauges in the service's registry. Never throws (a heartbeat must not stop a service).
 */
async function startServiceHeartbeat(service: Service, logger?: Logger): Promise<Pick<RunningService, 'heartbeat' | 'heartbeatRedis'>> {
  let heartbeatRedis: Redis | undefined;
  try {
    let redis = service.redis;
    if (!redis && process.env.REDIS_URL) redis = heartbeatRedis = createRedis(parseRedisTarget(process.env), { name: `p3:heartbeat:${service.name}`, logger });
    if (!redis) return {};
    registerDlqGauge(service.registry, redis);
    registerBackoffGauge(service.registry, redis);
    const heartbeat = await startHeartbeat(redis, { name: service.name, instance: service.instanceId, logger });
    return { heartbeat, heartbeatRedis };
  } catch (err) {
    heartbeatRedis?.disconnect();
    logger?.warn({ svc: service.name, err: (err as Error).message }, 'heartbeat not started');
    return {};
  }
}

/**
 * Starts each service and its HTTP server. The metrics port is bound first, so a port already in use
 * stops the start before the service takes any work (no invisible instance consuming plans). On any
 * failure, stops what was started (including the failing service) and rethrows.
 * @throws Error naming the service (e.g. `governor: metrics port 8044 is in use (EADDRINUSE)`)
 */
export async function startServices(services: Service[], logger?: Logger): Promise<RunningService[]> {
  const running: RunningService[] = [];
  try {
    for (const service of services) {
      let ops: OpsServer | null = null;
      try {
        ops = await startOpsServer(service.registry, () => service.readiness(), service.metricsPort);
        await service.start();
      } catch (err) {
        await ops?.close().catch(() => undefined);
        await service.stop().catch(() => undefined);
        const e = err as NodeJS.ErrnoException;
        if (e.code === 'EADDRINUSE') throw new Error(`${service.name}: metrics port ${service.metricsPort} is in use (EADDRINUSE); another instance runs here, or set its *_PROMETHEUS_PORT`);
        throw err;
      }
      logger?.info({ svc: service.name, metrics_port: ops.port }, `${service.name} started; metrics on :${ops.port}/metrics`);
      running.push({ service, ops, ...(await startServiceHeartbeat(service, logger)) });
    }
  } catch (err) {
    await stopServices(running);
    throw err;
  }
  return running;
}

/** Stops services in reverse order, then their HTTP servers. Never throws. */
export async function stopServices(running: RunningService[]): Promise<void> {
  for (const r of [...running].reverse()) {
    await r.heartbeat?.stop().catch(() => undefined);
    r.heartbeatRedis?.disconnect();
    await r.service.stop().catch(() => undefined);
    await r.ops.close().catch(() => undefined);
  }
}

/** Resolves on the first SIGINT or SIGTERM. */
export function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
