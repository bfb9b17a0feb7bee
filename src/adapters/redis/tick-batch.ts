/**
 * One socket write per event-loop turn: the Redis operations a service issues on one
 * connection during the same turn (the plans of one read batch, handled concurrently, each reaching its
 * next Redis step when the replies of the previous batch arrive together) are sent as ONE pipeline, and
 * their replies come back in one read.
 *
 * Syscalls are what a plan cost most on this machine's VM (socket writes were ~20 % of each consumer's
 * CPU profile with 5-6 writes per plan); ioredis' auto-pipelining does not help there, because it leaves
 * out MULTI transactions (each decision's reads are one) and sends one pipeline at a time.
 *
 * Nothing about an operation changes when it shares a pipeline:
 * - {@link TickBatch.multi}: the commands run in a MULTI/EXEC of their own (the consistent view of
 *   `redis.multi()`); another operation's commands never run inside it.
 * - {@link TickBatch.pipeline}: the commands run in order, each on its own (a Lua script stays one atomic
 *   step), exactly as if sent one after the other on this connection.
 * - Operations run in the order they were issued (one connection, one pipeline, in order), so an
 *   operation issued after another one's (e.g. a stream refresh after a decision's reads) runs after it.
 * - An operation issued while a pipeline is in flight goes in the next one (no waiting for replies).
 * - {@link TickBatch.later}: an operation that may wait (a consumer's XACK) rides along with the next
 *   pipeline the connection sends anyway, or goes alone after at most `maxDelayMs`.
 */
import type { ChainableCommander, Redis } from 'ioredis';

/** One command: name (an ioredis method: `hgetall`, `xack`, a project script such as `permitWrite`) and arguments. */
export type BatchCommand = [name: string, ...args: Array<string | number>];

/** Reply of one command, as ioredis' `exec()` gives it: `[error, reply]` (reply already transformed, e.g. HGETALL → object). */
export type BatchReply = [Error | null, unknown];

interface Op {
  cmds: BatchCommand[] | (() => BatchCommand[]);
  atomic: boolean;
  resolve: (r: BatchReply[]) => void;
  reject: (e: Error) => void;
}

/** See the module comment. One per connection ({@link tickBatch}). */
export class TickBatch {
  private queue: Op[] = [];
  private scheduled = false;
  /** Operations that ride along with the next flush ({@link TickBatch.later}), and their timer. */
  private deferred: Op[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly redis: Redis) {}

  /**
   * Runs `cmds` in one MULTI/EXEC of their own, sent with everything else issued this turn.
   * @returns each command's `[error, reply]` (a command error, e.g. WRONGTYPE, is in its slot)
   * @throws the transaction's error when it failed as a whole (EXECABORT, with the queued commands' errors in
   *   `previousErrors` as ioredis' `multi()` gives them; connection lost)
   */
  multi(cmds: BatchCommand[]): Promise<BatchReply[]> {
    return this.add(cmds, true);
  }

  /**
   * Runs `cmds` one after the other (no transaction), sent with everything else issued this turn.
   * @param cmds the commands, or a function building them when the pipeline is sent (so that, e.g., the
   *   ids to acknowledge can still grow until then)
   * @returns each command's `[error, reply]`
   * @throws when the pipeline failed as a whole (connection lost)
   */
  pipeline(cmds: BatchCommand[] | (() => BatchCommand[])): Promise<BatchReply[]> {
    return this.add(cmds, false);
  }

  /**
   * Runs `cmds` (no transaction) with the next pipeline this connection sends for other operations, or
   * alone after `maxDelayMs` when none is sent before (operations that may wait, such as acknowledging
   * handled stream entries: one socket write fewer per entry).
   * @param cmds the commands, or a function building them when the pipeline is sent
   * @returns each command's `[error, reply]`
   * @throws when the pipeline failed as a whole (connection lost)
   */
  later(cmds: BatchCommand[] | (() => BatchCommand[]), maxDelayMs: number): Promise<BatchReply[]> {
    return new Promise<BatchReply[]>((resolve, reject) => {
      this.deferred.push({ cmds, atomic: false, resolve, reject });
      if (!this.timer) {
        this.timer = setTimeout(() => {
          this.timer = null;
          this.flushSoon();
        }, maxDelayMs);
        this.timer.unref();
      }
    });
  }

  /** Sends what is queued and deferred at the end of this turn (e.g. before a consumer stops). */
  flushSoon(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private add(cmds: BatchCommand[] | (() => BatchCommand[]), atomic: boolean): Promise<BatchReply[]> {
    return new Promise<BatchReply[]>((resolve, reject) => {
      this.queue.push({ cmds, atomic, resolve, reject });
      // after every continuation of this turn (promise jobs included) has queued its operation
      this.flushSoon();
    });
  }

  private flush(): void {
    this.scheduled = false;
    const ops = this.deferred.length > 0 ? [...this.deferred, ...this.queue] : this.queue;
    this.queue = [];
    this.deferred = [];
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (ops.length === 0) return;
    const p = this.redis.pipeline();
    const call = (c: BatchCommand) => {
      const [name, ...args] = c;
      const fn = (p as unknown as Record<string, ((...a: Array<string | number>) => ChainableCommander) | undefined>)[name];
      if (typeof fn !== 'function') throw new Error(`TickBatch: no command ${name} on this connection`);
      fn.apply(p, args);
    };
    // where each op's replies start in the pipeline's reply list
    const at: number[] = [];
    let n = 0;
    const live: Op[] = [];
    const counts: number[] = [];
    for (const op of ops) {
      try {
        if (typeof op.cmds === 'function') op.cmds = op.cmds();
        // validate every command before any is queued: a bad name must neither leave a transaction open nor
        // queue part of an op (its replies would then shift onto the ops after it)
        for (const c of op.cmds) if (typeof (p as unknown as Record<string, unknown>)[c[0]] !== 'function') throw new Error(`TickBatch: no command ${c[0]} on this connection`);
        if (op.atomic) {
          // a MULTI/EXEC block inside the pipeline (ioredis queues EXEC and keeps the pipeline open)
          (p as unknown as { multi(): void }).multi();
          for (const c of op.cmds) call(c);
          void p.exec();
          at.push(n);
          n += op.cmds.length + 2;
          counts.push(op.cmds.length);
        } else {
          for (const c of op.cmds) call(c);
          at.push(n);
          n += op.cmds.length;
          counts.push(op.cmds.length);
        }
        live.push(op);
      } catch (err) {
        op.reject(err as Error);
      }
    }
    if (live.length === 0) return;
    p.exec().then(
      (res) => {
        const replies = res ?? [];
        live.forEach((op, i) => {
          const start = at[i] as number;
          const len = counts[i] as number;
          if (!op.atomic) return op.resolve(replies.slice(start, start + len) as BatchReply[]);
          const exec = replies[start + len + 1];
          if (!exec) return op.reject(new Error('TickBatch: transaction reply missing'));
          if (exec[0]) {
            // EXECABORT: the errors of the queued commands that aborted it (e.g. NOREPLICAS), as ioredis' multi() gives them
            const queued = replies.slice(start + 1, start + 1 + len).flatMap((r) => (r?.[0] ? [r[0]] : []));
            return op.reject(queued.length > 0 ? Object.assign(exec[0], { previousErrors: queued }) : exec[0]);
          }
          const arr = exec[1];
          if (!Array.isArray(arr)) return op.reject(new Error('TickBatch: transaction aborted (no EXEC reply)'));
          op.resolve(arr.map((v): BatchReply => (v instanceof Error ? [v, null] : [null, v])));
        });
      },
      (err: Error) => {
        for (const op of live) op.reject(err);
      },
    );
  }
}

const batches = new WeakMap<Redis, TickBatch>();

/** The {@link TickBatch} of a connection (one per connection, created on first use). */
export function tickBatch(redis: Redis): TickBatch {
  let b = batches.get(redis);
  if (!b) batches.set(redis, (b = new TickBatch(redis)));
  return b;
}

/**
 * The replies of a {@link TickBatch.multi} or {@link TickBatch.pipeline} as values.
 * @throws the first command error (as `multi().exec()` callers do)
 */
export function replyValues(replies: BatchReply[]): unknown[] {
  const out: unknown[] = [];
  for (const [err, v] of replies) {
    if (err) throw err;
    out.push(v);
  }
  return out;
}
