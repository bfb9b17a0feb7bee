/**
 * Building, signing and submitting plans for strategies written in TypeScript (and `p3 plan submit`).
 * A plan names what it wants: an exit on the current position (reduce-only), a REDUCE by a quantity, or an
 * entry (OPEN from flat, INCREASE on the same side; `reduceOnly` false) sized by `qty` (base asset) or
 * `notionalUsd`; the permits resolve the order from the fresh exchange snapshot (docs/architecture.md#plans).
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { PLAN_STREAM_MAXLEN, STREAMS } from '../adapters/redis/keys.js';
import { ConfigError, type Env } from '../config/env.js';
import { keyEnvName, PERMIT_KEY_ENVS, signPlan, type PlanInput } from '../domain/plan.js';

import { DEFAULT_PLAN_SOURCE, type StrategyAction } from './actions.js';
import { isPlaceholderSecret } from '../config/keys.js';

export { DEFAULT_PLAN_SOURCE, EXIT_ACTIONS, STRATEGY_ACTIONS, type StrategyAction } from './actions.js';

/** What a strategy asks for. */
export interface StrategyPlanRequest {
  /** Upper-case symbol, e.g. `BTCUSDT`. */
  symbol: string;
  action: StrategyAction;
  /** Plan id (1-64 of `[A-Za-z0-9:._-]`); default 16 random hex characters (seed style `81c162f536289e05`). */
  planId?: string;
  /** The strategy's score (seed 004 `kill_score=0.539`), informational: finite, |score| <= 1e6. */
  killScore?: number | null;
  /** Producer name; its key is `P3_KEY_<SOURCE>` (default `exit_brain`). */
  source?: string;
  /** Free-text reason (default `exit`). */
  reason?: string;
  /** Plan time, epoch ms (default now): an integer in [0, 253402300799999]. */
  tsMs?: number;
  /** OPEN/INCREASE: BUY (long) or SELL (short). */
  side?: 'BUY' | 'SELL';
  /** OPEN/INCREASE/REDUCE: base-asset quantity, a plain decimal string: 0 < qty <= 1e9, at most 18 decimals, no exponent. */
  qty?: string;
  /** OPEN/INCREASE: size in USD notional instead of `qty` (qty = notional / mark, rounded down): 0 < notional <= 1e12, plain decimal. */
  notionalUsd?: string;
  /** The price the strategy saw, USD per base unit (plain decimal, 0 < price <= 1e12), for the price collar (docs/risk-controls.md). */
  refPrice?: string;
}

/** A new random plan id (16 hex characters). */
export function newPlanId(): string {
  return randomBytes(8).toString('hex');
}

/**
 * Builds the plan of a request: EXECUTE, MARKET; exits and REDUCE reduce-only, entries `reduceOnly` false
 * with their side and exactly one of qty / notional (the schema refuses anything else when signing).
 */
export function buildStrategyPlan(req: StrategyPlanRequest): PlanInput {
  const entry = req.action === 'OPEN' || req.action === 'INCREASE';
  return {
    plan_id: req.planId ?? newPlanId(),
    symbol: req.symbol.toUpperCase(),
    decision: 'EXECUTE',
    action: req.action,
    type: 'MARKET',
    reduceOnly: !entry,
    ...(req.side ? { side: req.side } : {}),
    ...(req.qty !== undefined ? { qty: req.qty } : {}),
    ...(req.notionalUsd !== undefined ? { notional_usd: req.notionalUsd } : {}),
    ...(req.refPrice !== undefined ? { ref_price: req.refPrice } : {}),
    reason: req.reason ?? (entry ? 'entry' : 'exit'),
    source: req.source ?? DEFAULT_PLAN_SOURCE,
    kill_score: req.killScore ?? null,
    ts_ms: req.tsMs ?? Date.now(),
  };
}

/**
 * Signs any plan with `key` and adds it to `quantum:stream:apply.plan` as `{plan, mac}`.
 * @returns `{planId, entryId}`
 * @throws ZodError when the plan is malformed or a number is outside the plan bounds (nothing is submitted)
 */
export async function submitSignedPlan(redis: Redis, plan: PlanInput, key: string): Promise<{ planId: string; entryId: string }> {
  const signed = signPlan(plan, key);
  const entryId = await redis.xadd(STREAMS.applyPlan, 'MAXLEN', '~', PLAN_STREAM_MAXLEN, '*', 'plan', signed.plan, 'mac', signed.mac);
  return { planId: plan.plan_id, entryId: entryId ?? '' };
}

/**
 * Builds, signs and submits a strategy plan (an exit, a REDUCE or an entry, see {@link buildStrategyPlan}).
 * @param key the source's HMAC key (the value of `P3_KEY_<SOURCE>`)
 * @returns the plan id
 * @throws ZodError for a bad symbol/plan id, or a size, kill score or time outside the plan bounds
 *   (src/domain/plan-numbers.ts; nothing is submitted)
 */
export async function submitPlan(redis: Redis, req: StrategyPlanRequest, key: string): Promise<string> {
  const { planId } = await submitSignedPlan(redis, buildStrategyPlan(req), key);
  return planId;
}

/**
 * The key of `source` from the environment (`P3_KEY_<SOURCE>`).
 * @throws ConfigError naming the variable when it is missing, empty or a placeholder (src/config/keys.ts);
 *   naming `--source` for a permit issuer (`governor`, `p33`), whose key must never sign a plan
 */
export function planKeyFromEnv(env: Env, source: string): string {
  const name = keyEnvName(source);
  const v = env[name];
  // a permit key never signs a plan (the services would refuse it as an unknown source anyway)
  if (PERMIT_KEY_ENVS.includes(name)) throw new ConfigError('--source', `${source} is a permit issuer, not a plan source: its key ${name} signs permits only`);
  if (!v || v.trim() === '') throw new ConfigError(name, `no key for plan source ${source}: set ${name}`);
  if (isPlaceholderSecret(v)) throw new ConfigError(name, 'is a placeholder, not a secret: use the key the services were given');
  return v;
}
