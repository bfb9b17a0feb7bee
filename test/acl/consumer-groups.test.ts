/**
 * Plan-stream consumers under the generated ACL users: the governor's consumer (p3-governor: its own group's
 * leases, no XGROUP DELCONSUMER) takes over a dead peer's entries without deleting anyone, and the apply
 * layer's plan consumer (p3-apply, `reap: 'stream'`) deletes the dead consumers of every group of the
 * stream. No command of either is refused (ACL LOG).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Redis } from 'ioredis';
import { StreamConsumer, type StreamEntry } from '../../src/adapters/redis/consumer.js';
import { groupConsumers } from '../../src/adapters/redis/consumer-liveness.js';
import { GROUPS, STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { waitFor } from '../helpers/redis.js';
import { startAclRedis, type AclRedis } from './helpers.js';

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
let acl: AclRedis;
let admin: Redis;

beforeAll(async () => {
  acl = await startAclRedis();
  admin = acl.connect('p3-admin');
});
afterAll(async () => {
  await acl?.stop();
});

const plan = STREAMS.applyPlan;

it("the governor takes over a dead peer's entries without DELCONSUMER; the apply layer deletes every group's dead consumers", async () => {
  for (const g of [GROUPS.applyPlan, GROUPS.governor]) await admin.xgroup('CREATE', plan, g, '0', 'MKSTREAM');
  await admin.call('ACL', 'LOG', 'RESET');
  await admin.xadd(plan, '*', 'plan', '{}', 'mac', 'x');
  // what kill -9 of a governor leaves: an entry delivered to it, never acknowledged, no lease
  const gov = acl.connect('p3-governor');
  await gov.call('XREADGROUP', 'GROUP', GROUPS.governor, 'gov-dead', 'COUNT', '1', 'STREAMS', plan, '>');
  const handled: StreamEntry[] = [];
  const common = { logger, claimIdleMs: 60_000, leaseMs: 500, blockMs: 200, stream: plan };
  const governor = new StreamConsumer({ ...common, redis: gov, group: GROUPS.governor, consumer: 'gov-live', reap: 'none', handler: async (e) => void handled.push(e) });
  governor.start();
  await waitFor(() => handled.length === 1, 20_000, 25, "takeover of the dead governor's entry");
  await waitFor(async () => (await groupConsumers(admin, plan, GROUPS.governor)).find((c) => c.name === 'gov-dead')?.pending === 0, 20_000, 25, 'entry acknowledged');
  // the apply layer's plan consumer reaps it (the governor has no DELCONSUMER)
  const applyConsumer = new StreamConsumer({ ...common, redis: acl.connect('p3-apply'), group: GROUPS.applyPlan, consumer: 'apply-1', reap: 'stream', handler: async () => undefined });
  applyConsumer.start();
  await waitFor(async () => !(await groupConsumers(admin, plan, GROUPS.governor)).some((c) => c.name === 'gov-dead'), 20_000, 50, 'dead governor consumer deleted by the apply layer');
  // the live governor (its lease renewed under its own group's name) is never taken for dead
  expect(await admin.exists(keys.consumerLease(plan, GROUPS.governor, 'gov-live'))).toBe(1);
  expect((await groupConsumers(admin, plan, GROUPS.governor)).map((c) => c.name)).toEqual(['gov-live']);
  await governor.stop();
  await applyConsumer.stop();
  const refused = (await acl.aclLog()).filter((e) => ['p3-governor', 'p3-apply'].includes(e.username ?? ''));
  expect(refused.map((e) => `${e.username} ${e.reason} ${e.object}`)).toEqual([]);
}, 60_000);
