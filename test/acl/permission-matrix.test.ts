/**
 * The generated permission matrix: every ACL user of `p3 redis-acl` × command family × key class
 * (rights-spec.ts: who may do what), checked with `ACL DRYRUN` against a private redis-server loaded with
 * the generated file; then real commands for what DRYRUN cannot show (the group argument of the stream-group
 * commands): a plan consumer cannot drop another group's pending entry, delete or overwrite the plan stream,
 * or fake another group's live consumer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Redis } from 'ioredis';
import { GROUPS, STREAMS, keys } from '../../src/adapters/redis/keys.js';
import { aclUsers } from '../../src/acl/users.js';
import { startAclRedis, type AclRedis } from './helpers.js';
import { CHANNEL_CLASSES, CHANNEL_RIGHTS, FAMILIES, KEY_CLASSES, RIGHTS, type FamilyName, type KeyClass } from './rights-spec.js';

let acl: AclRedis;
let admin: Redis;

beforeAll(async () => {
  acl = await startAclRedis();
  admin = acl.connect('p3-admin');
});
afterAll(async () => {
  await acl?.stop();
});

/** `ACL DRYRUN user ...cmd`: true when Redis would run it (`OK`), false with its refusal. */
async function dryrun(user: string, cmd: string[]): Promise<boolean> {
  try {
    return String(await admin.call('ACL', 'DRYRUN', user, ...cmd)) === 'OK';
  } catch {
    return false;
  }
}

const NOPERM = /NOPERM/;

describe('permission matrix (ACL DRYRUN, every user × family × key class)', () => {
  it('lists every generated user', () => {
    expect(Object.keys(RIGHTS).sort()).toEqual(aclUsers().map((u) => u.user).sort());
    expect(Object.keys(CHANNEL_RIGHTS).sort()).toEqual(aclUsers().map((u) => u.user).sort());
  });

  it('each user may run exactly the families the rights table gives it, on exactly those key classes', async () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const [user, rights] of Object.entries(RIGHTS)) {
      for (const [cls, { key, kind }] of Object.entries(KEY_CLASSES) as Array<[KeyClass, { key: string; kind: 'stream' | 'hash' | 'string' | 'lease' }]>) {
        for (const [fam, build] of Object.entries(FAMILIES) as Array<[FamilyName, (k: string, kind: string) => string[][] | null]>) {
          const cmds = build(key, kind);
          if (!cmds) continue;
          const expected = (rights[cls] ?? []).includes(fam);
          let actual = false;
          for (const c of cmds) if (await dryrun(user, c)) actual = true;
          checked++;
          if (actual !== expected) wrong.push(`${user} ${fam} ${cls} (${cmds[0]!.join(' ')}): ${actual ? 'ALLOWED' : 'refused'}, the table says ${expected ? 'allowed' : 'refused'}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(1000);
    expect(wrong).toEqual([]);
  }, 120_000);

  it('pub/sub: only the permit issuers publish the permit notification, only the apply layer subscribes', async () => {
    const wrong: string[] = [];
    for (const [user, r] of Object.entries(CHANNEL_RIGHTS)) {
      for (const ch of CHANNEL_CLASSES) {
        for (const [op, allowedOn] of [['PUBLISH', r.publish], ['SUBSCRIBE', r.subscribe]] as const) {
          const cmd = op === 'PUBLISH' ? [op, ch, 'm'] : [op, ch];
          const actual = await dryrun(user, cmd);
          if (actual !== allowedOn.includes(ch)) wrong.push(`${user} ${cmd.join(' ')}: ${actual ? 'ALLOWED' : 'refused'}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});

describe('stream groups and leases with real commands (the group argument DRYRUN cannot judge)', () => {
  it("a plan consumer cannot drop another group's pending entry, delete, overwrite or trim the plan stream, or fake its consumers", async () => {
    const plan = STREAMS.applyPlan;
    for (const g of [GROUPS.applyPlan, GROUPS.governor, GROUPS.p33]) await admin.xgroup('CREATE', plan, g, '0', 'MKSTREAM');
    const id = await admin.xadd(plan, '*', 'plan', '{}', 'mac', 'x');
    const apply = acl.connect('p3-apply');
    const read = (await apply.call('XREADGROUP', 'GROUP', GROUPS.applyPlan, 'apply-1', 'COUNT', '1', 'STREAMS', plan, '>')) as unknown[];
    expect(read).toHaveLength(1);
    const pendingOfApply = async () => ((await admin.call('XPENDING', plan, GROUPS.applyPlan)) as [number])[0];
    expect(await pendingOfApply()).toBe(1);
    for (const user of ['p3-governor', 'p3-brain']) {
      const c = acl.connect(user);
      await expect(c.call('XGROUP', 'DELCONSUMER', plan, GROUPS.applyPlan, 'apply-1')).rejects.toThrow(NOPERM);
      await expect(c.call('XGROUP', 'DESTROY', plan, GROUPS.applyPlan)).rejects.toThrow(NOPERM);
      await expect(c.call('XGROUP', 'SETID', plan, GROUPS.applyPlan, '$')).rejects.toThrow(NOPERM);
      await expect(c.del(plan)).rejects.toThrow(NOPERM);
      await expect(c.set(plan, 'x')).rejects.toThrow(NOPERM);
      await expect(c.call('XTRIM', plan, 'MAXLEN', '0')).rejects.toThrow(NOPERM);
      await expect(c.call('XDEL', plan, id!)).rejects.toThrow(NOPERM);
      await expect(c.xadd(plan, '*', 'plan', '{}')).rejects.toThrow(NOPERM);
      // a Lua script runs with the caller's rights
      await expect(c.eval("return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], 'apply', 'apply-1')", 1, plan)).rejects.toThrow(/NOPERM|can't run this command/);
      // the apply layer's leases: neither faked (a live consumer that is not) nor dropped (a live one taken for dead)
      await expect(c.set(keys.consumerLease(plan, GROUPS.applyPlan, 'apply-1'), '1', 'PX', 60_000)).rejects.toThrow(NOPERM);
      await expect(c.del(keys.consumerLease(plan, GROUPS.applyPlan, 'apply-1'))).rejects.toThrow(NOPERM);
      await expect(c.set(keys.consumerLease(STREAMS.reconcileClose, GROUPS.applyClose, 'apply-1'), '1')).rejects.toThrow(NOPERM);
    }
    // the governor and the brain cannot touch each other's leases either; each renews its own
    const gov = acl.connect('p3-governor');
    const brain = acl.connect('p3-brain');
    await expect(gov.set(keys.consumerLease(plan, GROUPS.p33, 'b1'), '1')).rejects.toThrow(NOPERM);
    await expect(brain.set(keys.consumerLease(plan, GROUPS.governor, 'g1'), '1')).rejects.toThrow(NOPERM);
    expect(await gov.set(keys.consumerLease(plan, GROUPS.governor, 'g1'), '1', 'PX', 60_000)).toBe('OK');
    expect(await brain.set(keys.consumerLease(plan, GROUPS.p33, 'b1'), '1', 'PX', 60_000)).toBe('OK');
    // the apply layer's pending entry and the stream are intact
    expect(await pendingOfApply()).toBe(1);
    expect(await admin.type(plan)).toBe('stream');
    expect(await acl.connect('p3-strategy').xadd(plan, '*', 'plan', '{}', 'mac', 'x')).toMatch(/^\d+-\d+$/);
  });

  it('only the apply layer deletes consumers (the reaper of every group); XACK on another group stays possible (documented residual)', async () => {
    const plan = STREAMS.applyPlan;
    const gov = acl.connect('p3-governor');
    const apply = acl.connect('p3-apply');
    await gov.call('XREADGROUP', 'GROUP', GROUPS.governor, 'gov-dead', 'COUNT', '1', 'STREAMS', plan, '0');
    await expect(gov.call('XGROUP', 'DELCONSUMER', plan, GROUPS.governor, 'gov-dead')).rejects.toThrow(NOPERM);
    expect(await apply.call('XGROUP', 'DELCONSUMER', plan, GROUPS.governor, 'gov-dead')).toBeTypeOf('number');
    // Redis ACLs do not see XACK's group argument: this remains possible and is what the apply layer's
    // foreign-consumer and plan-stream checks watch for (ops/redis/README.md)
    expect(await gov.call('XACK', plan, GROUPS.applyPlan, '0-1')).toBe(0);
  });
});
