/** `p3 bench` (`npm run bench`): the benchmarks (bench/run.ts; figures in docs/performance.md). */
import type { Command } from 'commander';

/** Registers `p3 bench`. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('measure detection, heal, sweep cost, permit chain and memory on this machine; print a table, write bench/results.json')
    .option('--quick', 'small counts (seconds; a smoke test, the figures mean nothing); writes nothing unless --out is given')
    .option('--out <file>', 'results file (default bench/results.json for a full run)')
    .option('--only <phases>', 'run only these measurements (permit-chain); writes nothing unless --out is given')
    .option('--rates <list>', 'permit chain: offered plans/s of the sustained-rate steps, e.g. 500,1000')
    .option('--step-sec <s>', 'permit chain: length of one sustained-rate step, seconds')
    .action(async (o: { quick?: boolean; out?: string; only?: string; rates?: string; stepSec?: string }) => {
      const { runBench, DEFAULT_RESULTS, parseBenchPhase, parseRates } = await import('./run.js');
      const quick = Boolean(o.quick);
      const only = o.only ? o.only.split(',').map(parseBenchPhase) : undefined;
      const stepSec = o.stepSec === undefined ? undefined : Number(o.stepSec);
      if (stepSec !== undefined && !(stepSec > 0)) throw new Error(`--step-sec: expected a positive number, got ${o.stepSec}`);
      await runBench({ quick, out: o.out ?? (quick || only ? null : DEFAULT_RESULTS), only, rates: o.rates ? parseRates(o.rates) : undefined, stepSec });
    });
}
