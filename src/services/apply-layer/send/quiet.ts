/**
 * Waiting for a symbol to be quiet before an order is sized from a fresh exchange read (RECONCILE_CLOSE,
 * FLATTEN): the send-time gate (src/domain/send-gate.ts) refuses an order while another order of the
 * symbol is in flight or when its position read is not newer than the symbol's newest fill, so the
 * handlers wait (bounded) for both before reading, instead of reading a position that is about to move.
 */
import { readSendState } from '../store.js';
import { sleep } from '../../../lib/sleep.js';
import type { ApplyDeps } from '../deps.js';

/** Longest wait for another order of the symbol to finish before the position is read, ms. */
export const QUIET_WAIT_MS = 15_000;
/** Poll period of that wait, ms. */
const QUIET_POLL_MS = 50;

/**
 * Waits until no order of `symbol` other than `ownCid` is in flight and the symbol's newest fill lies in
 * the past (a read started now is newer than it).
 * @returns true when quiet; false after `maxMs` or when stopping
 */
export async function waitSymbolQuiet(d: Pick<ApplyDeps, 'redis' | 'signal'>, symbol: string, ownCid: string, maxMs = QUIET_WAIT_MS): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const st = await readSendState(d.redis, symbol);
    if (st.inflight.every((c) => c === ownCid) && (st.lastFillMs === null || Date.now() > st.lastFillMs)) return true;
    if (Date.now() >= deadline || d.signal.aborted) return false;
    await sleep(QUIET_POLL_MS, d.signal);
  }
}
