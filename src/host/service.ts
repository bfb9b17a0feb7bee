/**
 * What a service is to the process host: a lifecycle (start, stop), a readiness probe and its own metrics
 * registry. Crash recovery is just startup: a service keeps no state outside Redis.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { registerConsumerMetrics } from '../adapters/redis/consumer-watchdog.js';
import type { Redis } from 'ioredis';

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
