/**
 * Service heartbeats in Redis, read by `p3 status`, `p3 doctor` and the console (src/read-model/heartbeats.ts).
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
 * Wiring: `startServices` (lifecycle.ts) starts one heartbeat per service after the service started, and
 * `stopServices` stops it (deleting the hash) before the service stops. The connection is the service's
 * own `redis` when the service exposes one (optional `Service.redis`), else a connection of its own to
 * `process.env.REDIS_URL` when that variable is set; otherwise no heartbeat is written (in-process
 * tests that never set REDIS_URL never touch a Redis they did not choose).
 */
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { keys } from '../adapters/redis/keys.js';
import { P3_VERSION } from './version.js';

/** Default interval between beats, milliseconds. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
/** Default TTL of a heartbeat hash, milliseconds (3 missed beats). */
export const HEARTBEAT_TTL_MS = 15_000;

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

