/**
 * `p3 flatten SYMBOL... | --all --reason R [--wait S]`: signed FLATTEN plans (source `operator`, key
 * `P3_KEY_OPERATOR`) that the apply layer executes in every trading state, under any hold, as one
 * reduce-only MARKET order of the fresh |position|, exactly once (docs/architecture.md#risk-limits-and-trading-states). Prints each plan's result.
 */
import type { Command } from 'commander';
import type { Redis } from 'ioredis';
import { STREAMS, patterns } from '../../adapters/redis/keys.js';
import { sleep } from '../../lib/sleep.js';
import { checkOperatorText } from '../../domain/operator-text.js';
import { operatorSymbols, UNLISTED_HELP, UNLISTED_OPTION } from '../symbols.js';
import { cliUser } from '../user.js';

// The plan, Redis and config modules (zod, ioredis, ...) are imported inside the action: `p3 --help` loads none of them.

/** The symbols `--all` flattens: `P3_ALLOWLIST`, else every symbol with a snapshot (SCAN). */
async function allSymbols(redis: Redis): Promise<string[]> {
  const { envz, parseEnv } = await import('../../config/env.js');
  const { scanKeys } = await import('../../adapters/redis/client.js');
  const allow = parseEnv({ P3_ALLOWLIST: envz.symbols() }, process.env).P3_ALLOWLIST;
  if (allow.length > 0) return allow;
  const prefix = patterns.snapshots.slice(0, -1);
  return (await scanKeys(redis, patterns.snapshots)).map((k) => k.slice(prefix.length)).sort();
}

/** Waits (at most `waitMs`) for the final result of each plan id on `quantum:stream:apply.result`. */
async function waitResults(redis: Redis, planIds: string[], fromId: string, waitMs: number): Promise<Map<string, Record<string, string>>> {
  const found = new Map<string, Record<string, string>>();
  const want = new Set(planIds);
  const { fieldsToObject } = await import('../../adapters/redis/consumer.js');
  const deadline = Date.now() + waitMs;
  let last = fromId;
  while (found.size < want.size && Date.now() < deadline) {
    const res = (await redis.xread('COUNT', 500, 'STREAMS', STREAMS.applyResult, last)) as Array<[string, Array<[string, string[]]>]> | null;
    for (const [, entries] of res ?? []) {
      for (const [id, f] of entries) {
        last = id;
        const r = fieldsToObject(f);
        if (r.plan_id && want.has(r.plan_id)) found.set(r.plan_id, r);
      }
    }
    if (found.size < want.size) await sleep(100);
  }
  return found;
}

/** Registers `p3 flatten`. */
export function registerFlattenCommand(program: Command): void {
  program
    .command('flatten')
    .description('close the whole position of symbols NOW, in every trading state and under any hold (kill switch on): one reduce-only MARKET order each, exactly once; needs P3_KEY_OPERATOR')
    .argument('[SYMBOL...]', 'symbols to flatten')
    .option('--all', 'every symbol of P3_ALLOWLIST (else every symbol with a snapshot)')
    .requiredOption('--reason <reason>', 'why (recorded in the plan and the events, with who ran it)')
    .option('--wait <seconds>', 'how long to wait for the results (0 = do not wait)', '20')
    .option(UNLISTED_OPTION, UNLISTED_HELP)
    .action(async (args: string[], o: { all?: boolean; reason: string; wait: string; unlistedSymbol?: boolean }) => {
      const usage = (msg: string) => {
        process.stderr.write(`p3 flatten: ${msg}\n`);
        process.exitCode = 2;
      };
      if (o.all && args.length > 0) return usage('give symbols or --all, not both');
      if (!o.all && args.length === 0) return usage('give at least one SYMBOL, or --all');
      const symbols = o.all ? [] : await operatorSymbols(args, Boolean(o.unlistedSymbol));
      const reason = checkOperatorText(o.reason, '--reason');
      const waitSec = Number(o.wait);
      if (!Number.isFinite(waitSec) || waitSec < 0) return usage('--wait must be a number of seconds >= 0');
      const { OPERATOR_SOURCE } = await import('../../domain/flatten.js');
      const { planKeyFromEnv } = await import('../../plans/submit.js');
      const { submitFlatten } = await import('../../plans/flatten.js');
      const { withCliRedis } = await import('../redis.js');
      const key = planKeyFromEnv(process.env, OPERATOR_SOURCE);
      const by = cliUser();
      await withCliRedis(async (redis) => {
        const targets = o.all ? await allSymbols(redis) : symbols;
        if (targets.length === 0) return usage('no symbols to flatten (set P3_ALLOWLIST)');
        const start = (await redis.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 1))[0]?.[0] ?? '0-0';
        const ids: string[] = [];
        for (const symbol of targets) {
          const { planId } = await submitFlatten(redis, { symbol, reason, by, nowMs: Date.now() }, key);
          ids.push(planId);
          process.stdout.write(`${symbol}: FLATTEN submitted plan_id=${planId}\n`);
        }
        if (waitSec === 0) return;
        const results = await waitResults(redis, ids, start, waitSec * 1000);
        let failed = false;
        for (const [i, id] of ids.entries()) {
          const r = results.get(id);
          if (!r) {
            failed = true;
            process.stdout.write(`${targets[i]}: no result after ${waitSec}s (is apply-layer running with P3_KEY_OPERATOR?): p3 plan show ${id}\n`);
            continue;
          }
          const ok = r.status === 'EXECUTED' || (r.status === 'SKIPPED' && r.reason === 'already_flat');
          if (!ok || r.reason === 'partial_fill') failed = true;
          const what = r.status === 'EXECUTED' ? `${r.side} ${r.filled_qty} filled (order ${r.order_id})${r.reason === 'partial_fill' ? ` of ${r.qty}: PARTIAL, run p3 flatten again` : ''}` : `${r.status} ${r.reason}${r.error ? `: ${r.error}` : ''}`;
          process.stdout.write(`${targets[i]}: ${what}\n`);
        }
        if (failed) process.exitCode = 1;
      });
    });
}
