/**
 * The operator console (docs/architecture.md#operator-console): `p3 console [--port 8040] [--host 127.0.0.1]` serves a
 * live page and a JSON API over the system's Redis. See server.ts (routes), auth.ts (who may do what),
 * actions.ts (hold, ledger, trading state), src/read-model/console.ts (what is shown, shared with `p3 status`), hub.ts (live updates).
 */
import { createLogger } from '../adapters/logging/logger.js';
import { createRedis, waitReady } from '../adapters/redis/client.js';
import { RedisDatabaseError } from '../adapters/redis/database-guard.js';
import { ConfigError, envz, parseEnv, type Env } from '../config/env.js';
import { describeRedisTarget, parseRedisTarget } from '../config/redis.js';
import { waitForSignal } from '../host/lifecycle.js';
import { consoleConfig } from './config.js';
import { startConsole } from './server.js';

export { consoleConfig, isLoopbackHost, CONSOLE_DEFAULT_HOST, CONSOLE_DEFAULT_PORT, type ConsoleConfig } from './config.js';
export { startConsole, CONSOLE_MAX_STREAMS, type RunningConsole, type ConsoleInfo, type ConsoleLimits } from './server.js';

/**
 * Runs `p3 console` in the foreground until SIGINT/SIGTERM: validates the configuration (exit 2 on a
 * bad value, or on a non-loopback `--host` without `P3_CONSOLE_TOKEN`), connects to `REDIS_URL` (or Sentinel),
 * serves, prints the URL on stdout.
 * @throws ConfigError (exit 2), also for a database the server refuses; Error when Redis is unreachable or the port is taken (exit 1)
 */
export async function runConsole(opts: { host?: string; port?: string }, env: Env, out: (line: string) => void): Promise<void> {
  const cfg = consoleConfig(opts, env);
  const target = parseRedisTarget(env);
  const logger = createLogger('console', parseEnv({ P3_CONSOLE_LOG_LEVEL: envz.logLevel() }, env).P3_CONSOLE_LOG_LEVEL);
  const redis = createRedis(target, { name: 'p3:console', logger });
  try {
    await waitReady(redis, 5000).catch((err: unknown) => {
      if (err instanceof RedisDatabaseError) throw new ConfigError('REDIS_URL', err.message.replace(/^REDIS_URL /, ''));
      throw new Error(`Redis unreachable at ${describeRedisTarget(target)}: is redis-server running, is REDIS_URL right?`);
    });
    const running = await startConsole(redis, cfg, logger);
    out(`p3 console: ${running.url}`);
    out(cfg.token ? 'actions enabled (Authorization: Bearer $P3_CONSOLE_TOKEN)' : 'actions DISABLED: P3_CONSOLE_TOKEN is not set (read-only console)');
    await waitForSignal();
    await running.close();
  } finally {
    redis.disconnect();
  }
}
