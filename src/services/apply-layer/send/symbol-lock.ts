/**
 * The per-symbol close lock (`quantum:apply:close_lock:<SYM>`) held by a RECONCILE_CLOSE or a FLATTEN
 * while it reads the position and sends (one at a time per symbol, across every apply layer).
 *
 * It is a short lease ({@link SYMBOL_LOCK_LEASE_MS}) renewed every {@link SYMBOL_LOCK_RENEW_MS} while the
 * work runs (`lockRenew-1.lua`, only by its owner token), so an apply layer killed while holding it
 * blocks the symbol for at most one lease instead of a long fixed TTL. A holder frozen past
 * its lease loses the lock; the send-time gate and the one-close-per-drift marker (applyBegin-13.lua)
 * still fence its order.
 */
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import { releaseCloseLock, renewCloseLock, takeCloseLock } from '../store.js';

/** Lease of the lock, ms. */
export const SYMBOL_LOCK_LEASE_MS = 3_000;
/** Renewal period while held, ms. */
export const SYMBOL_LOCK_RENEW_MS = 750;
/** Longest wait for the lock, ms. */
export const SYMBOL_LOCK_WAIT_MS = 30_000;

/**
 * Takes the lock (waiting up to {@link SYMBOL_LOCK_WAIT_MS}), runs `fn` while renewing it, releases it.
 * @returns `taken: false` without running `fn` when the lock stayed busy (or `signal` aborted)
 */
export async function withSymbolLock<T>(
  d: { redis: Redis; logger: Logger; signal: AbortSignal },
  symbol: string,
  token: string,
  fn: () => Promise<T>,
): Promise<{ taken: true; value: T } | { taken: false }> {
  if (!(await takeCloseLock(d.redis, symbol, token, SYMBOL_LOCK_LEASE_MS, SYMBOL_LOCK_WAIT_MS, d.signal))) return { taken: false };
  const renewer = setInterval(() => {
    renewCloseLock(d.redis, symbol, token, SYMBOL_LOCK_LEASE_MS)
      .then((ok) => {
        if (!ok) d.logger.warn({ symbol, token }, `${symbol}: close lock lease lost (process paused?); the send-time gate still fences the order`);
      })
      .catch(() => undefined);
  }, SYMBOL_LOCK_RENEW_MS);
  try {
    return { taken: true, value: await fn() };
  } finally {
    clearInterval(renewer);
    await releaseCloseLock(d.redis, symbol, token).catch(() => undefined);
  }
}
