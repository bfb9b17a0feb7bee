/**
 * What every service shares: a lifecycle (start, drain, stop), a readiness probe, its own metrics
 * registry and HTTP server, and signal handling for `p3 run`. Crash recovery is just startup: a service
 * keeps no state outside Redis.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import { startOpsServer, type OpsServer } from '../adapters/metrics/http.js';
import type { Redis } from 'ioredis';
import { createRedis } from '../adapters/redis/client.js';
import { registerConsumerMetrics } from '../adapters/redis/consumer-watchdog.js';
import { parseRedisTarget } from '../config/redis.js';
import { registerBackoffGauge, registerDlqGauge, startHeartbeat, type Heartbeat } from './heartbeat.js';

/** A long-running service (`p3 run <name>`). */
export interface Service {
  /** Service name, e.g. `reconcile-engine` (also the systemd unit suffix). */
  readonly name: string;
  /** The service's own Prometheus registry (several services may share a process). */
  readonly registry: Registry;
  /** Port for `/metrics`, `/healthz`, `/readyz` (0 = any free port). */
  readonly metricsPort: number;
  /** Starts loops; resolves once the service is running (not necessarily ready). */
  start(): Promise<void>;
  /** Stops taking new work, finishes the entry in hand, closes connections. Idempotent. */
  stop(): Promise<void>;
  /** Readiness checks for `/readyz` (e.g. `{redis: true, loop: true}`). */
  readiness(): Record<string, boolean>;
  /** Optional: the service's Redis connection, used for its heartbeat (see `heartbeat.ts`). */
  readonly redis?: Redis;
  /** Optional: the instance id (`ServiceContext.instanceId`) reported in its heartbeat. */
  readonly instanceId?: string;
}

/**
 * Creates a registry with the default process metrics and the stream consumers' liveness metrics
 * (`p3_stream_consumer_*`, consumer-watchdog.ts: every consumer of the process), labelled with the service name.
 */
export function createRegistry(service: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  registerConsumerMetrics(registry);
  return registry;
}

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

export { sleep } from '../lib/sleep.js';
