/** `p3 bench` (`npm run bench`): the benchmarks of issue 9. See bench/run.ts. */
import type { Command } from 'commander';

/** Registers `p3 bench`. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('measure detection, heal, sweep cost, permit chain and memory on this machine; print a table, write bench/results.json')
    .option('--quick', 'small counts (seconds; a smoke test, the figures mean nothing); writes nothing unless --out is given')
    .option('--out <file>', 'results file (default bench/results.json for a full run)')
    .action(async (o: { quick?: boolean; out?: string }) => {
      const { runBench, DEFAULT_RESULTS } = await import('../../../bench/run.js');
      const quick = Boolean(o.quick);
      await runBench({ quick, out: o.out ?? (quick ? null : DEFAULT_RESULTS) });
    });
}
