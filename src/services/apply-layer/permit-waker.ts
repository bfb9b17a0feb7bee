/**
 * Wakes the apply layer's plans waiting for their permits as soon as a permit is written,
 * instead of after their next fallback re-read.
 *
 * One subscriber connection per apply layer, subscribed to `quantum:notify:permit` (CHANNELS.permitWritten),
 * on which `permitWrite-1.lua` publishes a permit's key in the same step as its write. A plan ARMS a
 * wake-up BEFORE it reads its permits ({@link PermitWaker.arm}), so a permit written between the read and
 * the wait still wakes it; a message for a plan nobody waits for is dropped.
 *
 * Pub/sub is fire-and-forget: a message published while the subscriber is disconnected (or refused by
 * the ACL) is lost. Nothing depends on one: the waiter re-reads and verifies the permits every time it
 * wakes, and it always wakes after the fallback interval (`APPLY_PERMIT_POLL_MS`) too.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CHANNELS, keys } from '../../adapters/redis/keys.js';

/** An armed wake-up of one plan: wait for it (bounded), then disarm. */
export interface ArmedWake {
  /**
   * Resolves when a permit of the plan was written since {@link PermitWaker.arm} (at once if it already
   * was), after `ms` milliseconds, or when `signal` aborts, whichever comes first. Never rejects.
   * @returns true when woken by a notification, false on the timeout or abort
   */
  wait(ms: number, signal?: AbortSignal): Promise<boolean>;
  /** Removes the wake-up (idempotent; call it in a `finally`). */
  disarm(): void;
}

const GOV_PREFIX = keys.permitGovernor('');
const P33_PREFIX = keys.permitP33('');

/** The plan id of a notification (a permit key), or null for anything else. */
export function planIdOfNotification(message: string): string | null {
  if (message.startsWith(GOV_PREFIX)) return message.slice(GOV_PREFIX.length) || null;
  if (message.startsWith(P33_PREFIX)) return message.slice(P33_PREFIX.length) || null;
  return null;
}

interface Waiter {
  fired: boolean;
  wake: (() => void) | null;
}

/** See the module comment. */
export class PermitWaker {
  private sub: Redis | null = null;
  private readonly waiters = new Map<string, Set<Waiter>>();
  private subscribed = false;
  private warned = false;

  /** @param redis a connection to duplicate for the subscriber (only SUBSCRIBE is ever sent on the copy) */
  constructor(
    private readonly redis: Redis,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens the subscriber connection and subscribes. Never throws: without a subscription (Redis down,
   * the channel not granted) every wait simply lasts its fallback interval; ioredis resubscribes after a
   * reconnect.
   */
  async start(): Promise<void> {
    if (this.sub) return;
    // autoResubscribe off: ioredis' own re-subscription after a reconnect has no rejection handler, and a
    // connection lost again before its reply (Redis restarted twice within a second, p3 chaos seed 41) flushes it
    // with MaxRetriesPerRequestError: an unhandled rejection that kills the process. This waker re-subscribes itself.
    const sub = this.redis.duplicate({ autoResubscribe: false });
    this.sub = sub;
    sub.on('error', () => undefined);
    sub.on('message', (_channel: string, message: string) => this.notify(message));
    sub.on('close', () => {
      this.subscribed = false;
    });
    sub.on('ready', () => {
      if (!this.subscribed) void this.subscribe();
    });
    await this.subscribe();
  }

  private async subscribe(): Promise<void> {
    const sub = this.sub;
    if (!sub) return;
    try {
      await sub.subscribe(CHANNELS.permitWritten);
      this.subscribed = true;
      this.warned = false;
    } catch (err) {
      if (!this.warned) this.logger.warn({ err: (err as Error).message, channel: CHANNELS.permitWritten }, 'permit notifications unavailable; plans wait for their fallback permit re-read');
      this.warned = true;
    }
  }

  /** True while the subscription stands (a readiness detail; plans are decided without it too). */
  get healthy(): boolean {
    return this.subscribed && this.sub?.status === 'ready';
  }

  /** Wakes every waiter of the plan named by `message` (a permit key). Exposed for tests. */
  notify(message: string): void {
    const planId = planIdOfNotification(message);
    if (planId === null) return;
    const set = this.waiters.get(planId);
    if (!set) return;
    for (const w of set) {
      w.fired = true;
      w.wake?.();
    }
  }

  /** Arms a wake-up of `planId` (see {@link ArmedWake}); arm BEFORE reading the permits. */
  arm(planId: string): ArmedWake {
    const w: Waiter = { fired: false, wake: null };
    let set = this.waiters.get(planId);
    if (!set) this.waiters.set(planId, (set = new Set()));
    set.add(w);
    const disarm = () => {
      const s = this.waiters.get(planId);
      if (!s) return;
      s.delete(w);
      if (s.size === 0) this.waiters.delete(planId);
    };
    return {
      disarm,
      wait: (ms, signal) =>
        new Promise<boolean>((resolve) => {
          if (w.fired) return resolve(true);
          if (signal?.aborted) return resolve(false);
          const done = (woken: boolean) => {
            clearTimeout(t);
            signal?.removeEventListener('abort', onAbort);
            w.wake = null;
            resolve(woken);
          };
          const onAbort = () => done(false);
          const t = setTimeout(() => done(false), Math.max(0, ms));
          w.wake = () => done(true);
          signal?.addEventListener('abort', onAbort, { once: true });
        }),
    };
  }

  /** Plans currently waiting (tests, metrics). */
  get waiting(): number {
    return this.waiters.size;
  }

  /** Closes the subscriber connection. */
  stop(): void {
    this.sub?.disconnect();
    this.sub = null;
    this.subscribed = false;
  }
}
