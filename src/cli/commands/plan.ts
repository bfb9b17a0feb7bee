/**
 * CLI commands: `p3 plan submit` (a signed exit plan on `quantum:stream:apply.plan`, prints the plan id),
 * `p3 plan show PLAN_ID` (its permits, results and dead letters)
 * and `p3 trading-state set|show` (the governor's ACTIVE/REDUCING/HALTED, global or per symbol).
 */
import { InvalidArgumentError, type Command } from 'commander';
import type { TradingStateRead } from '../../domain/governor.js';
import { TRADING_STATES, type TradingState } from '../../domain/trading-states.js';
import { DEFAULT_PLAN_SOURCE, STRATEGY_ACTIONS, type StrategyAction } from '../../plans/actions.js';
import { NOTIONAL_BOUNDS, QTY_BOUNDS, REF_PRICE_BOUNDS, checkPlanDecimal, killScoreProblem, type PlanDecimalBounds } from '../../domain/plan-numbers.js';
import { checkOperatorText, printableDeep } from '../../domain/operator-text.js';
import { operatorSymbols, UNLISTED_HELP, UNLISTED_OPTION } from '../symbols.js';
import { cliUser } from '../user.js';

// The plan, Redis and governor modules (zod, ioredis, ...) are imported inside the actions: `p3 --help` loads none of them.
const withCliRedis: typeof import('../redis.js').withCliRedis = async (fn) => (await import('../redis.js')).withCliRedis(fn);

/** Reports a usage error found after parsing: message on stderr, exit code 2. */
function usageError(msg: string): void {
  process.stderr.write(`p3: ${msg}\n`);
  process.exitCode = 2;
}

function parseSymbol(v: string): string {
  const s = v.trim().toUpperCase();
  if (!/^[A-Z0-9]{2,30}$/.test(s)) throw new InvalidArgumentError('must be an upper-case symbol like BTCUSDT');
  return s;
}

function parseAction(v: string): StrategyAction {
  const a = v.trim().toUpperCase();
  if (!(STRATEGY_ACTIONS as readonly string[]).includes(a)) throw new InvalidArgumentError(`must be one of ${STRATEGY_ACTIONS.join(', ')}`);
  return a as StrategyAction;
}

function parseSide(v: string): 'BUY' | 'SELL' {
  const s = v.trim().toUpperCase();
  if (s !== 'BUY' && s !== 'SELL') throw new InvalidArgumentError('must be BUY (long) or SELL (short)');
  return s;
}

/** The plan schema's bounds for a size (src/domain/plan-numbers.ts): a plain decimal, > 0, bounded, <= 18 decimals. */
function planDecimal(b: PlanDecimalBounds): (v: string) => string {
  return (v) => {
    const c = checkPlanDecimal(v, b);
    if (!c.ok) throw new InvalidArgumentError(c.reason);
    return c.value;
  };
}

function parseKillScore(v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError('must be a number');
  const problem = killScoreProblem(n);
  if (problem) throw new InvalidArgumentError(problem);
  return n;
}

function parseState(v: string): TradingState {
  const s = v.trim().toUpperCase();
  if (!(TRADING_STATES as readonly string[]).includes(s)) throw new InvalidArgumentError(`must be one of ${TRADING_STATES.join(', ')}`);
  return s as TradingState;
}

function describe(r: TradingStateRead): string {
  if (r.state === 'INVALID') return `INVALID (${r.error}; the governor treats it as HALTED)`;
  if (!r.set) return 'ACTIVE (default, never set)';
  return `${r.state} reason=${JSON.stringify(r.reason)} by=${r.by} since=${r.tsMs ? new Date(r.tsMs).toISOString() : '?'}`;
}

/** Registers the commands of this file. */
export function registerPlanCommands(program: Command): void {
  const plan = program.command('plan').description('plans for the permit chain');
  plan
    .command('submit')
    .description('sign and submit a plan to quantum:stream:apply.plan (an exit, REDUCE --qty, or an entry OPEN/INCREASE --side --qty|--notional); prints the plan id')
    .requiredOption('--symbol <symbol>', 'symbol, e.g. BTCUSDT', parseSymbol)
    .requiredOption('--action <action>', STRATEGY_ACTIONS.join('|'), parseAction)
    .option('--side <side>', 'entries: BUY (long) or SELL (short)', parseSide)
    .option('--qty <qty>', 'base-asset quantity (OPEN, INCREASE, REDUCE): plain decimal, 0 < qty <= 1e9, at most 18 decimals', planDecimal(QTY_BOUNDS))
    .option('--notional <usd>', 'entries: size in USD notional instead of --qty (rounded DOWN to the lot step): 0 < usd <= 1e12', planDecimal(NOTIONAL_BOUNDS))
    .option('--ref-price <price>', 'the price the strategy saw (USD per base unit) for the price collar: plain decimal, 0 < price <= 1e12', planDecimal(REF_PRICE_BOUNDS))
    .option('--plan-id <id>', 'plan id (default: 16 random hex characters)')
    .option('--kill-score <x>', "the strategy's kill score", parseKillScore)
    .option('--source <source>', 'producer name; key from P3_KEY_<SOURCE>', DEFAULT_PLAN_SOURCE)
    .option(UNLISTED_OPTION, UNLISTED_HELP)
    .action(async (o: { symbol: string; action: StrategyAction; side?: 'BUY' | 'SELL'; qty?: string; notional?: string; refPrice?: string; planId?: string; killScore?: number; source: string; unlistedSymbol?: boolean }) => {
      const { planKeyFromEnv, submitPlan } = await import('../../plans/submit.js');
      const key = planKeyFromEnv(process.env, o.source);
      if (o.planId !== undefined && !/^[A-Za-z0-9:._-]{1,64}$/.test(o.planId)) return usageError('--plan-id must be 1-64 of [A-Za-z0-9:._-]');
      const entry = o.action === 'OPEN' || o.action === 'INCREASE';
      if (entry && !o.side) return usageError(`${o.action} needs --side BUY|SELL`);
      if (entry && (o.qty === undefined) === (o.notional === undefined)) return usageError(`${o.action} needs exactly one of --qty or --notional`);
      if (!entry && o.notional !== undefined) return usageError('--notional is for entries (OPEN, INCREASE)');
      if (o.action === 'REDUCE' && o.qty === undefined) return usageError('REDUCE needs --qty');
      if (!entry && o.action !== 'REDUCE' && o.qty !== undefined) return usageError(`${o.action} closes a fraction of the position: no --qty (use REDUCE --qty)`);
      await operatorSymbols([o.symbol], Boolean(o.unlistedSymbol));
      const id = await withCliRedis((redis) => submitPlan(redis, { symbol: o.symbol, action: o.action, side: o.side, qty: o.qty, notionalUsd: o.notional, refPrice: o.refPrice, planId: o.planId, killScore: o.killScore ?? null, source: o.source }, key));
      process.stdout.write(`${id}\n`);
    });

  plan
    .command('show')
    .description('what happened to a plan: its entry, both permits (within their 60 s TTL), its results, dead letters')
    .argument('<PLAN_ID>')
    .option('--json', 'machine-readable output')
    .action(async (planId: string, o: { json?: boolean }) => {
      if (!/^[A-Za-z0-9:._-]{1,64}$/.test(planId)) return usageError('PLAN_ID must be 1-64 of [A-Za-z0-9:._-] (flatten plan ids look like flatten:BTCUSDT:...)');
      const { renderTrace, tracePlan } = await import('../../read-model/plan-trace.js');
      const t = await withCliRedis((redis) => tracePlan(redis, planId));
      process.stdout.write(o.json ? `${JSON.stringify(t, null, 2)}\n` : renderTrace(t));
      if (t.submitted.length === 0 && t.results.length === 0 && t.deadLetters.length === 0) process.exitCode = 1;
    });

  const ts = program.command('trading-state').description("the governor's trading state (ACTIVE, REDUCING = only reduce-only plans, HALTED = nothing)");
  ts.command('set')
    .description('set the global state (`set STATE`) or a symbol\'s (`set SYMBOL STATE`); STATE is ACTIVE, REDUCING (reduce-only plans only) or HALTED (kill switch: nothing passes)')
    .argument('<args...>', '[SYMBOL] STATE')
    .requiredOption('--reason <reason>', 'why (recorded with the state and in quantum:stream:governor.events)')
    .option(UNLISTED_OPTION, UNLISTED_HELP)
    .action(async (args: string[], o: { reason: string; unlistedSymbol?: boolean }) => {
      if (args.length < 1 || args.length > 2) return usageError('usage: p3 trading-state set [SYMBOL] STATE --reason R');
      let symbol: string | undefined;
      let state: TradingState;
      try {
        symbol = args.length === 2 ? parseSymbol(args[0] as string) : undefined;
        state = parseState(args[args.length - 1] as string);
      } catch (err) {
        return usageError(`trading-state set: ${(err as Error).message}`);
      }
      const reason = checkOperatorText(o.reason, '--reason');
      if (symbol !== undefined) await operatorSymbols([symbol], Boolean(o.unlistedSymbol));
      const by = cliUser();
      const { setTradingState } = await import('../../services/governor/trading-state.js');
      await withCliRedis((redis) => setTradingState(redis, { symbol, state, reason, by }));
      process.stdout.write(`${symbol ?? 'global'}: ${state} (reason=${JSON.stringify(reason)})\n`);
    });
  ts.command('show')
    .description('show the global and per-symbol trading states and open circuit breakers')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { readTradingStates } = await import('../../read-model/trading-state.js');
      const read = await withCliRedis((redis) => readTradingStates(redis));
      const view = o.json ? read : printableDeep(read);
      if (o.json) {
        process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
        return;
      }
      const lines = [`global: ${describe(view.global)}`];
      for (const [sym, r] of Object.entries(view.symbols)) lines.push(`${sym}: ${describe(r)}`);
      for (const b of view.breakers) lines.push(`${b.symbol}: HALTED by circuit breaker (${String(b.detail.errors ?? '?')} errors; ${b.ttlSec}s left)`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
