/**
 * Where Redis is (docs/architecture.md#exactly-once-execution, docs/architecture.md#interfaces): `REDIS_URL` alone (one server), or Redis Sentinel, which names the
 * current master and promotes a replica when it fails. Every connection of the project is opened from a
 * {@link RedisTarget} by the factory in `src/adapters/redis/client.ts`, so every service, the console and
 * the CLI follow a failover without a restart.
 *
 * | variable | default | meaning |
 * |---|---|---|
 * | `REDIS_URL` | `redis://127.0.0.1:6379` | the server; with Sentinel only its user, password, database and scheme (`rediss://` = TLS to the data nodes) count, the master's address comes from the sentinels |
 * | `REDIS_SENTINELS` | — | `host:port,host:port,...` of the sentinels (three or more for a quorum of two); turns Sentinel on |
 * | `REDIS_SENTINEL_NAME` | — | the master group name (`sentinel monitor <name> ...`); required with `REDIS_SENTINELS` |
 * | `REDIS_SENTINEL_USERNAME` / `REDIS_SENTINEL_PASSWORD` | — | credentials at the sentinels themselves (their `requirepass`/ACL), when they have any |
 *
 * A bad value throws `ConfigError` naming the variable (the CLI exits 2).
 */
import { z } from 'zod';
import { ConfigError, envz, parseEnv, type Env } from './env.js';
import { isPlaceholderSecret } from './keys.js';

/** One sentinel's address. */
export interface SentinelAddress {
  host: string;
  port: number;
}

/** Sentinel settings of a {@link RedisTarget}. */
export interface SentinelConfig {
  /** The sentinels asked for the master, in order (at least one). */
  sentinels: SentinelAddress[];
  /** Master group name (`REDIS_SENTINEL_NAME`). */
  name: string;
  /** Credentials at the sentinels (not at the data nodes: those come from the URL). */
  username?: string;
  password?: string;
}

/** Where a connection goes: the URL (user, password, db; host and port unless `sentinel` is set). */
export interface RedisTarget {
  url: string;
  /** null: connect to the URL's host and port. */
  sentinel: SentinelConfig | null;
}

const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

/** `host:port,host:port` → addresses (IPv6 in brackets: `[::1]:26379`). */
const sentinelList = () =>
  z.string().transform((s, ctx) => {
    const out: SentinelAddress[] = [];
    for (const item of s.split(',').map((x) => x.trim()).filter(Boolean)) {
      const m = HOST_PORT.exec(item);
      const port = Number(m?.[2]);
      if (!m || !Number.isInteger(port) || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `bad sentinel address ${JSON.stringify(item)} (expected host:port, e.g. 10.0.0.1:26379)` });
        return z.NEVER;
      }
      const host = (m[1] as string).replace(/^\[|\]$/g, '');
      if (out.some((a) => a.host === host && a.port === port)) {
        ctx.addIssue({ code: 'custom', message: `sentinel ${item} listed twice` });
        return z.NEVER;
      }
      out.push({ host, port });
    }
    if (out.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'must list at least one sentinel host:port' });
      return z.NEVER;
    }
    return out;
  });

const SHAPE = {
  REDIS_URL: envz.redisUrl(),
  REDIS_SENTINELS: sentinelList().optional(),
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 of [A-Za-z0-9._-] (the name in `sentinel monitor <name>`)').optional(),
  REDIS_SENTINEL_USERNAME: z.string().optional(),
  REDIS_SENTINEL_PASSWORD: z.string().optional(),
};

/**
 * Reads `REDIS_URL` and the Sentinel variables (see the module comment).
 * @throws ConfigError naming the variable: a bad URL or sentinel address, `REDIS_SENTINELS` without
 *   `REDIS_SENTINEL_NAME` or the other way round, sentinel credentials without `REDIS_SENTINELS`, a
 *   placeholder password (the env templates' `change-me`) in `REDIS_URL` or `REDIS_SENTINEL_PASSWORD`
 */
export function parseRedisTarget(env: Env): RedisTarget {
  const e = parseEnv(SHAPE, env);
  refusePlaceholderPasswords(e.REDIS_URL, undefined);
  if (!e.REDIS_SENTINELS) {
    if (e.REDIS_SENTINEL_NAME) throw new ConfigError('REDIS_SENTINELS', 'must be set when REDIS_SENTINEL_NAME is (host:port of each sentinel)');
    if (e.REDIS_SENTINEL_USERNAME || e.REDIS_SENTINEL_PASSWORD) throw new ConfigError('REDIS_SENTINELS', 'must be set when REDIS_SENTINEL_USERNAME/REDIS_SENTINEL_PASSWORD are');
    return { url: e.REDIS_URL, sentinel: null };
  }
  if (!e.REDIS_SENTINEL_NAME) throw new ConfigError('REDIS_SENTINEL_NAME', 'must be set when REDIS_SENTINELS is (the master group name of `sentinel monitor`)');
  refusePlaceholderPasswords(e.REDIS_URL, e.REDIS_SENTINEL_PASSWORD);
  return {
    url: e.REDIS_URL,
    sentinel: {
      sentinels: e.REDIS_SENTINELS,
      name: e.REDIS_SENTINEL_NAME,
      ...(e.REDIS_SENTINEL_USERNAME ? { username: e.REDIS_SENTINEL_USERNAME } : {}),
      ...(e.REDIS_SENTINEL_PASSWORD ? { password: e.REDIS_SENTINEL_PASSWORD } : {}),
    },
  };
}

/** @throws ConfigError when the URL's password or the sentinels' password is a placeholder (src/config/keys.ts) */
function refusePlaceholderPasswords(url: string, sentinelPassword: string | undefined): void {
  let urlPassword = '';
  try {
    urlPassword = decodeURIComponent(new URL(url).password);
  } catch {
    urlPassword = '';
  }
  if (urlPassword !== '' && isPlaceholderSecret(urlPassword)) throw new ConfigError('REDIS_URL', "the password is the template's placeholder: use the password of this component's Redis user (P3_REDIS_PASSWORD_<USER> given to p3 redis-acl)");
  if (sentinelPassword && isPlaceholderSecret(sentinelPassword)) throw new ConfigError('REDIS_SENTINEL_PASSWORD', "is a placeholder: set the sentinels' real password");
}

/** The environment variables that describe `t` (for child processes, e.g. the services of `p3 chaos`). */
export function redisTargetEnv(t: RedisTarget): Record<string, string> {
  const out: Record<string, string> = { REDIS_URL: t.url };
  if (!t.sentinel) return out;
  out.REDIS_SENTINELS = t.sentinel.sentinels.map((a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`).join(',');
  out.REDIS_SENTINEL_NAME = t.sentinel.name;
  if (t.sentinel.username) out.REDIS_SENTINEL_USERNAME = t.sentinel.username;
  if (t.sentinel.password) out.REDIS_SENTINEL_PASSWORD = t.sentinel.password;
  return out;
}

/** `t` for logs and errors, without passwords: `redis://***@host:6379` or `sentinel mymaster@h1:26379,h2:26379 (redis://***@...)`. */
export function describeRedisTarget(t: RedisTarget | string): string {
  const target = typeof t === 'string' ? { url: t, sentinel: null } : t;
  const url = target.url.replace(/\/\/[^@/]*@/, '//***@');
  if (!target.sentinel) return url;
  return `sentinel ${target.sentinel.name}@${target.sentinel.sentinels.map((a) => `${a.host}:${a.port}`).join(',')} (${url})`;
}
