/**
 * The gauges every service exports besides its own metrics, read from Redis at scrape time: the length of
 * each dead-letter stream and the remaining shared exchange back-off. The alerts take `max by (...)` over
 * all services, so they do not depend on one process. Registered by `startServices` (lifecycle.ts) on the
 * heartbeat's connection.
 */
import type { Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import { dlq, keys, STREAMS } from '../adapters/redis/keys.js';

/** Name of the dead-letter gauge registered by {@link registerDlqGauge}. */
export const DLQ_GAUGE_NAME = 'p3_dlq_entries';

/**
 * Registers the gauge `p3_dlq_entries{stream}` in `registry`: the length (XLEN) of every dead-letter
 * stream `<stream>.dlq` of `STREAMS`, read at scrape time. Every service exports it (the alert takes
 * `max by (stream)`), so the alert does not depend on one process. While Redis is unreachable the
 * previous values stay (the service-down and Redis alerts say why). Registering twice is a no-op.
 */
export function registerDlqGauge(registry: Registry, redis: Redis): void {
  if (registry.getSingleMetric(DLQ_GAUGE_NAME)) return;
  new Gauge({
    name: DLQ_GAUGE_NAME,
    help: 'Entries in each dead-letter stream (<stream>.dlq); any entry is a message rejected for good',
    labelNames: ['stream'],
    registers: [registry],
    async collect() {
      try {
        for (const [stream, n] of Object.entries(await readDlqCounts(redis))) if (n !== null) this.set({ stream }, n);
      } catch {
        // Redis down: keep the last values.
      }
    },
  });
}

/**
 * Length (XLEN) of every dead-letter stream `<stream>.dlq` of `STREAMS`, in one pipeline: stream name →
 * entries, or null when that stream could not be read (e.g. WRONGTYPE). Used by the gauge and the console.
 * @throws when Redis is unreachable
 */
export async function readDlqCounts(redis: Redis): Promise<Record<string, number | null>> {
  const streams = Object.values(STREAMS).map(dlq);
  const pipe = redis.pipeline();
  for (const s of streams) pipe.xlen(s);
  const res = (await pipe.exec()) ?? [];
  return Object.fromEntries(streams.map((s, i) => {
    const [err, n] = res[i] ?? [new Error('no reply'), null];
    return [s, err ? null : Number(n)];
  }));
}

/** Name of the back-off gauge registered by {@link registerBackoffGauge}. */
export const BACKOFF_GAUGE_NAME = 'p3_exchange_backoff_remaining_seconds';

/**
 * Registers the gauge `p3_exchange_backoff_remaining_seconds`: seconds until the shared exchange back-off
 * ends (`quantum:exchange:backoff_until`, epoch ms, raised on HTTP 429/418 with Retry-After, docs/architecture.md#exactly-once-execution),
 * 0 when none; read at scrape time. A long back-off is an IP ban (seed 002: ~75 min). Registering twice is
 * a no-op; while Redis is unreachable the last value stays.
 */
export function registerBackoffGauge(registry: Registry, redis: Redis): void {
  if (registry.getSingleMetric(BACKOFF_GAUGE_NAME)) return;
  new Gauge({
    name: BACKOFF_GAUGE_NAME,
    help: 'Seconds until the shared exchange back-off (HTTP 429/418 Retry-After) ends; 0 = none',
    registers: [registry],
    async collect() {
      try {
        const until = Number(await redis.get(keys.exchangeBackoffUntil()));
        this.set(Number.isFinite(until) && until > Date.now() ? (until - Date.now()) / 1000 : 0);
      } catch {
        // Redis down: keep the last value.
      }
    },
  });
}
