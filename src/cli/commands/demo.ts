/** `p3 demo`: the main job (`npm start`). See src/demo/run.ts. */
import type { Command } from 'commander';

/** Registers `p3 demo`. */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the paper exchange and all services, replay the seeds\' incidents, print a timeline')
    .option('--json', 'print the timeline and summary as JSON lines')
    .option('--exit', 'stop after the scenarios; exit 0 only if every scenario healed')
    .option('--phase-timeout <sec>', 'seconds allowed for each scenario phase to heal', '60')
    .option('--plan-interval <ms>', 'strategy driver: one PARTIAL_75 plan per symbol every <ms>', '2000')
    .action(async (o: { json?: boolean; exit?: boolean; phaseTimeout: string; planInterval: string }) => {
      // loaded here, not at the top: the demo pulls in the paper exchange, every service and ccxt
      const { NoRedisError } = await import('../../demo/redis.js');
      const { runDemo } = await import('../../demo/run.js');
      try {
        process.exitCode = await runDemo({
          json: Boolean(o.json),
          exit: Boolean(o.exit),
          phaseTimeoutSec: Number(o.phaseTimeout),
          planIntervalMs: Number(o.planInterval),
          redisUrl: process.env.REDIS_URL,
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
