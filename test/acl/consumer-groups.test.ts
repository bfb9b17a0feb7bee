/**
 * Plan-stream consumers under the generated ACL users: the governor's consumer (p3-governor: its own group's
 * leases, no XGROUP DELCONSUMER) takes over a dead peer's entries without deleting anyone, and the apply
 * layer's plan consumer (p3-apply, `reap: 'stream'`) deletes the dead consumers of every group of the
 * stream. No command of either is refused (ACL LOG). What ACLs cannot refuse, another plan consumer's user
 * reading the apply layer's group, is found: the apply layer's consumer reports it, `p3 doctor` fails.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { pino } from 'pino';
import type { Redis } from 'ioredis';
import { StreamConsumer, type StreamEntry } from '../../src/adapters/redis/consumer.js';
import { groupConsumers } from '../../src/adapters/redis/consumer-liveness.js';
import { GROUPS, STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { checkPlanStream } from '../../src/cli/doctor/plan-stream-check.js';
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

it("another user reading the apply layer's group (ACLs cannot refuse the group argument) is reported by its consumer and by p3 doctor", async () => {
  await admin.del(plan); // a fresh stream: no consumers of the test before
  await admin.xadd(plan, '*', 'plan', '{}', 'mac', 'x');
  await admin.xgroup('CREATE', plan, GROUPS.applyPlan, '0');
  const unleased: string[] = [];
  // the default lease (what p3 doctor assumes)
  const applyConsumer = new StreamConsumer({ logger, claimIdleMs: 60_000, blockMs: 200, stream: plan, redis: acl.connect('p3-apply'), group: GROUPS.applyPlan, consumer: 'apply-2', reap: 'stream', handler: () => new Promise((r) => setTimeout(r, 300)), onUnleasedConsumer: (c) => void unleased.push(c) });
  applyConsumer.start();
  const operator = acl.connect('p3-operator');
  expect((await checkPlanStream(operator)).status).toBe('OK');
  // the governor's password reads (and could acknowledge) the apply layer's plans under a name of its own
  const gov = acl.connect('p3-governor');
  const strategy = acl.connect('p3-strategy');
  let stop = false;
  const intruder = (async () => {
    while (!stop) {
      // new plans keep coming; the intruder takes those that come while the apply layer is busy
      await strategy.xadd(plan, '*', 'plan', '{}', 'mac', 'x');
      await gov.call('XREADGROUP', 'GROUP', GROUPS.applyPlan, 'intruder', 'COUNT', '1', 'STREAMS', plan, '>');
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await waitFor(() => unleased.includes('intruder'), 20_000, 50, 'the apply consumer reports the intruder');
    const doctor = await checkPlanStream(operator);
    expect(doctor.status).toBe('FAIL');
    expect(doctor.detail).toMatch(/without a liveness lease.*apply\/intruder/);
  } finally {
    stop = true;
    await intruder;
    await applyConsumer.stop();
  }
}, 60_000);
