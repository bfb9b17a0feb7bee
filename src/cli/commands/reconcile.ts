/**
 * Operator commands of the reconcile engine (seed 001's runbook, as `p3` commands):
 * `p3 status [--json]`, `p3 hold set|clear`, `p3 ledger set`, `p3 events [--follow]`.
 * Every command reads `REDIS_URL` (default redis://127.0.0.1:6379); symbols default to `P34_ALLOWLIST`,
 * else `P3_ALLOWLIST`, else every symbol found by SCAN.
 */
import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { EVENTS_MAXLEN, STREAMS, keys } from '../../adapters/redis/keys.js';
import { fetchLedger, writeLedger } from '../../adapters/redis/ledger.js';
import { fieldsToObject } from '../../adapters/redis/consumer.js';
import { envz, parseEnv, parseToleranceConfig, ConfigError } from '../../config/env.js';
import { fmt, parseDecimal, type Decimal } from '../../domain/decimal.js';
import { readSnapshot, type SnapshotRead } from '../../domain/position.js';
import { compareAmounts, toleranceFor } from '../../domain/tolerance.js';
import { operatorHold } from '../../services/reconcile-engine/store.js';
import { collectStatus, renderStatus } from '../../services/reconcile-engine/status.js';
import { collectStatusExtras, renderStatusExtras, tradingVerdict } from './status-extras.js';
import { withCliRedis } from '../redis.js';
import { cliUser } from '../user.js';

/** Symbols of the allowlist variables (P34_ALLOWLIST, else P3_ALLOWLIST). */
export function envAllowlist(): string[] {
  const e = parseEnv({ P34_ALLOWLIST: envz.symbols(), P3_ALLOWLIST: envz.symbols() }, process.env);
  return e.P34_ALLOWLIST.length > 0 ? e.P34_ALLOWLIST : e.P3_ALLOWLIST;
}

function symbolArg(raw: string): string {
  const s = raw.trim().toUpperCase();
  if (!/^[A-Z0-9]{2,30}$/.test(s)) throw new ConfigError('SYMBOL', `bad symbol ${JSON.stringify(raw)}`);
  return s;
}

/** How an operator's ledger amount compares with the exchange snapshot (see {@link ledgerAgainstSnapshot}). */
export type LedgerCheck = { kind: 'agrees' } | { kind: 'disagrees' | 'unchecked'; message: string };

/**
 * Compares the amount an operator wants to write with the exchange snapshot under the shared tolerance.
 * A ledger that disagrees with a fresh snapshot makes the engine HOLD the symbol and, with RECONCILE_CLOSE
 * enabled, close the difference on the exchange within about a second: a typo (a forgotten `-`, a wrong
 * side) would sell a real position, so `p3 ledger set` refuses it without `--force`.
 */
export function ledgerAgainstSnapshot(symbol: string, amount: Decimal, snap: SnapshotRead, nowMs: number): LedgerCheck {
  if (snap.kind !== 'ok') return { kind: 'unchecked', message: `no readable exchange snapshot of ${symbol} (${snap.kind}): the amount could not be checked against the exchange` };
  const tol = toleranceFor(parseToleranceConfig(process.env), symbol, snap.snapshot.stepSize);
  const cmp = compareAmounts(snap.snapshot.amount, amount, tol);
  const ageSec = Math.round((nowMs - snap.snapshot.tsMs) / 100) / 10;
  if (cmp.match) return { kind: 'agrees' };
  return {
    kind: 'disagrees',
    message:
      `the exchange snapshot of ${symbol} says ${fmt(snap.snapshot.amount)} (${ageSec}s old) and ${fmt(amount)} differs by ${fmt(cmp.diff)} (tolerance ${fmt(tol)}). ` +
      `The reconcile engine would HOLD ${symbol} and, with RECONCILE_CLOSE enabled, close the difference on the exchange (reduce-only) within about a second. ` +
      `Check the exchange itself; repeat with --force if this amount is what the system holds.`,
  };
}

/** Registers the commands of this file. */
export function registerReconcileCommands(program: Command): void {
  program
    .command('status')
    .description('per symbol: reconcile status, reason, exchange and ledger amounts, diff, hold (+TTL), snapshot age; services alive; trading state')
    .option('--json', 'machine-readable output: {symbols: [...], services: {...}, trading: {...}}')
    .option('--symbol <SYM...>', 'only these symbols')
    .action(async (opts: { json?: boolean; symbol?: string[] }) => {
      await withCliRedis(async (redis) => {
        const symbols = opts.symbol?.map(symbolArg) ?? envAllowlist();
        const now = Date.now();
        const [rows, extras] = await Promise.all([collectStatus(redis, symbols, now), collectStatusExtras(redis, now)]);
        const verdict = tradingVerdict(rows, extras);
        process.stdout.write(
          opts.json
            ? `${JSON.stringify({ symbols: rows, ...extras, verdict: verdict.replace(/^VERDICT: /, '').trim() }, null, 2)}\n`
            : `${renderStatus(rows)}${renderStatusExtras(extras, now)}\n${verdict}`,
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
    .action(async (symRaw: string, opts: { ttl?: string; reason: string }) => {
      const symbol = symbolArg(symRaw);
      const ttl = opts.ttl !== undefined
        ? parseEnv({ '--ttl': envz.int(900, 1, 86_400 * 7) }, { '--ttl': opts.ttl })['--ttl']
        : parseEnv({ P34_HOLD_TTL_SEC: envz.int(900, 1, 86_400 * 7) }, process.env).P34_HOLD_TTL_SEC;
      await withCliRedis(async (redis) => {
        await operatorHold(redis, symbol, 'set', ttl, opts.reason, { symbol, ts_ms: String(Date.now()), by: cliUser() });
        process.stdout.write(`hold set on ${symbol} for ${ttl}s (reason: ${opts.reason}); every plan of ${symbol} is denied until it ends\n`);
      });
    });
  hold
    .command('clear')
    .description('delete the hold of a symbol (engine or operator); if the drift is still there the engine holds again on its next pass')
    .argument('<SYMBOL>')
    .action(async (symRaw: string) => {
      const symbol = symbolArg(symRaw);
      await withCliRedis(async (redis) => {
        const existed = await operatorHold(redis, symbol, 'clear', 1, '', { symbol, ts_ms: String(Date.now()), by: cliUser() });
        process.stdout.write(existed ? `hold cleared on ${symbol}\n` : `no hold on ${symbol}\n`);
        const state = await redis.hgetall(keys.reconcileState(symbol));
        if (existed && (state.status === 'HOLD' || state.status === 'MANUAL_REQUIRED') && state.reason && state.reason !== 'operator_hold') {
          process.stdout.write(`note: the engine's last verdict is ${state.status} ${state.reason}; unless that is fixed it sets the hold again within one cadence\n`);
        }
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
    .action(async (symRaw: string, amountRaw: string, opts: { reason: string; force?: boolean }) => {
      const symbol = symbolArg(symRaw);
      const amount = parseDecimal(amountRaw);
      if (amount === null) throw new ConfigError('AMOUNT', `not a decimal: ${JSON.stringify(amountRaw)}`);
      await withCliRedis(async (redis) => {
        const check = ledgerAgainstSnapshot(symbol, amount, readSnapshot(await redis.hgetall(keys.snapshot(symbol))), Date.now());
        if (check.kind === 'disagrees' && !opts.force) throw new ConfigError('AMOUNT', `refused: ${check.message}`);
        if (check.kind !== 'agrees') process.stderr.write(`warning: ${check.message}\n`);
        for (let attempt = 0; attempt < 5; attempt++) {
          const cur = await fetchLedger(redis, symbol);
          const old = cur.read.kind === 'ok' ? fmt(cur.read.ledger.amount) : cur.read.kind;
          const version = await writeLedger(redis, {
            symbol,
            expectedFingerprint: cur.fingerprint,
            amount,
            source: 'operator',
            event: { event: 'LEDGER_SET', symbol, reason: opts.reason, old_ledger_amt: old, new_ledger_amt: fmt(amount), source: 'operator', by: cliUser(), ts_ms: String(Date.now()) },
          });
          if (version !== null) {
            process.stdout.write(`ledger ${symbol}: ${old} -> ${fmt(amount)} (version ${version}, source operator)\n`);
            return;
          }
        }
        throw new Error(`ledger of ${symbol} kept changing while writing; try again`);
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
      const count = parseEnv({ '--count': z.coerce.number().int().min(0).max(EVENTS_MAXLEN) }, { '--count': opts.count })['--count'];
      const only = opts.symbol ? symbolArg(opts.symbol) : null;
      await withCliRedis(async (redis) => {
        const print = (id: string, f: Record<string, string>) => {
          if (only && f.symbol !== only) return;
          process.stdout.write(opts.json ? `${JSON.stringify({ id, ...f })}\n` : `${formatEvent(id, f)}\n`);
        };
        let lastId = '$';
        if (count > 0) {
          const recent = only ? await recentForSymbol(redis, only, count) : await redis.xrevrange(STREAMS.reconcileEvents, '+', '-', 'COUNT', count);
          for (const [id, f] of [...recent].reverse()) print(id, fieldsToObject(f));
          if (recent.length > 0) lastId = recent[0]![0];
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
            const res = (await blocking.xread('BLOCK', 1000, 'STREAMS', STREAMS.reconcileEvents, lastId).catch(() => null)) as Array<[string, Array<[string, string[]]>]> | null;
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

async function recentForSymbol(redis: Redis, symbol: string, count: number): Promise<Array<[string, string[]]>> {
  const out: Array<[string, string[]]> = [];
  let end = '+';
  while (out.length < count) {
    const batch = await redis.xrevrange(STREAMS.reconcileEvents, end, '-', 'COUNT', 500);
    if (batch.length === 0) break;
    for (const e of batch) if (fieldsToObject(e[1]).symbol === symbol && out.length < count) out.push(e);
    if (batch.length < 500) break;
    end = `(${batch[batch.length - 1]![0]}`;
  }
  return out;
}

/** One event as a line: `2026-01-25T11:55:00.123Z HOLD_SET BTCUSDT reason=side_mismatch exchange_amt=0.007 ...`. */
export function formatEvent(id: string, f: Record<string, string>): string {
  const ms = Number(f.ts_ms ?? id.split('-')[0]);
  const when = Number.isFinite(ms) ? new Date(ms).toISOString() : id;
  const rest = Object.entries(f)
    .filter(([k, v]) => !['event', 'symbol', 'ts_ms'].includes(k) && v !== '')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${when} ${(f.event ?? '?').padEnd(26)} ${(f.symbol ?? '').padEnd(10)} ${rest}`;
}

