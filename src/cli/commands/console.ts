/** `p3 console [--port 8040] [--host 127.0.0.1]`: the operator console (src/console). */
import type { Command } from 'commander';

/** Registers `p3 console`. */
export function registerConsoleCommand(program: Command): void {
  program
    .command('console')
    .description('serve the operator console (live page + JSON API) over REDIS_URL; actions need P3_CONSOLE_TOKEN')
    .option('--port <port>', 'TCP port', '8040')
    .option('--host <address>', 'listen address (anything but loopback requires P3_CONSOLE_TOKEN, for reads too)', '127.0.0.1')
    .action(async (o: { port: string; host: string }) => {
      // loaded here: fastify is only needed by this command
      const { runConsole } = await import('../../console/index.js');
      await runConsole(o, process.env, (line) => process.stdout.write(`${line}\n`));
    });
}
