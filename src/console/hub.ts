/**
 * Live updates for the page (`GET /api/stream`, server-sent events), shared by every open page: one
 * poller re-reads the symbols table every `pollMs` (at once when a reconcile event arrives, so a short
 * HOLD is not missed) and the services view every `servicesMs`; one blocking connection follows the
 * timeline streams (XREAD BLOCK) and forwards each new entry. Runs only while someone listens.
 *
 * SSE messages (`event:` name, `data:` JSON): `symbols` (SymbolsView), `services` (ServicesView),
 * `event` (TimelineEvent), `error` ({message}) when Redis cannot be read (the page shows it; the last
 * data stays on screen marked stale).
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { fieldsToObject } from '../adapters/redis/consumer.js';
import { sleep } from '../lib/sleep.js';
import { readServices, readSymbols, TIMELINE_STREAMS, toTimelineEvent, type TimelineStream } from '../read-model/console.js';

/** Receives SSE messages. */
export type Subscriber = (event: string, data: unknown) => void;

/** Options of {@link ConsoleHub}. */
export interface HubOptions {
  redis: Redis;
  allowlist: string[];
  logger: Logger;
  /** Symbols table refresh, ms (default 500). */
  pollMs?: number;
  /** Services view refresh, ms (default 2000). */
  servicesMs?: number;
}

/** Fan-out of live updates to the open pages. */
export class ConsoleHub {
  private readonly subs = new Set<Subscriber>();
  private abort: AbortController | null = null;
  private loops: Promise<unknown>[] = [];
  private wake: (() => void) | null = null;
  /** Last messages, replayed to a new subscriber. */
  private readonly last = new Map<string, unknown>();

  constructor(private readonly o: HubOptions) {}

  /** Adds a subscriber (starting the loops if needed) and returns its unsubscribe function. */
  subscribe(fn: Subscriber): () => void {
    this.subs.add(fn);
    for (const [ev, data] of this.last) fn(ev, data);
    if (!this.abort) this.start();
    return () => {
      this.subs.delete(fn);
      if (this.subs.size === 0) void this.stop();
    };
  }

  private broadcast(event: string, data: unknown): void {
    if (event !== 'event') this.last.set(event, data);
    for (const s of this.subs) {
      try {
        s(event, data);
      } catch {
        // a closed response: its close handler unsubscribes it
      }
    }
  }

  private start(): void {
    const abort = new AbortController();
    this.abort = abort;
    this.loops = [this.pollLoop(abort.signal), this.servicesLoop(abort.signal), this.followLoop(abort.signal)];
  }

  /** Stops the loops (also when the last page closes). */
  async stop(): Promise<void> {
    const a = this.abort;
    if (!a) return;
    this.abort = null;
    a.abort();
    this.wake?.();
    await Promise.allSettled(this.loops);
    this.loops = [];
  }

  /** Stops and forgets every subscriber (console shutdown). */
  async close(): Promise<void> {
    this.subs.clear();
    await this.stop();
  }

  private async pollLoop(signal: AbortSignal): Promise<void> {
    const pollMs = this.o.pollMs ?? 500;
    while (!signal.aborted) {
      try {
        this.broadcast('symbols', await readSymbols(this.o.redis, this.o.allowlist, Date.now()));
      } catch (err) {
        this.broadcast('error', { message: `cannot read Redis: ${(err as Error).message}` });
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, pollMs);
        function done() {
          clearTimeout(t);
          resolve();
        }
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
      this.wake = null;
    }
  }

  private async servicesLoop(signal: AbortSignal): Promise<void> {
    const every = this.o.servicesMs ?? 2000;
    while (!signal.aborted) {
      try {
        this.broadcast('services', await readServices(this.o.redis, this.o.allowlist, Date.now()));
      } catch (err) {
        this.broadcast('error', { message: `cannot read Redis: ${(err as Error).message}` });
      }
      await sleep(every, signal).catch(() => undefined);
    }
  }

  private async followLoop(signal: AbortSignal): Promise<void> {
    const blocking = this.o.redis.duplicate();
    blocking.on('error', () => undefined);
    const names = Object.keys(TIMELINE_STREAMS) as TimelineStream[];
    // start after each stream's newest entry ('$' would skip entries added between two XREADs)
    const ids: Record<string, string> = {};
    for (const n of names) {
      const newest = (await this.o.redis.xrevrange(TIMELINE_STREAMS[n], '+', '-', 'COUNT', 1).catch(() => [])) as Array<[string, string[]]>;
      ids[TIMELINE_STREAMS[n]] = newest[0]?.[0] ?? '0-0';
    }
    const byStream = new Map(names.map((n) => [TIMELINE_STREAMS[n] as string, n]));
    signal.addEventListener('abort', () => blocking.disconnect(), { once: true });
    try {
      while (!signal.aborted) {
        let res: Array<[string, Array<[string, string[]]>]> | null;
        try {
          res = (await blocking.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', ...Object.keys(ids), ...Object.values(ids))) as typeof res;
        } catch (err) {
          if (signal.aborted) break;
          this.o.logger.warn({ err: (err as Error).message }, 'console: following the event streams failed; retrying');
          await sleep(500, signal).catch(() => undefined);
          continue;
        }
        if (!res) continue;
        let reconcile = false;
        for (const [stream, entries] of res) {
          const name = byStream.get(stream);
          for (const [id, f] of entries) {
            ids[stream] = id;
            if (!name) continue;
            if (name === 'reconcile') reconcile = true;
            this.broadcast('event', toTimelineEvent(name, { id, fields: fieldsToObject(f) }));
          }
        }
        if (reconcile) this.wake?.();
      }
    } finally {
      blocking.disconnect();
    }
  }
}
