/**
 * `p3 doctor` check `consumers`: FAIL while a consumer group of one of the project's streams has work waiting
 * that nobody takes (src/adapters/redis/consumer-watchdog.ts, docs/runbook.md "Consumer stalled"):
 * - entries no consumer of the group has read, the oldest added more than {@link CONSUMER_STALL_MS} ago (its
 *   consumers stalled, or none runs: plans then end `SKIPPED permit_timeout` while heartbeats stay fresh);
 * - entries pending on a consumer and untouched for {@link CONSUMER_STALL_PENDING_IDLE_MS} (a handler that never
 *   finishes, or a consumer gone without anyone taking its entries over).
 * Independent of the services' own watchdog (a process that hangs cannot report itself). Reads only (XINFO
 * GROUPS, XRANGE, XPENDING).
 */
import type { Redis } from 'ioredis';
import { CONSUMER_STALL_MS, CONSUMER_STALL_PENDING_IDLE_MS, groupBacklog, streamIdMs } from '../../adapters/redis/consumer-watchdog.js';
import { STREAMS } from '../../adapters/redis/keys.js';

/** One doctor line (same shape as `CheckResult` of checks.ts). */
export interface ConsumerCheckResult {
  check: 'consumers';
  status: 'OK' | 'FAIL';
  detail: string;
}

/** Group names of a stream (none when the stream does not exist). */
async function groupsOf(redis: Redis, stream: string): Promise<string[]> {
  try {
    return ((await redis.call('XINFO', 'GROUPS', stream)) as unknown[][]).map((g) => String(g[g.indexOf('name') + 1]));
  } catch (err) {
    if (/no such key/i.test((err as Error).message)) return [];
    throw err;
  }
}

/**
 * Runs the check over every consumer group of the project's streams (see the module comment).
 * @param nowMs the clock, epoch ms
 * @throws on a Redis error (the doctor reports a crashed check as FAIL)
 */
export async function checkConsumers(redis: Redis, nowMs = Date.now(), stallMs = CONSUMER_STALL_MS, pendingIdleMs = CONSUMER_STALL_PENDING_IDLE_MS): Promise<ConsumerCheckResult> {
  const problems: string[] = [];
  let groups = 0;
  for (const stream of new Set(Object.values(STREAMS))) {
    for (const group of await groupsOf(redis, stream)) {
      groups++;
      const b = await groupBacklog(redis, stream, group, undefined, pendingIdleMs);
      if (!b) continue;
      if (b.oldestUndeliveredId !== null) {
        const age = nowMs - streamIdMs(b.oldestUndeliveredId);
        if (age > stallMs) problems.push(`${stream} group ${group}: ${b.undelivered} entries unread, the oldest added ${Math.round(age / 1000)} s ago (its consumers are not reading)`);
      }
      if (b.stalePending > 0) problems.push(`${stream} group ${group}: ${b.stalePending}${b.stalePending >= 100 ? '+' : ''} entries pending untouched for ${Math.round(pendingIdleMs / 1000)} s or more`);
    }
  }
  if (problems.length) return { check: 'consumers', status: 'FAIL', detail: `${problems.join(' | ')} (docs/runbook.md, "Consumer stalled")` };
  return { check: 'consumers', status: 'OK', detail: `${groups} consumer groups: nothing waits unread more than ${Math.round(stallMs / 1000)} s, nothing pending untouched ${Math.round(pendingIdleMs / 1000)} s` };
}
