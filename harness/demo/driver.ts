/**
 * The demo's strategy driver (docs/architecture.md#the-demo): every few seconds, per symbol, one signed plan that
 * trades both ways through the same gates as everything else: OPEN from flat (sized in USD notional),
 * INCREASE on the position's side, then exits (PARTIAL_50, REDUCE, FULL_CLOSE) back to flat, and again. It
 * reports both permits of each plan as soon as they are written.
 *
 * Sides: symbols listed in `longOnly` (the incident symbols, whose scripted manual trades assume a long or
 * flat position) only ever open long; the others alternate long and short.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keys } from '../../src/adapters/redis/keys.js';
import { submitPlan } from '../../src/plans/submit.js';
import { sleep } from '../../src/lib/sleep.js';

/** Decision of one permit as read from Redis. */
export interface PermitView {
  decision: string;
  reason: string;
}

/** Both permits of a plan (null = not written within the wait). */
export interface PermitPair {
  planId: string;
  symbol: string;
  /** The plan's action (OPEN, INCREASE, PARTIAL_50, ...), when the driver knows it. */
  action?: string;
  governor: PermitView | null;
  p33: PermitView | null;
}

/** Options of {@link runStrategyDriver}. */
export interface DriverOptions {
  redis: Redis;
  symbols: string[];
  /** Key of source `exit_brain` (`P3_KEY_EXIT_BRAIN`). */
  key: string;
  intervalMs: number;
  signal: AbortSignal;
  onPermits(p: PermitPair): void;
  /** Symbols that only ever open long (default: none). */
  longOnly?: string[];
  /** Notional of an OPEN, USD (default 250; INCREASE is half of it). */
  entryUsd?: number;
}

async function readPermit(redis: Redis, key: string): Promise<PermitView | null> {
  const h = await redis.hgetall(key);
  return h.decision ? { decision: h.decision, reason: h.reason ?? '' } : null;
}

/** Waits up to `timeoutMs` for both permits of `planId`. */
export async function waitPermits(redis: Redis, planId: string, symbol: string, timeoutMs: number, signal?: AbortSignal): Promise<PermitPair> {
  const deadline = Date.now() + timeoutMs;
  let g: PermitView | null = null;
  let p: PermitView | null = null;
  while (Date.now() < deadline && !signal?.aborted) {
    g ??= await readPermit(redis, keys.permitGovernor(planId));
    p ??= await readPermit(redis, keys.permitP33(planId));
    if (g && p) break;
    await sleep(20, signal);
  }
  return { planId, symbol, governor: g, p33: p };
}

/** Submits one PARTIAL_75 exit plan for `symbol` through the strategy library; returns its plan id. */
export async function submitExitPlan(redis: Redis, symbol: string, key: string, n: number): Promise<string> {
  const planId = `demo-${symbol}-${n}-${randomBytes(3).toString('hex')}`;
  return submitPlan(redis, { symbol, action: 'PARTIAL_75', planId, killScore: 0.539, reason: 'exit_brain_partial' }, key);
}

/** The step of a symbol's trading cycle, from its position: flat → OPEN; then INCREASE, PARTIAL_50, REDUCE, FULL_CLOSE. */
export function nextTrade(position: string | null, step: number, side: 'BUY' | 'SELL', entryUsd: number): StrategyPlanRequestLike | null {
  if (position === null) return null; // no snapshot: nothing to size from
  const flat = /^-?0*(\.0*)?$/.test(position.trim());
  if (flat) return { action: 'OPEN', side, notionalUsd: String(entryUsd) };
  const long = !position.trim().startsWith('-');
  switch (step % 4) {
    case 0:
      return { action: 'INCREASE', side: long ? 'BUY' : 'SELL', notionalUsd: String(entryUsd / 2) };
    case 1:
      return { action: 'PARTIAL_50' };
    case 2:
      return { action: 'REDUCE', qty: position.replace(/^-/, '') };
    default:
      return { action: 'FULL_CLOSE' };
  }
}

/** A plan the driver sends (the strategy library's request without symbol and ids). */
export interface StrategyPlanRequestLike {
  action: 'OPEN' | 'INCREASE' | 'PARTIAL_50' | 'REDUCE' | 'FULL_CLOSE';
  side?: 'BUY' | 'SELL';
  qty?: string;
  notionalUsd?: string;
}

/** Runs until `signal` aborts. Never throws (errors are reported as missing permits). */
export async function runStrategyDriver(o: DriverOptions): Promise<void> {
  let n = 0;
  const opens = new Map<string, number>();
  while (!o.signal.aborted) {
    n++;
    for (const symbol of o.symbols) {
      const position = await o.redis.hget(keys.snapshot(symbol), 'position_amt').catch(() => null);
      const k = opens.get(symbol) ?? 0;
      const side: 'BUY' | 'SELL' = o.longOnly?.includes(symbol) || k % 2 === 0 ? 'BUY' : 'SELL';
      const t = nextTrade(position, n, side, o.entryUsd ?? 250);
      if (!t) continue;
      if (t.action === 'OPEN') opens.set(symbol, k + 1);
      const planId = `demo-${symbol}-${n}-${randomBytes(3).toString('hex')}`;
      submitPlan(o.redis, { symbol, planId, killScore: 0.539, reason: `demo_${t.action.toLowerCase()}`, ...t }, o.key)
        .then((id) => waitPermits(o.redis, id, symbol, 5000, o.signal))
        .then((pair) => {
          if (!o.signal.aborted) o.onPermits({ ...pair, action: t.action });
        })
        .catch(() => undefined);
    }
    await sleep(o.intervalMs, o.signal);
  }
}
