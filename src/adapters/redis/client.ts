/**
 * Redis connections: the one factory every connection of the project is opened with (services, console,
 * CLI, doctor, chaos harness). Commands fail fast while Redis is down (no unbounded offline queue), and
 * ioredis reconnects with capped exponential back-off, so services keep running, report not-ready and resume.
 *
 * Redis Sentinel (`REDIS_SENTINELS` + `REDIS_SENTINEL_NAME`, `src/config/redis.ts`): ioredis asks the
 * sentinels for the master at every (re)connect and checks the node's role (`INFO`, the ready check), so
 * a connection follows a failover without a restart: the old master dies (connection closed), or Sentinel
 * demotes it (`CLIENT KILL` of its clients, then `READONLY` replies: reconnect), or a `+switch-master`
 * event arrives from a sentinel (`failoverDetector`: reconnect at once). `duplicate()` copies the
 * options, so blocking XREADGROUP connections follow too; Lua scripts are EVALSHA with an EVAL fallback
 * (NOSCRIPT on the new master reloads them).
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisTarget, SentinelConfig } from '../../config/redis.js';
import { guardDatabase, RedisDatabaseError } from './database-guard.js';
import { loadScripts, scriptOptions, type ScriptedRedis } from './scripts/loader.js';

/** The ioredis options that route a connection through Sentinel (empty without it). */
export function sentinelOptions(s: SentinelConfig | null, url = ''): RedisOptions {
  if (!s) return {};
  return {
    sentinels: s.sentinels.map((a) => ({ host: a.host, port: a.port })),
    name: s.name,
    role: 'master',
    ...(s.username ? { sentinelUsername: s.username } : {}),
    ...(s.password ? { sentinelPassword: s.password } : {}),
    // every sentinel unreachable: try them all again, 100 ms more per round, at most every 2 s (never give up)
    sentinelRetryStrategy: (times: number) => Math.min(100 * times, 2000),
    // reconnect as soon as a sentinel announces +switch-master (a demoted master that is still up)
    failoverDetector: true,
    sentinelMaxConnections: 3,
    // rediss:// = TLS to the data nodes (the sentinels: plain, as Debian's redis-sentinel serves them)
    ...(url.startsWith('rediss://') ? { enableTLSForSentinelMode: true } : {}),
  };
}

/**
 * Opens a plain connection (no scripts, no listeners) to `target`: a URL, or a {@link RedisTarget}
 * (Sentinel when `target.sentinel` is set). For probes and one-shot tools; services use {@link createRedis}.
 * A URL naming a database the server refuses (`/99` on a server with 16) gives a connection whose every
 * command fails with `RedisDatabaseError` (never a silent fall-back to database 0, see database-guard.ts).
 * @param options ioredis options (timeouts, `lazyConnect`, ...); the Sentinel options are added to them
 */
export function openRedis(target: RedisTarget | string, options: RedisOptions = {}): Redis {
  const t = typeof target === 'string' ? { url: target, sentinel: null } : target;
  return guardDatabase(new Redis(t.url, { ...options, ...sentinelOptions(t.sentinel, t.url) }));
}

/** Options for {@link createRedis}. */
export interface RedisConnectOptions {
  /** Connection name shown by `CLIENT LIST`, e.g. `p3:reconcile-engine`. */
  name: string;
  logger?: Logger;
  /** Extra ioredis options (tests use small retry delays). */
  overrides?: RedisOptions;
}

/**
 * Opens a Redis connection to `target` (a `redis://host:port/db` URL, or a {@link RedisTarget}: through
 * Sentinel when it has `sentinel`) with the project's Lua scripts loaded (see `scripts/loader.ts`). Does not wait
 * for the connection; use `waitReady` for that.
 */
export function createRedis(target: RedisTarget | string, opts: RedisConnectOptions): ScriptedRedis {
  const redis = openRedis(target, {
    connectionName: opts.name,
    // no CLIENT SETINFO: the ACL users (src/acl/users.ts) do not grant it, and it only labels the connection
    disableClientInfo: true,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
    scripts: scriptOptions(),
    // READONLY: the node was demoted to a replica (a failover); reconnect, which asks Sentinel again
    reconnectOnError: (err) => err.message.startsWith('READONLY') || err.message.startsWith('LOADING'),
    ...opts.overrides,
  });
  reviveOnEnd(redis, opts.logger, opts.name);
  let down = false;
  redis.on('error', (err: Error) => {
    // a refused database never heals by reconnecting: every command of this connection now fails
    if (err instanceof RedisDatabaseError) opts.logger?.error({ err: err.message, conn: opts.name }, 'redis database refused: nothing is read or written; fix REDIS_URL');
    else if (!down) opts.logger?.warn({ err: err.message, conn: opts.name }, 'redis connection error');
    down = true;
  });
  redis.on('ready', () => {
    if (down) opts.logger?.info({ conn: opts.name }, 'redis reconnected');
    down = false;
  });
  return loadScripts(redis);
}

/**
 * Keeps a connection alive that ioredis ended by itself. ioredis 5 puts a connection in status `end` for good
 * (every command then fails "Connection is closed.", no more reconnects) when its connector is disconnected
 * while a (re)connect is in progress: `SentinelConnector.connect` throws once it is no longer connecting, and
 * `Redis.connect` then sets `end`. Sentinel's failover detector does exactly that when `+switch-master`
 * arrives during a reconnect (ioredis issue #1683 reports the symptom after failovers). Found by
 * `p3 chaos --sentinel --seed 104`: the position brain's connections ended in a failover and it stayed
 * alive but stale for the last five minutes of the run (every symbol held, no order).
 * On such an `end` (status `connecting` → `end` with no `close` between, and not after this process's `quit` or
 * `disconnect()`), `connect()` is called again with a capped back-off (100 ms doubling to 2 s) until it
 * succeeds; `duplicate()`s get the same. Other ends (a `retryStrategy` that gives up, as the CLI's does) stay.
 */
export function reviveOnEnd(redis: Redis, logger?: Logger, name = ''): void {
  let closedByUs = false;
  let attempts = 0;
  const disconnect = redis.disconnect.bind(redis);
  redis.disconnect = (reconnect = false) => {
    if (!reconnect) closedByUs = true;
    disconnect(reconnect);
  };
  const quit = redis.quit.bind(redis) as (...a: unknown[]) => Promise<'OK'>;
  redis.quit = ((...a: unknown[]) => {
    closedByUs = true;
    return quit(...a);
  }) as typeof redis.quit;
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = ((override?: Partial<RedisOptions>) => {
    const d = duplicate(override);
    reviveOnEnd(d, logger, `${name}:dup`);
    return d;
  }) as typeof redis.duplicate;
  // only the connector-failure path (`connecting` → `end`, no `close` between) is revived: an `end` from the
  // close handler (a quit sent another way, a retryStrategy that gave up on purpose) stays an end
  let fromConnect = false;
  redis.on('connecting', () => (fromConnect = true));
  redis.on('close', () => (fromConnect = false));
  redis.on('ready', () => (attempts = 0));
  redis.on('end', () => {
    if (closedByUs || !fromConnect) return;
    const delay = Math.min(100 * 2 ** Math.min(attempts++, 5), 2000);
    if (attempts === 1) logger?.warn({ conn: name, retry_ms: delay }, 'redis connection ended by the client library (not by this process); connecting again');
    const t = setTimeout(() => {
      if (closedByUs || redis.status !== 'end') return;
      redis.connect().then(
        () => {
          attempts = 0;
          logger?.info({ conn: name }, 'redis connection revived');
        },
        () => undefined, // ends again: the next 'end' schedules the next try
      );
    }, delay);
    t.unref();
  });
}

/**
 * Resolves once `redis` answers PING, retrying every 200 ms until `timeoutMs` (then throws).
 * @throws RedisDatabaseError at once when the server refused the URL's database (waiting cannot fix it)
 */
export async function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await redis.ping();
      return;
    } catch (err) {
      if (err instanceof RedisDatabaseError) throw err;
      if (Date.now() > deadline) throw new Error(`Redis not reachable after ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/**
 * Iterates keys matching `pattern` with SCAN (never KEYS), `count` hint per call.
 * @returns every matching key, deduplicated (SCAN may return a key twice).
 */
export async function scanKeys(redis: Redis, pattern: string, count = 500): Promise<string[]> {
  const out = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', count);
    cursor = next;
    for (const k of batch) out.add(k);
  } while (cursor !== '0');
  return [...out];
}

/** What a connection's server says about replication (`INFO replication`). */
export interface ReplicationInfo {
  /** `master` or `slave`. */
  role: string;
  /** Replicas connected to this master now (`connected_slaves`). */
  connectedReplicas: number;
  /** The master's replication offset, bytes (`master_repl_offset`). */
  replOffset: number;
}

/**
 * Replication state of the server `redis` is connected to. A hook for durability decisions (e.g. whether
 * `WAIT 1 <ms>` can succeed: only with `connectedReplicas` >= 1). Needs only `INFO` (granted to every user).
 * @throws on a Redis error (down, NOPERM)
 */
export async function replicationInfo(redis: Redis): Promise<ReplicationInfo> {
  const text = await redis.info('replication');
  const field = (k: string) => new RegExp(`^${k}:(.*)$`, 'm').exec(text)?.[1]?.trim() ?? '';
  return { role: field('role'), connectedReplicas: Number(field('connected_slaves')) || 0, replOffset: Number(field('master_repl_offset')) || 0 };
}
