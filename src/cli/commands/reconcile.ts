/**
 * Operator commands of the reconcile engine (seed 001's runbook, as `p3` commands):
 * `p3 status [--json]`, `p3 hold set|clear`, `p3 ledger set`, `p3 events [--follow]`.
 * Every command reads `REDIS_URL` (default redis://127.0.0.1:6379); symbols default to `P34_ALLOWLIST`,
 * else `P3_ALLOWLIST`, else every symbol found by SCAN. The commands that write refuse a symbol outside
 * the allowlists and a reason with control characters; what is read back is printed with control
 * characters escaped (Redis can hold anything `redis-cli` wrote).
 */
import type { Command } from 'commander';
import { EVENTS_MAXLEN, STREAMS } from '../../adapters/redis/keys.js';
import { ConfigError } from '../../config/errors.js';
import { parseDecimal } from '../../domain/decimal.js';
import { checkOperatorText, printableDeep } from '../../domain/operator-text.js';
import { operatorSymbols, UNLISTED_HELP, UNLISTED_OPTION } from '../symbols.js';
import { cliUser } from '../user.js';

// The services' modules (zod, ioredis, ...) are imported inside the actions: `p3 --help` loads none of them.
const envModule = () => import('../../config/env.js');
const withCliRedis: typeof import('../redis.js').withCliRedis = async (fn) => (await import('../redis.js')).withCliRedis(fn);

/** Symbols of the allowlist variables (P34_ALLOWLIST, else P3_ALLOWLIST). @throws ConfigError */
export async function envAllowlist(): Promise<string[]> {
  const { envz, parseEnv } = await envModule();
  const e = parseEnv({ P34_ALLOWLIST: envz.symbols(), P3_ALLOWLIST: envz.symbols() }, process.env);
  return e.P34_ALLOWLIST.length > 0 ? e.P34_ALLOWLIST : e.P3_ALLOWLIST;
}

function symbolArg(raw: string): string {
  const s = raw.trim().toUpperCase();
  if (!/^[A-Z0-9]{2,30}$/.test(s)) throw new ConfigError('SYMBOL', `bad symbol ${JSON.stringify(raw)}`);
  return s;
}

/** Registers the commands of this file. */
export function registerReconcileCommands(program: Command): void {
  program
    .command('status')
    .description('per symbol: reconcile status, reason, exchange and ledger amounts, diff, hold (+TTL), snapshot age; services alive; trading state')
    .option('--json', 'machine-readable output: {symbols: [...], services: {...}, trading: {...}}')
    .option('--symbol <SYM...>', 'only these symbols')
    .action(async (opts: { json?: boolean; symbol?: string[] }) => {
      const { collectStatus, renderStatus } = await import('../../read-model/symbol-status.js');
      const { collectStatusExtras, renderStatusExtras, tradingVerdict } = await import('../../read-model/status-extras.js');
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
      const { envz, parseEnv } = await envModule();
      const { setOperatorHold } = await import('../../services/reconcile-engine/operator.js');
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
      await withCliRedis(async (redis) => {
        const { existed, engineHold } = await clearHold(redis, { symbol, by: cliUser(), ...(reason ? { reason } : {}) });
        process.stdout.write(existed ? `hold cleared on ${symbol}\n` : `no hold on ${symbol}\n`);
        if (engineHold) process.stdout.write(`note: the engine's last verdict is ${engineHold.status} ${engineHold.reason}; unless that is fixed it sets the hold again within one cadence\n`);
      });
    });

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

  program
    .command('events')
    .description('reconcile events (HOLD_SET, HOLD_CLEARED, AUTO_REPAIR, LEDGER_INIT, ...), oldest first')
    .option('--follow', 'keep printing new events until Ctrl-C')
    .option('--symbol <SYM>', 'only this symbol')
    .option('--count <n>', 'how many recent events to print first', '20')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { follow?: boolean; symbol?: string; count: string; json?: boolean }) => {
      const { parseEnv } = await envModule();
      const { z } = await import('zod');
      const { fieldsToObject } = await import('../../adapters/redis/consumer.js');
      const { recentEvents } = await import('../../read-model/events.js');
      const count = parseEnv({ '--count': z.coerce.number().int().min(0).max(EVENTS_MAXLEN) }, { '--count': opts.count })['--count'];
      const only = opts.symbol ? symbolArg(opts.symbol) : null;
      await withCliRedis(async (redis) => {
        const print = (id: string, f: Record<string, string>) => {
          if (only && f.symbol !== only) return;
          process.stdout.write(opts.json ? `${JSON.stringify({ id, ...f })}\n` : `${formatEvent(id, f)}\n`);
        };
        let lastId = '$';
        if (count > 0) {
          const recent = await recentEvents(redis, STREAMS.reconcileEvents, { symbol: only ?? undefined, count });
          for (const e of recent) print(e.id, e.fields);
          if (recent.length > 0) lastId = recent[recent.length - 1]!.id;
          else if (!opts.json) process.stderr.write(`(no reconcile events${only ? ` for ${only}` : ''} yet)\n`);
        }
        if (!opts.follow) return;
        const blocking = redis.duplicate();
        blocking.on('error', () => undefined);
        let stop = false;
        const onSig = () => {
          stop = true;
          blocking.disconnect();
        };
        process.once('SIGINT', onSig);
        process.once('SIGTERM', onSig);
        try {
          while (!stop) {
            const res = (await blocking.xread('BLOCK', 1000, 'STREAMS', STREAMS.reconcileEvents, lastId).catch(async () => {
              // Redis unreachable: wait before trying again (a failing command returns at once; without the
              // pause this loop spun and never let Ctrl-C run), and reopen a connection the CLI's short retry gave up on
              if (!stop && blocking.status === 'end') blocking.connect().catch(() => undefined);
              if (!stop) await new Promise((r) => setTimeout(r, 500));
              return null;
            })) as Array<[string, Array<[string, string[]]>]> | null;
            if (!res) continue;
            for (const [, entries] of res) {
              for (const [id, f] of entries) {
                lastId = id;
                print(id, fieldsToObject(f));
              }
            }
          }
        } finally {
          blocking.disconnect();
        }
      });
    });
}

/**
 * One event as a line: `2026-01-25T11:55:00.123Z HOLD_SET BTCUSDT reason=side_mismatch exchange_amt=0.007 ...`;
 * control characters in the fields are shown escaped (an event can hold anything written to the stream).
 */
export function formatEvent(id: string, fields: Record<string, string>): string {
  const f = printableDeep(fields);
  const ms = Number(f.ts_ms ?? id.split('-')[0]);
  const when = Number.isFinite(ms) ? new Date(ms).toISOString() : id;
  const rest = Object.entries(f)
    .filter(([k, v]) => !['event', 'symbol', 'ts_ms'].includes(k) && v !== '')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${when} ${(f.event ?? '?').padEnd(26)} ${(f.symbol ?? '').padEnd(10)} ${rest}`;
}

