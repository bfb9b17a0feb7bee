/** `p3 run <service...>`: runs services in the foreground until SIGINT/SIGTERM, then drains and exits 0. */
import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.js';
import { buildServices } from '../../services/index.js';
import { resolveServiceNames, SERVICE_NAMES } from '../../host/service-names.js';

/** Registers `p3 run`. */
export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(`run services in the foreground (${SERVICE_NAMES.join(', ')}, or all)`)
    .argument('<services...>', 'service names, or all')
    .action(async (names: string[]) => {
      // loaded here, not at the top: `p3 --help` and the other commands need neither pino nor prom-client
      const { createLogger } = await import('../../adapters/logging/logger.js');
      const { startServices, stopServices, waitForSignal } = await import('../../host/lifecycle.js');
      const logger = createLogger('p3-run', 'info');
      let resolved;
      try {
        resolved = resolveServiceNames(names);
      } catch (err) {
        throw new ConfigError('argument', (err as Error).message); // exit 2: systemd's RestartPreventExitStatus=2 stops a restart loop
      }
      const services = await buildServices(resolved, process.env);
      await refuseMissingDatabase();
      const running = await startServices(services, logger);
      const sig = await waitForSignal();
      logger.info({ signal: sig }, 'stopping services');
      await stopServices(running);
      logger.info('stopped');
    });
}

/**
 * Stops the start (ConfigError, exit 2) when Redis answers but refuses the database of `REDIS_URL`: every
 * command of the services would fail. Redis down is not an error here (the services start not-ready and
 * connect later; their connections refuse the database then, see src/adapters/redis/database-guard.ts).
 * @throws ConfigError naming REDIS_URL
 */
async function refuseMissingDatabase(): Promise<void> {
  const { openRedis } = await import('../../adapters/redis/client.js');
  const { databaseRefusal } = await import('../../adapters/redis/database-guard.js');
  const { parseRedisTarget } = await import('../../config/redis.js');
  const probe = openRedis(parseRedisTarget(process.env), { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000, connectionName: 'p3:run-probe', disableClientInfo: true });
  probe.on('error', () => undefined);
  try {
    await probe.connect().catch(() => undefined);
    const refusal = await databaseRefusal(probe);
    if (refusal) throw new ConfigError('REDIS_URL', refusal.message.replace(/^REDIS_URL /, ''));
  } finally {
    probe.disconnect();
  }
}
