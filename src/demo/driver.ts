/**
 * The demo's strategy driver: submits a signed `PARTIAL_75` exit plan per symbol every few seconds, as
 * the seeds' exit brain did (seed 004: one BTCUSDT plan a minute, kill_score 0.539), and reports both
 * permits of each plan as soon as they are written.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { keys } from '../adapters/redis/keys.js';
import { submitPlan } from '../plans/submit.js';
import { sleep } from '../lib/sleep.js';

/** Decision of one permit as read from Redis. */
export interface PermitView {
  decision: string;
  reason: string;
}

/** Both permits of a plan (null = not written within the wait). */
export interface PermitPair {
  planId: string;
  symbol: string;
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

/** Runs until `signal` aborts. Never throws (errors are reported as missing permits). */
export async function runStrategyDriver(o: DriverOptions): Promise<void> {
  let n = 0;
  while (!o.signal.aborted) {
    n++;
    for (const symbol of o.symbols) {
      submitExitPlan(o.redis, symbol, o.key, n)
        .then((planId) => waitPermits(o.redis, planId, symbol, 5000, o.signal))
        .then((pair) => {
          if (!o.signal.aborted) o.onPermits(pair);
        })
        .catch(() => undefined);
    }
    await sleep(o.intervalMs, o.signal);
  }
}
