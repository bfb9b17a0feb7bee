/**
 * The demo's last check: after every incident healed, the strategy's plans execute again. A heal that
 * leaves the symbols refusing every plan (a hold or a gate that never clears) is the second worst thing
 * this system can do, so `p3 demo --exit` does not call a run good until one strategy plan has been
 * EXECUTED after the heals.
 */
import type { Redis } from 'ioredis';
import { fieldsToObject } from '../../src/adapters/redis/consumer.js';
import { STREAMS } from '../../src/adapters/redis/keys.js';

/** The first strategy plan executed after the heals. */
export interface TradingResumed {
  plan_id: string;
  symbol: string;
  /** The order's side and filled base-asset quantity, as the apply layer recorded them. */
  side: string;
  filled_qty: string;
  /** Milliseconds from the start of the wait to the result. */
  after_ms: number;
}

/** The id of the newest entry of `quantum:stream:apply.result` (`0-0` when empty): results after it are new. */
export async function lastResultId(redis: Redis): Promise<string> {
  const last = await redis.xrevrange(STREAMS.applyResult, '+', '-', 'COUNT', 1);
  return last[0]?.[0] ?? '0-0';
}

/**
 * Waits until a plan whose id starts with `planPrefix` ends `EXECUTED` on `quantum:stream:apply.result` after
 * the entry `afterId`.
 * @param blocking a connection this call may block on (XREAD BLOCK)
 * @param timeoutMs how long to wait, milliseconds
 * @returns the result, or null when none came within `timeoutMs` or `signal` aborted
 * @throws Error when Redis does not answer
 */
export async function waitTradingResumed(blocking: Redis, afterId: string, planPrefix: string, timeoutMs: number, signal: AbortSignal): Promise<TradingResumed | null> {
  const start = Date.now();
  let lastId = afterId;
  while (!signal.aborted) {
    const left = start + timeoutMs - Date.now();
    if (left <= 0) return null;
    const res = (await blocking.xread('COUNT', 100, 'BLOCK', Math.min(left, 1000), 'STREAMS', STREAMS.applyResult, lastId)) as Array<[string, Array<[string, string[]]>]> | null;
    for (const [, entries] of res ?? []) {
      for (const [id, f] of entries) {
        lastId = id;
        const r = fieldsToObject(f);
        if (r.status === 'EXECUTED' && r.decision === 'EXECUTE' && (r.plan_id ?? '').startsWith(planPrefix)) {
          return { plan_id: r.plan_id ?? '', symbol: r.symbol ?? '', side: r.side ?? '', filled_qty: r.filled_qty ?? '', after_ms: Date.now() - start };
        }
      }
    }
  }
  return null;
}
