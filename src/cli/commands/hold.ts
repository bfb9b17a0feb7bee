/**
 * `p3 hold set|clear <SYMBOL>`: an operator hold (blocks every plan of the symbol) through the same actions as
 * the console (src/services/reconcile-engine/operator.ts). Reads `REDIS_URL`. Refuses a symbol outside the
 * allowlists (src/cli/symbols.ts) and a reason with control characters.
 */
import type { Command } from 'commander';
import { checkOperatorText } from '../../domain/operator-text.js';
import { operatorSymbols, UNLISTED_HELP, UNLISTED_OPTION } from '../symbols.js';
import { cliUser } from '../user.js';

// The services' modules (zod, ioredis, ...) are imported inside the actions: `p3 --help` loads none of them.

/** Registers `p3 hold set` and `p3 hold clear`. */
export function registerHoldCommands(program: Command): void {
  const hold = program.command('hold').description('operator holds (a hold blocks every plan of the symbol)');
  hold
    .command('set')
    .description('set an operator hold: the engine never renews or clears it; it ends with its TTL or `p3 hold clear`')
    .argument('<SYMBOL>')
    .option('--ttl <seconds>', 'lease in seconds (default P34_HOLD_TTL_SEC, 900)')
    .option('--reason <text>', 'why (shown by p3 status and in the event)', 'operator')
    .option(UNLISTED_OPTION, UNLISTED_HELP)
    .action(async (symRaw: string, opts: { ttl?: string; reason: string; unlistedSymbol?: boolean }) => {
      const reason = checkOperatorText(opts.reason, '--reason');
      const [symbol] = (await operatorSymbols([symRaw], Boolean(opts.unlistedSymbol))) as [string];
      const { envz, parseEnv } = await import('../../config/env.js');
      const { setOperatorHold } = await import('../../services/reconcile-engine/operator.js');
      const { withCliRedis } = await import('../redis.js');
      const ttl = opts.ttl !== undefined
        ? parseEnv({ '--ttl': envz.int(900, 1, 86_400 * 7) }, { '--ttl': opts.ttl })['--ttl']
        : parseEnv({ P34_HOLD_TTL_SEC: envz.int(900, 1, 86_400 * 7) }, process.env).P34_HOLD_TTL_SEC;
      await withCliRedis(async (redis) => {
        await setOperatorHold(redis, { symbol, ttlSec: ttl, reason, by: cliUser() });
        process.stdout.write(`hold set on ${symbol} for ${ttl}s (reason: ${reason}); every plan of ${symbol} is denied until it ends\n`);
      });
    });
  hold
    .command('clear')
    .description('delete the hold of a symbol (engine or operator); if the drift is still there the engine holds again on its next pass')
    .argument('<SYMBOL>')
    .option('--reason <text>', 'why (recorded in the HOLD_CLEARED event)')
    .option(UNLISTED_OPTION, UNLISTED_HELP)
    .action(async (symRaw: string, opts: { reason?: string; unlistedSymbol?: boolean }) => {
      const reason = opts.reason === undefined ? undefined : checkOperatorText(opts.reason, '--reason');
      const [symbol] = (await operatorSymbols([symRaw], Boolean(opts.unlistedSymbol))) as [string];
      const { clearHold } = await import('../../services/reconcile-engine/operator.js');
      const { withCliRedis } = await import('../redis.js');
      await withCliRedis(async (redis) => {
        const { existed, engineHold } = await clearHold(redis, { symbol, by: cliUser(), ...(reason ? { reason } : {}) });
        process.stdout.write(existed ? `hold cleared on ${symbol}\n` : `no hold on ${symbol}\n`);
        if (engineHold) process.stdout.write(`note: the engine's last verdict is ${engineHold.status} ${engineHold.reason}; unless that is fixed it sets the hold again within one cadence\n`);
      });
    });
}
