/**
 * `p3 status [--json] [--symbol SYM...]`: per symbol the reconcile verdict, amounts, hold and ages; the
 * services alive, the trading state and the bottom line (src/read-model/). Reads `REDIS_URL` (default
 * redis://127.0.0.1:6379); symbols default to `P34_ALLOWLIST`, else `P3_ALLOWLIST`, else every symbol found
 * by SCAN. What is read back is printed with control characters escaped (Redis can hold anything
 * `redis-cli` wrote).
 */
import type { Command } from 'commander';
import { printableDeep } from '../../domain/operator-text.js';
import { symbolArg } from '../symbols.js';

// The services' modules (zod, ioredis, ...) are imported inside the actions: `p3 --help` loads none of them.

/** Symbols of the allowlist variables (P34_ALLOWLIST, else P3_ALLOWLIST). @throws ConfigError */
export async function envAllowlist(): Promise<string[]> {
  const { envz, parseEnv } = await import('../../config/env.js');
  const e = parseEnv({ P34_ALLOWLIST: envz.symbols(), P3_ALLOWLIST: envz.symbols() }, process.env);
  return e.P34_ALLOWLIST.length > 0 ? e.P34_ALLOWLIST : e.P3_ALLOWLIST;
}

/** Registers `p3 status`. */
export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('per symbol: reconcile status, reason, exchange and ledger amounts, diff, hold (+TTL), snapshot age; services alive; trading state')
    .option('--json', 'machine-readable output: {symbols: [...], services: {...}, trading: {...}}')
    .option('--symbol <SYM...>', 'only these symbols')
    .action(async (opts: { json?: boolean; symbol?: string[] }) => {
      const { collectStatus, renderStatus } = await import('../../read-model/symbol-status.js');
      const { collectStatusExtras, renderStatusExtras, tradingVerdict } = await import('../../read-model/status-extras.js');
      const { withCliRedis } = await import('../redis.js');
      await withCliRedis(async (redis) => {
        const symbols = opts.symbol?.map(symbolArg) ?? (await envAllowlist());
        const now = Date.now();
        const [rows, extras] = await Promise.all([collectStatus(redis, symbols, now), collectStatusExtras(redis, now)]);
        // JSON escapes control characters itself; the table is rendered from a copy with them escaped
        const [shownRows, shownExtras] = [printableDeep(rows), printableDeep(extras)];
        const verdict = tradingVerdict(shownRows, shownExtras);
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ symbols: rows, ...extras, verdict: verdict.replace(/^VERDICT: /, '').trim() }, null, 2)}\n`
            : `${renderStatus(shownRows)}${renderStatusExtras(shownExtras, now)}\n${verdict}`,
        );
      });
    });
}
