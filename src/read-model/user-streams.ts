/**
 * The position brains' user data stream state for `p3 status` and `p3 doctor`: each brain
 * instance with the stream on keeps `quantum:p33:user_stream:<instance>` (TTL 15 s; written by
 * src/services/position-state-brain/user-stream.ts). Read with SCAN, never KEYS.
 */
import type { Redis } from 'ioredis';
import { scanKeys } from '../adapters/redis/client.js';
import { patterns } from '../adapters/redis/keys.js';

/** One brain instance's stream as shown. Times are epoch ms (0 = never). */
export interface UserStreamView {
  instance: string;
  /** `healthy` | `degraded` | `connecting` | `disconnected`. */
  state: string;
  reason: string;
  connected_since_ms: number;
  last_event_ms: number;
  reconnects: number;
  /** REST period in force, ms (the verify period while healthy). */
  rest_interval_ms: number;
  /** Measured lower bound of local − exchange clock, ms; null when not measured. */
  clock_offset_ms: number | null;
}

const num = (v: string | undefined): number => (v !== undefined && /^-?\d+$/.test(v) ? Number(v) : 0);

/** Reads every brain instance's stream state. */
export async function readUserStreamStates(redis: Redis, _nowMs: number): Promise<UserStreamView[]> {
  const out: UserStreamView[] = [];
  for (const key of (await scanKeys(redis, patterns.userStreams)).sort()) {
    const h = await redis.hgetall(key).catch(() => ({}) as Record<string, string>);
    if (!h.state) continue;
    out.push({
      instance: h.instance ?? key.split(':').pop() ?? '?',
      state: h.state,
      reason: h.reason ?? '',
      connected_since_ms: num(h.connected_since_ms),
      last_event_ms: num(h.last_event_ms),
      reconnects: num(h.reconnects),
      rest_interval_ms: num(h.rest_interval_ms),
      clock_offset_ms: h.clock_offset_ms ? num(h.clock_offset_ms) : null,
    });
  }
  return out;
}

/** Lines of the `User data stream` section. */
export function renderUserStreams(list: UserStreamView[], nowMs: number): string[] {
  const out = ['User data stream (position brain):'];
  if (list.length === 0) out.push('  none reported: P33_USER_STREAM=false, or no brain running (snapshots come from REST polls only)');
  for (const s of list) {
    const since = s.connected_since_ms > 0 ? `connected ${Math.round((nowMs - s.connected_since_ms) / 1000)} s` : 'not connected';
    const last = s.last_event_ms > 0 ? `, last event ${Math.round((nowMs - s.last_event_ms) / 1000)} s ago` : ', no event yet';
    const why = s.state === 'healthy' ? '' : ` (${s.reason})`;
    out.push(`  ${s.instance.padEnd(22)} ${s.state.toUpperCase()}${why}: ${since}${last}, ${s.reconnects} reconnect(s), REST every ${s.rest_interval_ms} ms`);
  }
  return out;
}

/** A `p3 doctor` line (same shape as doctor.ts's CheckResult). */
export interface UserStreamCheck {
  check: string;
  status: 'OK' | 'WARN' | 'FAIL';
  detail: string;
}

const off = (v: string | undefined) => v !== undefined && ['false', '0', 'no', 'off'].includes(v.trim().toLowerCase());

/**
 * `p3 doctor` check `user-stream`: skipped (OK) when the brain's env turns the stream or snapshots off;
 * FAIL when `P33_REST_VERIFY_INTERVAL_MS` is not below the engine's freshness limit (snapshots of quiet
 * symbols would go stale while the stream is healthy); WARN when no brain reports a stream or one is not
 * healthy (REST then polls at `P33_SNAPSHOT_INTERVAL_MS`: slower detection, still fail-closed); else OK.
 */
export async function checkUserStream(redis: Redis, brainEnv: Record<string, string | undefined>, freshnessSec: number): Promise<UserStreamCheck> {
  const check = 'user-stream';
  if (off(brainEnv.P33_USER_STREAM) || off(brainEnv.P33_SNAPSHOTS_ENABLED)) return { check, status: 'OK', detail: 'off (P33_USER_STREAM=false or snapshots off): REST polls only' };
  const verify = Number(brainEnv.P33_REST_VERIFY_INTERVAL_MS ?? 5000);
  if (Number.isFinite(verify) && verify >= freshnessSec * 1000) {
    return { check, status: 'FAIL', detail: `P33_REST_VERIFY_INTERVAL_MS=${verify} is not below P34_EXCHANGE_FRESHNESS_SEC=${freshnessSec}s: quiet symbols would go stale and hold while the stream is healthy` };
  }
  const list = await readUserStreamStates(redis, Date.now());
  if (list.length === 0) return { check, status: 'WARN', detail: 'no position brain reports a user data stream (brain down, or an older version): detection relies on REST polls' };
  const bad = list.filter((s) => s.state !== 'healthy');
  if (bad.length) return { check, status: 'WARN', detail: bad.map((s) => `${s.instance} ${s.state} (${s.reason})`).join('; ') + ': REST polls at P33_SNAPSHOT_INTERVAL_MS meanwhile' };
  return { check, status: 'OK', detail: list.map((s) => `${s.instance} healthy, ${s.reconnects} reconnect(s)`).join('; ') };
}
