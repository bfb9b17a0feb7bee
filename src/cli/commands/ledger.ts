/**
 * `p3 ledger set <SYMBOL> <AMOUNT>`: an operator's write of the internal ledger (compare-and-set, event
 * LEDGER_SET) through the same action as the console (src/services/reconcile-engine/operator.ts), refused
 * when it disagrees with a fresh exchange snapshot unless `--force`. Reads `REDIS_URL`. Refuses a symbol
 * outside the allowlists (src/cli/symbols.ts) and a reason with control characters.
 */
import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.js';
import { parseDecimal } from '../../domain/decimal.js';
import { checkOperatorText } from '../../domain/operator-text.js';
import { operatorSymbols, UNLISTED_HELP, UNLISTED_OPTION } from '../symbols.js';
import { cliUser } from '../user.js';

// The services' modules (zod, ioredis, ...) are imported inside the actions: `p3 --help` loads none of them.

/** Registers `p3 ledger set`. */
export function registerLedgerCommands(program: Command): void {
  const ledger = program.command('ledger').description('the internal ledger');
  ledger
    .command('set')
    .description('set the ledger of a symbol (source operator, version+1, event LEDGER_SET); AMOUNT is signed: -0.002 is short')
    .argument('<SYMBOL>')
    .argument('<AMOUNT>', 'signed base-asset amount (e.g. 0.007, -0.002, 0); use `--` before a negative amount if needed')
    .requiredOption('--reason <text>', 'why (audit trail)')
    .option('--force', 'write even when the amount disagrees with the fresh exchange snapshot (the engine will then hold and may close the difference)')
    .option(UNLISTED_OPTION, UNLISTED_HELP)
    .action(async (symRaw: string, amountRaw: string, opts: { reason: string; force?: boolean; unlistedSymbol?: boolean }) => {
      const reason = checkOperatorText(opts.reason, '--reason');
      const [symbol] = (await operatorSymbols([symRaw], Boolean(opts.unlistedSymbol))) as [string];
      const amount = parseDecimal(amountRaw);
      if (amount === null) throw new ConfigError('AMOUNT', `not a decimal: ${JSON.stringify(amountRaw)}`);
      const { LedgerRefusedError, setLedgerByOperator } = await import('../../services/reconcile-engine/operator.js');
      const { withCliRedis } = await import('../redis.js');
      await withCliRedis(async (redis) => {
        let out;
        try {
          out = await setLedgerByOperator(redis, { symbol, amount, reason, by: cliUser(), force: Boolean(opts.force) });
        } catch (err) {
          if (err instanceof LedgerRefusedError) throw new ConfigError('AMOUNT', err.message);
          throw err;
        }
        if (out.check.kind !== 'agrees') process.stderr.write(`warning: ${out.check.message}\n`);
        process.stdout.write(`ledger ${symbol}: ${out.old} -> ${out.amount} (version ${out.version}, source operator)\n`);
      });
    });
}
