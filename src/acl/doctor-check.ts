/**
 * `p3 doctor` checks of the Redis ACL users (docs/architecture.md#least-privilege-and-signed-permits):
 * - `acl:default`: FAIL when the `default` user is enabled with full rights (every command on every
 *   key), found either by connecting WITHOUT credentials (a default user without password answers) or
 *   by `ACL GETUSER default`; a default user on without password but restricted is a WARN.
 * - `acl:users`: FAIL when a generated user (`p3 redis-acl`, src/acl/users.ts) has more rights on the
 *   server than the generated rules give it (commands, key patterns, channels, selectors, `nopass`);
 *   a user that does not exist is a WARN. Needs a connection allowed to run `ACL GETUSER` and
 *   `COMMAND LIST` (e.g. `p3-admin`); otherwise a WARN saying so.
 * - `acl:service-urls`: each service's `REDIS_URL` names its own user (`p3-apply` for the apply layer);
 *   another p3 user is a FAIL (more rights than it needs), no user / `default` a WARN.
 */
import type { Redis } from 'ioredis';
import { openRedis } from '../adapters/redis/client.js';
import type { Env } from '../config/env.js';
import type { SentinelConfig } from '../config/redis.js';
import type { ServiceName } from '../host/service-names.js';
import { excessRights, hasFullRights, parseGetUser, type CommandTable } from './compare.js';
import { ADMIN_USER, planGroupsFromEnv } from './render.js';
import { aclUsers, DEFAULT_PLAN_GROUPS, SERVICE_USERS, type PlanGroups } from './users.js';

/** One doctor line (same shape as `CheckResult` of the doctor command). */
export interface AclCheckResult {
  check: string;
  status: 'OK' | 'WARN' | 'FAIL';
  detail: string;
}

const msg = (err: unknown) => (err as Error)?.message ?? String(err);

/** Reads the server's command table (`COMMAND LIST`, categories on demand). @throws on NOPERM */
async function commandTable(redis: Redis): Promise<CommandTable> {
  const all = (await redis.call('COMMAND', 'LIST')) as string[];
  const cats = new Map<string, string[]>();
  for (const cat of (await redis.call('ACL', 'CAT')) as string[]) cats.set(cat, (await redis.call('COMMAND', 'LIST', 'FILTERBY', 'ACLCAT', cat)) as string[]);
  return { all, category: (c) => cats.get(c) ?? [] };
}

/**
 * Connects to the host of `redisUrl` (or, with `sentinel`, to the master the sentinels name) without
 * credentials and runs `fn` (null when the connection fails).
 */
async function anonymous<T>(redisUrl: string, fn: (r: Redis) => Promise<T>, sentinel: SentinelConfig | null = null): Promise<T | null> {
  const u = new URL(redisUrl);
  u.username = '';
  u.password = '';
  const r = openRedis(
    { url: u.toString(), sentinel },
    { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000, enableReadyCheck: false, disableClientInfo: true },
  );
  r.on('error', () => undefined);
  try {
    await r.connect();
    return await fn(r);
  } catch {
    return null;
  } finally {
    r.disconnect();
  }
}

/** The user name of a Redis URL (`default` when none). */
export function urlUser(redisUrl: string): string {
  try {
    const u = new URL(redisUrl);
    return u.username ? decodeURIComponent(u.username) : 'default';
  } catch {
    return 'default';
  }
}

async function checkDefault(redis: Redis, redisUrl: string, table: CommandTable | null, sentinel: SentinelConfig | null): Promise<AclCheckResult> {
  const check = 'acl:default';
  // 1. without credentials: does the default user answer, and can it read ACLs (a full-rights user can)?
  const anon = await anonymous(redisUrl, async (r) => {
    try {
      await r.ping();
    } catch (err) {
      return { open: false, detail: msg(err) };
    }
    try {
      const u = parseGetUser(await r.call('ACL', 'GETUSER', 'default'));
      const t = table ?? (await commandTable(r));
      return { open: true, full: u ? hasFullRights(u, t) : false };
    } catch {
      return { open: true, full: false };
    }
  }, sentinel);
  if (anon?.open && anon.full) return { check, status: 'FAIL', detail: 'the default user is on without a password and has every right: anyone who reaches Redis can clear holds, write permits and ledgers. Load the p3 redis-acl file (user default off)' };
  if (anon?.open) return { check, status: 'WARN', detail: 'the default user is on without a password (restricted rights); turn it off (user default off)' };
  // 2. with a password: ask the server, when allowed
  try {
    const u = parseGetUser(await redis.call('ACL', 'GETUSER', 'default'));
    if (u && table && hasFullRights(u, table)) return { check, status: 'FAIL', detail: 'the default user is on with full rights (password-protected): turn it off (user default off) and connect every component as its own user' };
    return { check, status: 'OK', detail: u?.flags.includes('on') ? 'default user on, needs a password, restricted' : 'default user off' };
  } catch (err) {
    return { check, status: 'OK', detail: `default user needs a password (${/NOPERM/.test(msg(err)) ? 'its rights cannot be read as this user' : msg(err)})` };
  }
}

async function checkUsers(redis: Redis, table: CommandTable | null, whoami: string, groups: PlanGroups): Promise<AclCheckResult> {
  const check = 'acl:users';
  if (!table) return { check, status: 'WARN', detail: `cannot compare the ACL users as ${whoami} (needs ACL GETUSER and COMMAND LIST): run p3 doctor with REDIS_URL of p3-admin` };
  const fails: string[] = [];
  const missing: string[] = [];
  for (const spec of [...aclUsers(groups), ADMIN_USER]) {
    let reply: unknown;
    try {
      reply = await redis.call('ACL', 'GETUSER', spec.user);
    } catch (err) {
      return { check, status: 'WARN', detail: `cannot read ACL users as ${whoami}: ${msg(err)}` };
    }
    const u = parseGetUser(reply);
    if (!u) {
      if (spec !== ADMIN_USER) missing.push(spec.user);
      continue;
    }
    if (spec === ADMIN_USER) continue;
    const extra = excessRights(spec, u, table);
    if (extra.length) fails.push(`${spec.user} has more rights than p3 redis-acl gives it: ${extra.join('; ')}`);
  }
  if (fails.length) return { check, status: 'FAIL', detail: fails.join(' | ') };
  if (missing.length) return { check, status: 'WARN', detail: `not defined: ${missing.join(', ')} (generate them with p3 redis-acl)` };
  return { check, status: 'OK', detail: `${aclUsers().length} users match the generated rules` };
}

function checkServiceUrls(envs: Partial<Record<ServiceName, Env>>): AclCheckResult {
  const check = 'acl:service-urls';
  const fails: string[] = [];
  const warns: string[] = [];
  for (const [svc, env] of Object.entries(envs) as Array<[ServiceName, Env | undefined]>) {
    const url = env?.REDIS_URL;
    if (!url) continue;
    const user = urlUser(url);
    const expected = SERVICE_USERS[svc];
    if (user === expected) continue;
    if (user === 'default') warns.push(`${svc} connects as the default user (expected ${expected})`);
    else fails.push(`${svc} connects as ${user}, expected ${expected}`);
  }
  if (fails.length) return { check, status: 'FAIL', detail: [...fails, ...warns].join('; ') };
  if (warns.length) return { check, status: 'WARN', detail: warns.join('; ') };
  return { check, status: 'OK', detail: Object.keys(envs).length ? 'every service connects as its own user' : 'not checked (no --env-dir)' };
}

/** The ACL checks (see module comment); `sentinel`: the connection goes through Sentinel. Never throws. */
export async function checkAcl(redis: Redis, redisUrl: string, envs: Partial<Record<ServiceName, Env>>, sentinel: SentinelConfig | null = null): Promise<AclCheckResult[]> {
  const whoami = String(await redis.call('ACL', 'WHOAMI').catch(() => urlUser(redisUrl)));
  const table = await commandTable(redis).catch(() => null);
  return [await checkDefault(redis, redisUrl, table, sentinel), await checkUsers(redis, table, whoami, planGroupsOf(envs)), checkServiceUrls(envs)];
}

/** The plan groups the services' env files configure (the defaults without them, or when one is invalid for an ACL file: p3 redis-acl refuses it). */
function planGroupsOf(envs: Partial<Record<ServiceName, Env>>): PlanGroups {
  try {
    return planGroupsFromEnv({ GOVERNOR_CONSUMER_GROUP: envs.governor?.GOVERNOR_CONSUMER_GROUP, P33_CONSUMER_GROUP: envs['position-state-brain']?.P33_CONSUMER_GROUP });
  } catch {
    return DEFAULT_PLAN_GROUPS;
  }
}
