/**
 * Renders the users of `users.ts` in Redis's ACL file format (`aclfile`, loaded at start or by `ACL LOAD`).
 * Passwords come from `P3_REDIS_PASSWORD_<USER>` and are written only as SHA-256 hashes (`#<hex>`); the
 * file never contains a password. The ACL file format has no comments: every line is a `user` line.
 */
import { createHash } from 'node:crypto';
import type { Env } from '../config/env.js';
import { ConfigError } from '../config/errors.js';
import { GROUPS } from '../adapters/redis/keys.js';
import { aclUsers, DEFAULT_PLAN_GROUPS, type AclGrant, type AclUserSpec, type PlanGroups } from './users.js';
import { isPlaceholderSecret } from '../config/keys.js';

/** The optional administrator (password rotation, `ACL LOAD`, maintenance); no service connects as it. */
export const ADMIN_USER: AclUserSpec = {
  user: 'p3-admin',
  passwordEnv: 'P3_REDIS_PASSWORD_ADMIN',
  purpose: 'Redis administration only (ACL SETUSER for password rotation, ACL LOAD, CONFIG); never in a service env file',
  root: { rw: ['*'], commands: ['@all'] },
  selectors: [],
};

/** SHA-256 hex of a password, as Redis stores it (`#<hex>` in an ACL rule). */
export function passwordHash(password: string): string {
  return createHash('sha256').update(password, 'utf8').digest('hex');
}

/** The rule tokens of a grant: commands (after `-@all` for the root), then key patterns, then channel patterns. */
export function grantTokens(g: AclGrant): string[] {
  return [
    ...g.commands.map((c) => `+${c}`),
    ...(g.rw ?? []).map((k) => `~${k}`),
    ...(g.read ?? []).map((k) => `%R~${k}`),
    ...(g.write ?? []).map((k) => `%W~${k}`),
    ...(g.channels ?? []).map((c) => `&${c}`),
  ];
}

/** The ACL rules of a user without its password: `-@all`, commands and keys of the root, then `(selectors)`. */
export function userRules(u: AclUserSpec): string[] {
  const rootCmds = u.root.commands.includes('@all') ? [] : ['-@all'];
  return ['resetchannels', ...rootCmds, ...grantTokens(u.root), ...u.selectors.map((s) => `(${grantTokens(s).join(' ')})`)];
}

/** Options of {@link renderAclFile}. */
export interface AclRenderOptions {
  /** Also write `p3-admin` (needs `P3_REDIS_PASSWORD_ADMIN`). */
  admin?: boolean;
  /** The governor's and the brain's consumer groups (default: {@link DEFAULT_PLAN_GROUPS}). */
  groups?: PlanGroups;
}

/**
 * The plan-stream consumer groups of `GOVERNOR_CONSUMER_GROUP` / `P33_CONSUMER_GROUP` (the services'
 * defaults when unset). Each group's users get the liveness leases `...:<group>:*` only, so a group name
 * must not contain `:` or a glob character (it could then match another group's leases), and the three
 * plan groups (with the apply layer's `apply`) must differ.
 * @throws ConfigError naming the variable
 */
export function planGroupsFromEnv(env: Env): PlanGroups {
  const pick = (name: string, dflt: string): string => {
    const v = env[name]?.trim() || dflt;
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(v)) throw new ConfigError(name, `must be 1-64 of [A-Za-z0-9._-] for the ACL users (no ':' or glob character: its leases' key pattern would match another group's), got ${JSON.stringify(v)}`);
    return v;
  };
  const g = { governor: pick('GOVERNOR_CONSUMER_GROUP', DEFAULT_PLAN_GROUPS.governor), p33: pick('P33_CONSUMER_GROUP', DEFAULT_PLAN_GROUPS.p33) };
  if (new Set([g.governor, g.p33, GROUPS.applyPlan]).size !== 3) throw new ConfigError('P33_CONSUMER_GROUP', `the governor's (${g.governor}), the brain's (${g.p33}) and the apply layer's (${GROUPS.applyPlan}) plan groups must differ`);
  return g;
}

/**
 * The users to write, in file order.
 * @param opts `admin` adds {@link ADMIN_USER}; `groups` the plan groups
 */
export function usersToWrite(opts: AclRenderOptions = {}): AclUserSpec[] {
  return [...aclUsers(opts.groups), ...(opts.admin ? [ADMIN_USER] : [])];
}

/**
 * Renders the ACL file: one `user` line per user (`on`, password hash, rules), then `user default off`.
 * @param env the environment with `P3_REDIS_PASSWORD_<USER>` for every user (16+ characters), and the
 *   optional `GOVERNOR_CONSUMER_GROUP` / `P33_CONSUMER_GROUP` ({@link planGroupsFromEnv})
 * @returns the file text (ends with a newline)
 * @throws ConfigError naming the first missing, too short or placeholder password variable, or a bad group name
 */
export function renderAclFile(env: Env, opts: AclRenderOptions = {}): string {
  const lines: string[] = [];
  for (const u of usersToWrite({ groups: planGroupsFromEnv(env), ...opts })) {
    const pw = env[u.passwordEnv];
    if (pw === undefined || pw === '') throw new ConfigError(u.passwordEnv, `must be set: the password of Redis user ${u.user} (${u.purpose}); it is written hashed, never stored`);
    if (pw.length < 16) throw new ConfigError(u.passwordEnv, `too short for Redis user ${u.user}: use 16+ random characters (e.g. openssl rand -hex 24)`);
    if (isPlaceholderSecret(pw)) throw new ConfigError(u.passwordEnv, `is a placeholder, not a password for Redis user ${u.user}: use 16+ random characters (e.g. openssl rand -hex 24)`);
    lines.push(['user', u.user, 'reset', 'on', `#${passwordHash(pw)}`, ...userRules(u)].join(' '));
  }
  lines.push('user default reset off resetchannels -@all');
  return `${lines.join('\n')}\n`;
}
