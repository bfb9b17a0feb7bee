/**
 * A connection to a numbered database (`redis://host:6379/3`) must never fall back to database 0.
 *
 * ioredis sends `SELECT <db>` when it connects, but when the server refuses it ("ERR DB index is out of
 * range": the server has fewer `databases`; or NOPERM: the ACL user may not SELECT) it only emits an
 * `error` event and carries on, so every later command reads and writes database 0, which may be another
 * deployment's. {@link guardDatabase} watches the SELECT reply and, once it fails, refuses every command
 * of the connection for good with a {@link RedisDatabaseError} and closes it: nothing is ever written to
 * the wrong database, and the error names `REDIS_URL`.
 *
 * Order: ioredis writes SELECT before its ready check (INFO) and flushes the commands queued meanwhile
 * only after the INFO reply, so the SELECT reply (and this guard's verdict) always comes first.
 */
import type { Redis } from 'ioredis';

/** Every command of a connection whose `SELECT` failed is rejected with this error. */
export class RedisDatabaseError extends Error {
  constructor(
    /** The database number of the URL. */
    readonly db: number,
    /** The server's reply to SELECT. */
    readonly reply: string,
  ) {
    super(`REDIS_URL selects database ${db} but the server refused it (${reply}): nothing is read or written (the connection would fall back to database 0); fix the database number in REDIS_URL, or the server's "databases" setting`);
    this.name = 'RedisDatabaseError';
  }
}

interface Command {
  name: string;
  reject(err: Error): void;
  promise: Promise<unknown>;
}

const GUARDED = Symbol('p3.databaseGuard');

/**
 * Guards `redis` (and its `duplicate()`s) against a refused SELECT (see the module comment). No-op for
 * database 0, which every server has and ioredis never selects.
 * @returns `redis`, for chaining
 */
export function guardDatabase<R extends Redis>(redis: R): R {
  const db = Number(redis.options.db ?? 0);
  const tagged = redis as R & { [GUARDED]?: boolean };
  if (!db || tagged[GUARDED]) return redis;
  tagged[GUARDED] = true;
  let refused: RedisDatabaseError | null = null;
  const send = redis.sendCommand.bind(redis) as (c: Command, s?: unknown) => unknown;
  (redis as unknown as { sendCommand: (c: Command, s?: unknown) => unknown }).sendCommand = (command: Command, stream?: unknown) => {
    if (refused) {
      command.reject(refused);
      return command.promise;
    }
    if (command.name === 'select') {
      // registered before ioredis' own handler, so it runs before anything queued behind the SELECT is sent
      // only the server's refusal counts: a SELECT lost with its connection is sent again on the reconnect
      command.promise.catch((err: Error) => {
        // only a refusal of THIS database counts ("ERR DB index is out of range", "invalid DB index", or a user
        // without SELECT): any other error reply (NOAUTH while a password rotates, BUSY while a script runs,
        // LOADING after a restart) is transient, and ioredis retries it on the next connection as usual
        if (refused || err?.name !== 'ReplyError' || !isDatabaseRefusal(err.message)) return;
        refused = new RedisDatabaseError(db, err?.message ?? String(err));
        if (redis.listenerCount('error') > 0) redis.emit('error', refused);
        redis.disconnect();
      });
    }
    return send(command, stream);
  };
  const duplicate = redis.duplicate.bind(redis);
  redis.duplicate = ((...a: Parameters<Redis['duplicate']>) => guardDatabase(duplicate(...a))) as Redis['duplicate'];
  return redis;
}

/** True for the server's answers that refuse a database itself (not a transient error of the connection). */
export function isDatabaseRefusal(message: string): boolean {
  return /DB index is out of range|invalid DB index|NOPERM[^\n]*'select'/i.test(message ?? '');
}

/** The {@link RedisDatabaseError} a connection's SELECT ended in, or null (checks with one PING). */
export async function databaseRefusal(redis: Redis): Promise<RedisDatabaseError | null> {
  try {
    await redis.ping();
    return null;
  } catch (err) {
    return err instanceof RedisDatabaseError ? err : null;
  }
}
