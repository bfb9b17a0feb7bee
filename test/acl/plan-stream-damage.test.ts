/**
 * What the strategy's password alone can do to the plan stream with XADD's own arguments (Redis ACLs cannot
 * refuse them), against a private redis-server with the generated users:
 * - `XADD ... MAXLEN 0` deletes every unread and pending plan: the apply layer's watch (as p3-apply) logs an
 *   error, sets its metrics and a sticky marker, and `p3 doctor`'s plan-stream check (as p3-operator) FAILs
 *   until an operator deletes the marker;
 * - `XADD` with the largest id blocks every later `XADD *`: detected the same way, and
 *   `repairPlanStream` (as p3-admin, `p3 plan-stream repair`) makes the stream usable again, with every
 *   group delivering the next plan.
 * A healthy stream (unread, pending and acknowledged plans, normal trimming) is never reported.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import type { Redis } from 'ioredis';
import { GROUPS, STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { MAX_STREAM_ID, planStreamDamage, repairPlanStream } from '../../src/adapters/redis/plan-stream-health.js';
import { checkPlanStream } from '../../src/cli/doctor/plan-stream-check.js';
import { PlanStreamWatch } from '../../src/services/apply-layer/plan-stream-watch.js';
import { submitPlan } from '../../src/plans/submit.js';
import { startAclRedis, type AclRedis } from './helpers.js';

const KEY = 'plan-stream-damage-exit-key-0123456789';
const plan = STREAMS.applyPlan;
const GROUP_NAMES = [GROUPS.applyPlan, GROUPS.governor, GROUPS.p33];
let acl: AclRedis;
let admin: Redis;
let strategy: Redis;
let apply: Redis;
let operator: Redis;

beforeAll(async () => {
  acl = await startAclRedis();
  admin = acl.connect('p3-admin');
  strategy = acl.connect('p3-strategy');
  apply = acl.connect('p3-apply');
  operator = acl.connect('p3-operator');
});
afterAll(async () => {
  await acl?.stop();
});
beforeEach(async () => {
  await admin.del(plan, keys.planStreamDamage());
  for (const g of GROUP_NAMES) await admin.xgroup('CREATE', plan, g, '0', 'MKSTREAM');
});

/** `node bin/p3.mjs <args>` as `user`. */
function p3(args: string[], user: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ['bin/p3.mjs', ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', REDIS_URL: acl.urlFor(user) } });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A watch as the apply layer runs it, with its error log lines and metrics. */
function watch(): { w: PlanStreamWatch; errors: string[]; metrics: () => Promise<string> } {
  const errors: string[] = [];
  const registry = new Registry();
  const logger = pino({ level: 'error' }, { write: (s: string) => void errors.push(s) });
  return { w: new PlanStreamWatch(apply, logger, registry), errors, metrics: () => registry.metrics() };
}

/** Reads (and, with `ack`, acknowledges) every new entry for `group`, as its consumers would. */
async function consume(group: string, ack: boolean): Promise<string[]> {
  // with its liveness lease, as every p3 consumer (else p3 doctor reports it as reading without one)
  await admin.set(keys.consumerLease(plan, group, `${group}-1`), '1', 'PX', 60_000);
  const res = (await admin.call('XREADGROUP', 'GROUP', group, `${group}-1`, 'COUNT', '1000', 'STREAMS', plan, '>')) as Array<[string, Array<[string, unknown]>]> | null;
  const ids = res?.[0]?.[1].map(([id]) => id) ?? [];
  if (ack && ids.length) await admin.xack(plan, group, ...ids);
  return ids;
}

it('a healthy stream is never reported: unread, pending and acknowledged plans, normal trimming', async () => {
  const { w, errors } = watch();
  for (let i = 0; i < 5; i++) await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  expect(await w.check()).toEqual([]);
  for (const g of GROUP_NAMES) await consume(g, true);
  // trimming of entries every group read (what MAXLEN ~ does to old plans)
  await admin.xtrim(plan, 'MAXLEN', 3);
  expect(await w.check()).toEqual([]);
  // then one plan pending in the apply layer's group, one read by none
  await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  await consume(GROUPS.applyPlan, false);
  await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  expect(await w.check()).toEqual([]);
  expect(errors).toEqual([]);
  expect((await checkPlanStream(operator)).status).toBe('OK');
});

it('XADD MAXLEN 0 with the strategy password: detected loudly (error log, metric, sticky doctor FAIL until an operator clears it)', async () => {
  const { w, errors, metrics } = watch();
  for (let i = 0; i < 3; i++) await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  await consume(GROUPS.applyPlan, false); // pending in the apply layer's group
  await consume(GROUPS.governor, true);
  // the attack: allowed (ACLs cannot refuse XADD's MAXLEN), deletes every plan
  await strategy.xadd(plan, 'MAXLEN', '0', '*', 'plan', '{}', 'mac', 'x');
  expect(await strategy.xlen(`${plan}.dlq`)).toBe(0);
  const found = await w.check();
  const kinds = found.map((d) => `${d.kind}${/group (\S+)/.exec(d.detail)?.[1] ?? ''}`);
  expect(kinds.sort()).toEqual([`pending_deleted${GROUPS.applyPlan}`, `unread_deleted${GROUPS.applyPlan}`, `unread_deleted${GROUPS.governor}`, `unread_deleted${GROUPS.p33}`]);
  expect(errors.join('')).toMatch(/plan stream damaged/);
  expect(await metrics()).toMatch(/apply_plan_stream_damaged 1/);
  expect(await metrics()).toMatch(/apply_plan_stream_damage_total\{kind="unread_deleted"\} 3/);
  const doctor = await checkPlanStream(operator);
  expect(doctor.status).toBe('FAIL');
  expect(doctor.detail).toMatch(/deleted before group apply read them/);
  // the stream works on, the damage stays reported until p3-admin acknowledges the loss (p3 plan-stream repair)
  await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  for (const g of GROUP_NAMES) await consume(g, true);
  expect((await planStreamDamage(operator, Date.now())).map((d) => d.kind)).toContain('unread_deleted');
  const r = await repairPlanStream(admin, Date.now());
  expect(r).toMatchObject({ repaired: true, deleted: [] });
  expect(await planStreamDamage(operator, Date.now())).toEqual([]);
  expect(await admin.xpending(plan, GROUPS.applyPlan)).toEqual([0, null, null, null]);
  // the marker keeps the doctor failing until an operator reviewed and deleted it
  expect((await checkPlanStream(operator)).detail).toMatch(/recorded damage \(.*unread_deleted/);
  expect(await operator.del(keys.planStreamDamage())).toBe(1);
  expect((await checkPlanStream(operator)).status).toBe('OK');
  expect(await w.check()).toEqual([]);
  expect(await metrics()).toMatch(/apply_plan_stream_damaged 0/);
});

it('XADD with the largest id with the strategy password: every later XADD fails; detected, then repaired by p3-admin (p3 plan-stream repair)', async () => {
  const { w, errors } = watch();
  await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  await strategy.xadd(plan, MAX_STREAM_ID, 'plan', '{}', 'mac', 'x');
  await expect(submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY)).rejects.toThrow(/exhausted/);
  expect((await w.check()).map((d) => d.kind)).toEqual(['exhausted_id']);
  expect(errors.join('')).toMatch(/largest possible id/);
  expect((await checkPlanStream(operator)).status).toBe('FAIL');
  // not while a group has entries it has not read (one may be a real plan)
  const early = await repairPlanStream(admin, Date.now());
  expect(early.repaired).toBe(false);
  expect(early.reason).toMatch(/have not read every entry/);
  // the consumers read on (the planted entry is dead-lettered as unsigned and acknowledged)
  for (const g of GROUP_NAMES) await consume(g, true);
  // the runbook's commands: p3 plan-stream check (operator) fails, p3 plan-stream repair (admin) repairs
  expect(p3(['plan-stream', 'check'], 'p3-operator')).toMatchObject({ code: 1, out: expect.stringMatching(/FAIL exhausted_id/) });
  const r = p3(['plan-stream', 'repair'], 'p3-admin');
  expect(r.out).toMatch(new RegExp(`repaired: deleted 1 planted entry \\(${MAX_STREAM_ID}\\).*groups reset: ${GROUP_NAMES.join(', ')}`));
  expect(r.code).toBe(0);
  expect(p3(['plan-stream', 'check'], 'p3-operator')).toMatchObject({ code: 0, out: expect.stringMatching(/^OK /) });
  expect(await planStreamDamage(operator, Date.now())).toEqual([]);
  // producers add plans again, and every group gets the next one
  const next = await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  expect(next).toBeTruthy();
  for (const g of GROUP_NAMES) expect(await consume(g, true)).toHaveLength(1);
  expect(await planStreamDamage(operator, Date.now())).toEqual([]);
}, 60_000);

it("a planted largest id is removed by the apply layer's watch itself once every group read every entry: producers are blocked for seconds", async () => {
  const { w, errors, metrics } = watch();
  await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  await strategy.xadd(plan, MAX_STREAM_ID, 'plan', '{}', 'mac', 'x');
  await expect(submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY)).rejects.toThrow(/exhausted/);
  // the groups have not read the planted entry yet: nothing removed (a real plan could be among the unread)
  expect((await w.check()).map((d) => d.kind)).toEqual(['exhausted_id']);
  expect(await admin.xlen(plan)).toBe(2);
  // the consumers read on (the planted entry is dead-lettered as unsigned), then the next check removes it
  await consume(GROUPS.applyPlan, true);
  await consume(GROUPS.governor, true);
  await consume(GROUPS.p33, false); // read, not yet acknowledged: pending
  expect((await w.check()).map((d) => d.kind)).toEqual(['exhausted_id']);
  expect(await admin.xlen(plan)).toBe(2); // the planted entry is pending in p33: kept
  await admin.xack(plan, GROUPS.p33, MAX_STREAM_ID);
  expect((await w.check()).map((d) => d.kind)).toEqual(['exhausted_id']);
  expect(errors.join('')).toMatch(/removed 1 planted entry/);
  expect(await metrics()).toMatch(/apply_plan_stream_repairs_total 1/);
  expect(await w.check()).toEqual([]);
  // producers add plans again and every group gets the next one; the record stays for the operator
  await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  for (const g of GROUP_NAMES) expect(await consume(g, true)).toHaveLength(1);
  expect(await w.check()).toEqual([]);
  expect((await checkPlanStream(operator)).detail).toMatch(/recorded damage \(exhausted_id\)/);
});

it('XADD MAXLEN 0 with the largest id (the planted id deleted at once): the watch still unblocks producers', async () => {
  const { w, errors } = watch();
  await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  for (const g of GROUP_NAMES) await consume(g, true);
  // one XADD with the strategy's password: the stream is emptied and its last id is the largest possible
  await strategy.call('XADD', plan, 'MAXLEN', '0', MAX_STREAM_ID, 'plan', '{}', 'mac', 'x');
  expect(await admin.xlen(plan)).toBe(0);
  await expect(submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY)).rejects.toThrow(/exhausted|equal or smaller/);
  // no group can ever read that id (it is gone): waiting for them would block producers for good
  expect((await w.check()).map((d) => d.kind)).toContain('exhausted_id');
  expect(errors.join('')).toMatch(/removed/);
  await submitPlan(strategy, { symbol: 'BTCUSDT', action: 'FULL_CLOSE' }, KEY);
  for (const g of GROUP_NAMES) expect(await consume(g, true)).toHaveLength(1);
});

it('more unread plans deleted than the check reads back (a flood, then MAXLEN): still reported', async () => {
  // the groups fall more than 10,000 entries behind, then a MAXLEN trim deletes all but one
  const p = strategy.pipeline();
  for (let i = 0; i < 10_050; i++) p.xadd(plan, '*', 'plan', '{}', 'mac', 'x');
  await p.exec();
  await strategy.call('XADD', plan, 'MAXLEN', '1', '*', 'plan', '{}', 'mac', 'x');
  const found = await planStreamDamage(operator, Date.now());
  expect(found.map((d) => d.kind)).toContain('unread_deleted');
}, 60_000);
