/**
 * Options of `p3 chaos` (docs/architecture.md#faults-the-system-survives) and the fault kinds it can inject. Parsed with zod; a bad value is a
 * usage error (`ConfigError` naming the option, exit 2).
 *
 * Invariants: `seconds` > 0; `faults` non-empty, every name one of {@link CHAOS_FAULT_KINDS}; `seed` a
 * 32-bit unsigned integer (the same seed gives the same fault schedule and plan sequence; process timing
 * still varies between runs).
 */
import { z } from 'zod';
import { ConfigError } from '../../src/config/env.js';

/**
 * Fault kinds the injector knows:
 * - `kill_service`: `kill -9` of a random service process, restarted after a short random delay;
 * - `pause_service`: SIGSTOP of a random service, SIGCONT after a random 0.5-6 s (a GC pause, a frozen VM);
 * - `redis_kill`: `kill -9` of redis-server, restarted from its AOF (`appendfsync everysec`): the process
 *   dies, the kernel still has every write it acknowledged, so nothing is lost;
 * - `redis_crash_loss`: a host crash: `kill -9` and the AOF loses the writes of its last 0.3-1 s (what
 *   `appendfsync everysec` may lose on power loss), then a restart from what is left;
 * - `http_429`, `http_418`, `http_503_unknown`, `timeout`, `latency`, `partial_fill`: paper exchange faults
 *   (`POST /admin/faults`);
 * - `user_stream`: a user data stream fault of the paper exchange: `ws_drop` (every socket closed),
 *   `ws_silence` (pushes stop, sockets stay open), `ws_delay` (pushes late) or `listen_key_expire`;
 * - `manual_trade`: a trade made by a person on the exchange (`POST /admin/trade`);
 * - `duplicate_plan`: the same signed plan entry added twice;
 * - `forged_plan`: a plan (or RECONCILE_CLOSE) whose MAC was made with a wrong key;
 * - `malformed_entry`: entries that are not JSON, lack fields, or break the plan schema;
 * - `sentinel_failover` (only with `--sentinel`): a Redis Sentinel failover, `SENTINEL FAILOVER` or
 *   `kill -9` of the master and Sentinel promotes the replica (the old master returns as a replica).
 *   With `--sentinel`, `redis_kill` and `redis_crash_loss` strike the current master.
 */
export const CHAOS_FAULT_KINDS = [
  'kill_service',
  'pause_service',
  'redis_kill',
  'redis_crash_loss',
  'http_429',
  'http_418',
  'http_503_unknown',
  'timeout',
  'latency',
  'partial_fill',
  'user_stream',
  'manual_trade',
  'duplicate_plan',
  'forged_plan',
  'malformed_entry',
  'sentinel_failover',
] as const;
/** One of {@link CHAOS_FAULT_KINDS}. */
export type ChaosFaultKind = (typeof CHAOS_FAULT_KINDS)[number];

/**
 * Kinds enabled by default: every kind but `redis_crash_loss`, which is opt-in (`--faults all` or by name).
 * Exactly-once and "one final result" hold under it (docs/reliability.md, "Durability"), but every Redis restart
 * makes the plans that straddle it wait `APPLY_CLAIM_QUERY_SETTLE_MS` before a "not found" counts, and with a
 * restart every few seconds the apply layer's backlog can outlast the run's end phase (docs/reliability.md,
 * "Findings"); the default run keeps measuring the other guarantees at full trading speed.
 */
export const DEFAULT_CHAOS_FAULTS: ChaosFaultKind[] = CHAOS_FAULT_KINDS.filter((k) => k !== 'redis_crash_loss' && k !== 'sentinel_failover');

/** Kinds that need `--sentinel`. */
export const SENTINEL_ONLY_FAULTS: ChaosFaultKind[] = ['sentinel_failover'];

/** Parsed options of a chaos run. Times carry their unit in the name. */
export interface ChaosOptions {
  /** Seconds of faults and trading (the settle phase comes after). */
  seconds: number;
  /** Seed of the fault schedule and the strategy's choices. */
  seed: number;
  /** Print JSON (the report) instead of the human summary. */
  json: boolean;
  /** Where to write the JSON report (default: `<run folder>/report.json`). */
  out?: string;
  /** Fault kinds enabled. */
  faults: ChaosFaultKind[];
  /** Bound on convergence after the faults stop, seconds (exchange = ledger, no engine hold). */
  convergeSeconds: number;
  /** Keep the run folder (logs, AOF) even when no violation was found. */
  keep: boolean;
  /** Symbols traded (3-4 recommended). */
  symbols: string[];
  /** Mean gap between two faults, ms. */
  faultGapMs: number;
  /** Gap between two strategy plans (round robin over the symbols), ms. */
  planGapMs: number;
  /** A master, two replicas and three sentinels; the services connect through the sentinels. */
  sentinel: boolean;
  /**
   * The apply layers' `P3_CLAIM_DURABILITY` (docs/reliability.md, "Durability"); `replica-wait` needs `--sentinel`
   * (a replica to acknowledge each claim). Default: the services' own default (`exchange-query`).
   */
  claimDurability?: 'exchange-query' | 'replica-wait' | 'fsync-always';
}

/** Default symbols: two paper-exchange majors and two with the default mark price of 100. */
export const DEFAULT_CHAOS_SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'BNBUSDT'];

const intIn = (name: string, min: number, max: number) =>
  z.coerce
    .number({ message: `${name} must be a number` })
    .int(`${name} must be an integer`)
    .min(min, `${name} must be >= ${min}`)
    .max(max, `${name} must be <= ${max}`);

const Raw = z.object({
  seconds: intIn('--seconds', 1, 7 * 86_400).default(60),
  seed: intIn('--seed', 0, 0xffffffff).optional(),
  json: z.boolean().default(false),
  out: z.string().min(1).optional(),
  faults: z.string().optional(),
  converge: intIn('--converge-seconds', 1, 3600).default(30),
  keep: z.boolean().default(false),
  symbols: z.string().optional(),
  faultGap: intIn('--fault-gap-ms', 50, 600_000).default(1200),
  planGap: intIn('--plan-gap-ms', 50, 600_000).default(250),
  sentinel: z.boolean().default(false),
  claimDurability: z.enum(['exchange-query', 'replica-wait', 'fsync-always'], { message: '--claim-durability must be exchange-query, replica-wait or fsync-always' }).optional(),
});

/**
 * Parses the CLI's raw option values.
 * @throws ConfigError (variable = the option, e.g. `--faults`) for a bad value
 */
export function parseChaosOptions(raw: Record<string, unknown>, randomSeed: () => number): ChaosOptions {
  const r = Raw.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    const opt = `--${String(i?.path[0] ?? 'option').replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    throw new ConfigError(opt, i?.message ?? 'invalid');
  }
  const o = r.data;
  // --sentinel adds sentinel_failover to the default set; without it the kind does not exist
  let faults: ChaosFaultKind[] = o.sentinel ? [...DEFAULT_CHAOS_FAULTS, ...SENTINEL_ONLY_FAULTS] : [...DEFAULT_CHAOS_FAULTS];
  if (o.faults !== undefined && o.faults.trim() === 'all') faults = CHAOS_FAULT_KINDS.filter((k) => o.sentinel || !SENTINEL_ONLY_FAULTS.includes(k));
  else if (o.faults !== undefined) {
    const names = o.faults.split(',').map((s) => s.trim()).filter((s) => s !== '');
    const bad = names.find((n) => !(CHAOS_FAULT_KINDS as readonly string[]).includes(n));
    if (bad) throw new ConfigError('--faults', `unknown fault kind ${bad} (one of ${CHAOS_FAULT_KINDS.join(', ')})`);
    if (names.length === 0) throw new ConfigError('--faults', 'give at least one fault kind');
    faults = [...new Set(names as ChaosFaultKind[])];
    const needs = faults.find((k) => SENTINEL_ONLY_FAULTS.includes(k));
    if (needs && !o.sentinel) throw new ConfigError('--faults', `${needs} needs --sentinel (a replica and three sentinels)`);
  }
  if (o.claimDurability === 'replica-wait' && !o.sentinel) throw new ConfigError('--claim-durability', 'replica-wait needs --sentinel (a replica to acknowledge each claim)');
  const symbols = o.symbols ? o.symbols.split(',').map((s) => s.trim().toUpperCase()).filter((s) => s !== '') : DEFAULT_CHAOS_SYMBOLS;
  const badSym = symbols.find((s) => !/^[A-Z0-9]{2,30}$/.test(s));
  if (badSym || symbols.length === 0) throw new ConfigError('--symbols', `bad symbol ${badSym ?? '(none)'}`);
  return {
    seconds: o.seconds,
    seed: o.seed ?? randomSeed(),
    json: o.json,
    out: o.out,
    faults,
    convergeSeconds: o.converge,
    keep: o.keep,
    symbols,
    faultGapMs: o.faultGap,
    planGapMs: o.planGap,
    sentinel: o.sentinel,
    ...(o.claimDurability ? { claimDurability: o.claimDurability } : {}),
  };
}
