/**
 * `p3 events [--follow] [--symbol SYM] [--count n] [--json]`: the reconcile events, oldest first
 * (src/read-model/events.ts), then new ones as they come with `--follow`. Reads `REDIS_URL`. Fields are
 * printed with control characters escaped (an event can hold anything written to the stream).
 */
import type { Command } from 'commander';
import { EVENTS_MAXLEN, STREAMS } from '../../adapters/redis/keys.js';
import { printableDeep } from '../../domain/operator-text.js';
import { symbolArg } from '../symbols.js';

// The services' modules (zod, ioredis, ...) are imported inside the actions: `p3 --help` loads none of them.

/** Registers `p3 events`. */
export function registerEventsCommand(program: Command): void {
  program
    .command('events')
    .description('reconcile events (HOLD_SET, HOLD_CLEARED, AUTO_REPAIR, LEDGER_INIT, ...), oldest first')
    .option('--follow', 'keep printing new events until Ctrl-C')
    .option('--symbol <SYM>', 'only this symbol')
    .option('--count <n>', 'how many recent events to print first', '20')
    .option('--json', 'one JSON object per line')
    .option('--fills', 'the venue journal instead: every fill on the account with its origin (quantum:stream:exchange.fills)')
    .action(async (opts: { follow?: boolean; symbol?: string; count: string; json?: boolean; fills?: boolean }) => {
      const { parseEnv } = await import('../../config/env.js');
      const { z } = await import('zod');
      const { fieldsToObject } = await import('../../adapters/redis/consumer.js');
      const { recentEvents } = await import('../../read-model/events.js');
      const { withCliRedis } = await import('../redis.js');
      const count = parseEnv({ '--count': z.coerce.number().int().min(0).max(EVENTS_MAXLEN) }, { '--count': opts.count })['--count'];
      const only = opts.symbol ? symbolArg(opts.symbol) : null;
      await withCliRedis(async (redis) => {
        const print = (id: string, f: Record<string, string>) => {
          if (only && f.symbol !== only) return;
          process.stdout.write(opts.json ? `${JSON.stringify({ id, ...f })}\n` : `${opts.fills ? formatVenueFill(id, f) : formatEvent(id, f)}\n`);
        };
        const stream = opts.fills ? STREAMS.exchangeFills : STREAMS.reconcileEvents;
        let lastId = '$';
        if (count > 0) {
          const recent = await recentEvents(redis, stream, { symbol: only ?? undefined, count });
          for (const e of recent) print(e.id, e.fields);
          if (recent.length > 0) lastId = recent[recent.length - 1]!.id;
          else if (!opts.json) process.stderr.write(`(no ${opts.fills ? 'venue fills' : 'reconcile events'}${only ? ` for ${only}` : ''} yet)\n`);
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
            const res = (await blocking.xread('BLOCK', 1000, 'STREAMS', stream, lastId).catch(async () => {
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


/**
 * One venue journal fill as a line: `2026-01-25T11:55:00.123Z FILL foreign    BTCUSDT BUY 0.001 @95000 trade=12
 * order=4000000002 client_order_id=web_4000000002 source=stream ...` (time = the exchange's trade time).
 */
export function formatVenueFill(id: string, fields: Record<string, string>): string {
  const f = printableDeep(fields);
  const ms = Number(f.trade_time_ms ?? id.split('-')[0]);
  const when = Number.isFinite(ms) ? new Date(ms).toISOString() : id;
  const shown = new Set(['symbol', 'origin', 'side', 'last_qty', 'price', 'trade_id', 'order_id', 'trade_time_ms', 'event_time_ms', 'local_ts_ms']);
  const rest = Object.entries(f)
    .filter(([k, v]) => !shown.has(k) && v !== '')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  return `${when} FILL ${(f.origin ?? '?').padEnd(11)} ${(f.symbol ?? '').padEnd(10)} ${f.side ?? '?'} ${f.last_qty ?? '?'}${f.price ? ` @${f.price}` : ''} trade=${f.trade_id ?? '?'} order=${f.order_id ?? '?'} ${rest}`;
}
