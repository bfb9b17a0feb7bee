/**
 * Service heartbeats in Redis, read by `p3 status` and `p3 doctor`.
 *
 * Every running service instance keeps one hash `quantum:heartbeat:<service>:<instance>`
 * (`keys.heartbeat`) with the fields `name`, `instance`, `version`, `pid`, `host`, `started_ms`,
 * `last_beat_ms` (epoch milliseconds), rewritten every `intervalMs` (default 5 s) with a TTL of `ttlMs`
 * (default 15 s) in one MULTI. A crashed or frozen instance disappears by itself after the TTL; a clean
 * stop deletes its hash at once.
 *
 * Invariants:
 * - A heartbeat is never written without its TTL (HSET and PEXPIRE in one MULTI), so no key outlives
 *   its instance.
 * - Monitoring reads use SCAN (`patterns.heartbeats`), never KEYS.
 * - Heartbeat failures (Redis down) are logged once per outage and never stop the service: the beat
 *   resumes when Redis answers again.
 *
 * Wiring: `startServices` (runtime.ts) starts one heartbeat per service after the service started, and
 * `stopServices` stops it (deleting the hash) before the service stops. The connection is the service's
 * own `redis` when the service exposes one (optional `Service.redis`), else a connection of its own to
 * `process.env.REDIS_URL` when that variable is set; otherwise no heartbeat is written (in-process
 * tests that never set REDIS_URL never touch a Redis they did not choose).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { dlq, keys, patterns, STREAMS } from '../adapters/redis/keys.js';
import { scanKeys } from '../adapters/redis/client.js';
import { fromRoot } from '../lib/root.js';

/** Default interval between beats, milliseconds. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
/** Default TTL of a heartbeat hash, milliseconds (3 missed beats). */
export const HEARTBEAT_TTL_MS = 15_000;

/** The package version (`package.json`), or `unknown` when it cannot be read. */
export const P3_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** Options of {@link startHeartbeat}. */
export interface HeartbeatOptions {
  /** Service name, e.g. `reconcile-engine`. */
  name: string;
  /** Instance id (`P3_INSTANCE_ID`, else `<hostname>-<pid>`). */
  instance?: string;
  /** Milliseconds between beats (default {@link HEARTBEAT_INTERVAL_MS}). */
  intervalMs?: number;
  /** TTL of the hash in milliseconds (default {@link HEARTBEAT_TTL_MS}); must exceed `intervalMs`. */
  ttlMs?: number;
  logger?: Logger;
  /** Version to report (default {@link P3_VERSION}). */
  version?: string;
}

/** A running heartbeat. */
export interface Heartbeat {
  /** The Redis key written. */
  readonly key: string;
  /** Writes one beat now (also done by the timer). Never throws. */
  beat(): Promise<void>;
  /** Stops the timer and deletes the hash (best effort, never throws). Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts beating for one service instance: writes the first beat before resolving (best effort), then
 * every `intervalMs` on an unref'd timer.
 * @throws Error when `ttlMs <= intervalMs` (the hash would expire between beats)
 */
export async function startHeartbeat(redis: Redis, opts: HeartbeatOptions): Promise<Heartbeat> {
  const intervalMs = opts.intervalMs ?? HEARTBEAT_INTERVAL_MS;
  const ttlMs = opts.ttlMs ?? HEARTBEAT_TTL_MS;
  if (!(ttlMs > intervalMs)) throw new Error(`heartbeat ttlMs (${ttlMs}) must exceed intervalMs (${intervalMs})`);
  const instance = opts.instance ?? process.env.P3_INSTANCE_ID ?? `${hostname()}-${process.pid}`;
  const key = keys.heartbeat(opts.name, instance);
  const fixed = {
    name: opts.name,
    instance,
    version: opts.version ?? P3_VERSION,
    pid: String(process.pid),
    host: hostname(),
    started_ms: String(Date.now()),
  };
  let stopped = false;
  let failing = false;
  let inFlight: Promise<void> = Promise.resolve();

  const write = async (): Promise<void> => {
    if (stopped) return;
    try {
      await redis
        .multi()
        .hset(key, { ...fixed, last_beat_ms: String(Date.now()) })
        .pexpire(key, ttlMs)
        .exec();
      if (failing) opts.logger?.info({ key }, 'heartbeat resumed');
      failing = false;
    } catch (err) {
      if (!failing) opts.logger?.warn({ key, err: (err as Error).message }, 'heartbeat write failed');
      failing = true;
    }
  };
  const beat = (): Promise<void> => {
    inFlight = inFlight.then(write);
    return inFlight;
  };

  await beat();
  const timer = setInterval(() => void beat(), intervalMs);
  timer.unref();

  return {
    key,
    beat,
    stop: async () => {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      await inFlight;
      await redis.del(key).catch(() => undefined);
    },
  };
}

/** One heartbeat as read back from Redis. */
export interface HeartbeatInfo {
  key: string;
  name: string;
  instance: string;
  version: string;
  pid: number | null;
  host: string;
  /** Epoch ms when the instance started (null when the field is missing or unparseable). */
  startedMs: number | null;
  /** Epoch ms of the last beat (null when missing or unparseable). */
  lastBeatMs: number | null;
  /** Remaining TTL in ms (`PTTL`: -1 no expiry, which is a schema violation; -2 vanished meanwhile). */
  ttlMs: number;
}

function intOrNull(s: string | undefined): number | null {
  return s !== undefined && /^\d+$/.test(s) ? Number(s) : null;
}

/**
 * Reads every heartbeat hash (SCAN `quantum:heartbeat:*`, never KEYS), sorted by name then instance.
 * Keys that vanished between SCAN and HGETALL are skipped.
 */
export async function readHeartbeats(redis: Redis): Promise<HeartbeatInfo[]> {
  const found = await scanKeys(redis, patterns.heartbeats);
  const out: HeartbeatInfo[] = [];
  for (const key of found) {
    const [h, ttl] = await Promise.all([redis.hgetall(key), redis.pttl(key)]);
    if (Object.keys(h).length === 0) continue;
    const rest = key.slice('quantum:heartbeat:'.length);
    const sep = rest.indexOf(':');
    out.push({
      key,
      name: h.name ?? (sep > 0 ? rest.slice(0, sep) : rest),
      instance: h.instance ?? (sep > 0 ? rest.slice(sep + 1) : ''),
      version: h.version ?? 'unknown',
      pid: intOrNull(h.pid),
      host: h.host ?? '',
      startedMs: intOrNull(h.started_ms),
      lastBeatMs: intOrNull(h.last_beat_ms),
      ttlMs: ttl,
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name) || a.instance.localeCompare(b.instance));
}

/** Which of the expected services have at least one live instance. */
export interface LivenessReport {
  /**
   * Service name → its live instances (heartbeat within `maxAgeMs`). An object without prototype: the
   * names come from Redis keys, and a service named `constructor` or `__proto__` is just a name.
   */
  alive: Record<string, HeartbeatInfo[]>;
  /** Expected services without any live instance. */
  missing: string[];
  /** Heartbeats older than `maxAgeMs` (frozen process whose key has not expired yet) or without a valid beat time. */
  stale: HeartbeatInfo[];
}

/**
 * Classifies heartbeats against the services that should run.
 * @param expected service names (e.g. `SERVICE_NAMES`)
 * @param nowMs current epoch ms
 * @param maxAgeMs a beat older than this is stale (default {@link HEARTBEAT_TTL_MS})
 */
export function livenessReport(heartbeats: HeartbeatInfo[], expected: readonly string[], nowMs: number, maxAgeMs = HEARTBEAT_TTL_MS): LivenessReport {
  const alive = Object.create(null) as Record<string, HeartbeatInfo[]>;
  const stale: HeartbeatInfo[] = [];
  for (const hb of heartbeats) {
    if (hb.lastBeatMs === null || nowMs - hb.lastBeatMs > maxAgeMs) {
      stale.push(hb);
      continue;
    }
    (alive[hb.name] ??= []).push(hb);
  }
  return { alive, missing: expected.filter((n) => !(Object.hasOwn(alive, n) && alive[n]!.length > 0)), stale };
}

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
