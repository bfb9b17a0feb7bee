/**
 * Reading the services' heartbeats back (`p3 status`, `p3 doctor`, the console): every hash
 * `quantum:heartbeat:<service>:<instance>` found by SCAN (never KEYS), and which expected services have a
 * live instance. The hash and how it is written: src/host/heartbeat.ts.
 */
import type { Redis } from 'ioredis';
import { scanKeys } from '../adapters/redis/client.js';
import { patterns } from '../adapters/redis/keys.js';
import { HEARTBEAT_TTL_MS } from '../host/heartbeat.js';

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
