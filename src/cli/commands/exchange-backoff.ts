/**
 * `p3 exchange-backoff show|clear`: the shared exchange back-off every service honours after an HTTP 429/418
 * (src/adapters/exchange/backoff.ts). `clear` is the operator's way out of a back-off that should not be there
 * (a ban already lifted by the exchange, a value set by hand); it records who lifted it in the governor's events.
 */
import { userInfo, hostname } from 'node:os';
import type { Command } from 'commander';
import { EVENT } from '../../domain/events.js';

/** Registers `p3 exchange-backoff`. */
export function registerExchangeBackoffCommand(program: Command): void {
  const cmd = program.command('exchange-backoff').description('the shared exchange back-off after HTTP 429/418 (no service calls the exchange while it stands)');
  cmd
    .command('show')
    .description('show the back-off in force, if any')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { withCliRedis } = await import('../redis.js');
      const { readBackoff } = await import('../../adapters/exchange/backoff.js');
      const st = await withCliRedis((redis) => readBackoff(redis));
      const leftMs = Math.max(0, st.untilMs - Date.now());
      if (o.json) return void process.stdout.write(`${JSON.stringify({ in_force: leftMs > 0, reason: st.reason, left_ms: leftMs })}\n`);
      process.stdout.write(leftMs > 0 ? `back-off in force: ${st.reason} for another ${Math.ceil(leftMs / 1000)} s\n` : 'no back-off in force\n');
    });
  cmd
    .command('clear')
    .description('lift the back-off (only when you know the exchange accepts calls again: a ban lifted, a value set by mistake)')
    .requiredOption('--reason <reason>', 'why (recorded in quantum:stream:governor.events)')
    .action(async (o: { reason: string }) => {
      const { withCliRedis } = await import('../redis.js');
      const { clearBackoff } = await import('../../adapters/exchange/backoff.js');
      const { EVENTS_MAXLEN, STREAMS } = await import('../../adapters/redis/keys.js');
      let user = 'unknown';
      try {
        user = userInfo().username;
      } catch {
        /* no passwd entry */
      }
      const by = `cli:${user}@${hostname()}`;
      const had = await withCliRedis(async (redis) => {
        const was = await clearBackoff(redis);
        await redis.xadd(STREAMS.governorEvents, 'MAXLEN', '~', EVENTS_MAXLEN, '*', 'event', EVENT.EXCHANGE_BACKOFF_CLEARED, 'reason', o.reason, 'by', by, 'ts_ms', String(Date.now()));
        return was;
      });
      process.stdout.write(had ? `back-off lifted (reason=${JSON.stringify(o.reason)})\n` : 'no back-off was stored; nothing to lift\n');
    });
}
