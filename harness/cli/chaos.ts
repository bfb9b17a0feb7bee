/**
 * `p3 chaos [--seconds N] [--seed S] [--json] [--out FILE] [--sentinel] [--faults k1,k2,...]`: the whole stack as
 * separate processes under random faults, checking the guarantees (docs/architecture.md#faults-the-system-survives). See harness/chaos/run.ts.
 * Exit codes: 0 no violation, 1 a violation (seed and evidence printed), 2 bad usage.
 */
import { randomInt } from 'node:crypto';
import type { Command } from 'commander';

/** Registers `p3 chaos`. */
export function registerChaosCommand(program: Command): void {
  program
    .command('chaos')
    .description('run every service as a process under random faults (kill -9, SIGSTOP, Redis kill -9 + AOF restart, exchange faults, manual trades, duplicate/forged/malformed plans) and check the guarantees; exit 1 on a violation')
    .option('--seconds <n>', 'seconds of faults and trading', '60')
    .option('--seed <s>', 'seed of the fault schedule and the strategy (default: random, printed)')
    .option('--json', 'print the JSON report instead of the summary')
    .option('--out <file>', 'write the JSON report here (default: <run folder>/report.json)')
    .option('--faults <kinds>', 'comma-separated fault kinds, or all (default: every kind but redis_crash_loss; see docs/reliability.md)')
    .option('--converge-seconds <n>', 'bound on convergence after the faults stop', '30')
    .option('--symbols <list>', 'symbols traded', 'BTCUSDT,ETHUSDT,SOLUSDT,BNBUSDT')
    .option('--fault-gap-ms <ms>', 'mean gap between two faults', '1200')
    .option('--plan-gap-ms <ms>', 'gap between two strategy plans (round robin over the symbols)', '250')
    .option('--keep', 'keep the run folder (logs, AOF) even when the run passes')
    .option('--sentinel', 'a master, two replicas and three redis-sentinels (quorum 2); the services connect through the sentinels; adds the sentinel_failover fault')
    .option('--claim-durability <mode>', "the apply layers' P3_CLAIM_DURABILITY: exchange-query, replica-wait (needs --sentinel) or fsync-always")
    .action(async (o: Record<string, string | boolean | undefined>) => {
      const { parseChaosOptions } = await import('../chaos/options.js');
      const opts = parseChaosOptions(
        { seconds: o.seconds, seed: o.seed, json: Boolean(o.json), out: o.out, faults: o.faults, converge: o.convergeSeconds, keep: Boolean(o.keep), sentinel: Boolean(o.sentinel), claimDurability: o.claimDurability, symbols: o.symbols, faultGap: o.faultGapMs, planGap: o.planGapMs },
        () => randomInt(0, 2 ** 31),
      );
      // loaded here: chaos pulls in the paper exchange and ccxt
      const { runChaos } = await import('../chaos/run.js');
      const { code } = await runChaos(opts, { line: (t) => process.stdout.write(`${t}\n`) });
      process.exitCode = code;
    });
}
