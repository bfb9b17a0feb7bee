/**
 * `p3 doctor` check `consumers` (src/cli/doctor/consumer-check.ts) against a private redis-server: OK while every
 * group reads its entries; FAIL naming the stream and group when entries wait unread longer than the stall time
 * (a stalled or missing consumer: plans end `permit_timeout` while heartbeats stay fresh), and when entries stay
 * pending untouched.
 */
import { expect, it } from 'vitest';
import { checkConsumers } from '../../src/cli/doctor/consumer-check.js';
import { STREAMS } from '../../src/adapters/redis/keys.js';
import { useTestRedis } from '../helpers/redis.js';

const ctx = useTestRedis();

it('OK without groups and while groups read everything; FAIL for old unread entries and for stale pending ones', async () => {
  const { redis } = ctx;
  expect((await checkConsumers(redis)).status).toBe('OK');
  await redis.xgroup('CREATE', STREAMS.applyPlan, 'governor', '$', 'MKSTREAM');
  await redis.xgroup('CREATE', STREAMS.applyPlan, 'p33', '$');
  await redis.xadd(STREAMS.applyPlan, '*', 'plan', '{}');
  // the brain reads and acknowledges; the governor reads nothing
  const read = (await redis.call('XREADGROUP', 'GROUP', 'p33', 'brain-1', 'STREAMS', STREAMS.applyPlan, '>')) as Array<[string, Array<[string, string[]]>]>;
  await redis.xack(STREAMS.applyPlan, 'p33', read[0]![1][0]![0]);
  // just added: not a stall yet
  expect((await checkConsumers(redis)).status).toBe('OK');
  // 30 s later (the stall time is 20 s)
  const later = await checkConsumers(redis, Date.now() + 30_000);
  expect(later.status).toBe('FAIL');
  expect(later.detail).toContain(`${STREAMS.applyPlan} group governor: 1 entries unread`);
  expect(later.detail).not.toContain('group p33');
  expect(later.detail).toContain('docs/runbook.md, "Consumer stalled"');
  // the governor reads it but never acknowledges: pending untouched (idle bound 0 ms here)
  await redis.call('XREADGROUP', 'GROUP', 'governor', 'governor-1', 'STREAMS', STREAMS.applyPlan, '>');
  expect((await checkConsumers(redis, Date.now() + 30_000)).status).toBe('OK');
  await new Promise((r) => setTimeout(r, 20));
  const stale = await checkConsumers(redis, Date.now(), 20_000, 10);
  expect(stale.status).toBe('FAIL');
  expect(stale.detail).toContain('group governor: 1 entries pending untouched');
});
