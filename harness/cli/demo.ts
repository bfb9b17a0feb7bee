/** `p3 demo`: the main job (`npm start`). See harness/demo/run.ts. */
import type { Command } from 'commander';

/** Registers `p3 demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the paper exchange and all services, replay the seeds\' incidents, print a timeline')
    .option('--json', 'print the timeline and summary as JSON lines')
    .option('--exit', 'stop after the scenarios; exit 0 only if every scenario healed and a strategy plan executed after the heals')
    .option('--phase-timeout <sec>', 'seconds allowed for each scenario phase to heal', '60')
    .option('--plan-interval <ms>', 'strategy driver: one plan (OPEN, INCREASE, PARTIAL_50, REDUCE, FULL_CLOSE in turn) per symbol every <ms>', '2000')
    .option('--console-port <port>', 'port of the operator console (taken: a free port is used)', '8040')
    .action(async (o: { json?: boolean; exit?: boolean; phaseTimeout: string; planInterval: string; consolePort: string }) => {
      const { parseEnv, envz } = await import('../../src/config/env.js');
      const { z } = await import('zod');
      const consolePort = parseEnv({ '--console-port': envz.port(8040) }, { '--console-port': o.consolePort })['--console-port'];
      const consoleToken = parseEnv({ P3_CONSOLE_TOKEN: z.string().min(16, 'must be at least 16 characters').optional() }, process.env).P3_CONSOLE_TOKEN;
      // loaded here, not at the top: the demo pulls in the paper exchange, every service and ccxt
      const { NoRedisError } = await import('../demo/redis.js');
      const { runDemo } = await import('../demo/run.js');
      try {
        process.exitCode = await runDemo({
          json: Boolean(o.json),
          exit: Boolean(o.exit),
          phaseTimeoutSec: Number(o.phaseTimeout),
          planIntervalMs: Number(o.planInterval),
          redisUrl: process.env.REDIS_URL,
          consolePort,
          consoleToken,
        });
      } catch (err) {
        if (err instanceof NoRedisError) {
          process.stderr.write(`p3 demo: ${err.message}\n`);
          process.exitCode = 2;
          return;
        }
        throw err;
      }
    });
}
