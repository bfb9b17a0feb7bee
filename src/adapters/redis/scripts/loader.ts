/**
 * Loading and raw calls of the Lua scripts, BullMQ style: each script is a file in `../lua/` named
 * `<name>-<numberOfKeys>.lua` whose header lists every KEYS[i], ARGV[i] and return code. Scripts are loaded
 * once per connection (ioredis `scripts` option: EVALSHA with automatic EVAL fallback, also after a Redis
 * restart flushed the cache) and called by name through {@link callScript}.
 *
 * Only the typed wrappers of this folder (`./index.ts`) call {@link callScript}, {@link queueScript} and
 * {@link batchScript}: every other module calls a wrapper, which names the script's keys, arguments and result
 * codes (test/ops/script-callers.test.ts checks both).
 *
 * Shared fragments live in `./lua/includes/<name>.lua` (never loaded as scripts of their own): a line
 * `--- @include "includes/<name>"` in a script is replaced by the fragment's text when the script is read
 * (each fragment once per script, fragments may include others), so two scripts that run the same rule
 * (e.g. the token buckets of tokenBucket-2 and governorIssue-3) share one copy of it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { ChainableCommander, Redis } from 'ioredis';
import { fromRoot } from '../../../lib/root.js';
import { tickBatch } from '../tick-batch.js';

/** Read from the source tree also when this module runs compiled (src/lib/root.ts). */
const SCRIPT_DIR = `${fromRoot('src/adapters/redis/lua')}/`;
const FILE_RE = /^([A-Za-z][A-Za-z0-9]*)-(\d+)\.lua$/;

/** One Lua script file. */
export interface ScriptDef {
  name: string;
  numberOfKeys: number;
  lua: string;
}

let cache: Map<string, ScriptDef> | null = null;

const INCLUDE_RE = /^--- @include "(includes\/[A-Za-z][A-Za-z0-9]*)"[ \t]*$/gm;

/**
 * Expands the `--- @include "includes/<name>"` lines of a script (see the module comment).
 * @param read returns the text of `<path>.lua` under the script folder
 * @throws Error on an unknown fragment (the script could not run)
 */
export function expandIncludes(lua: string, read: (path: string) => string, seen: Set<string> = new Set()): string {
  return lua.replace(INCLUDE_RE, (_line, path: string) => {
    if (seen.has(path)) return `-- (${path} included above)`;
    seen.add(path);
    return expandIncludes(read(path), read, seen);
  });
}

/** Every script in `src/adapters/redis/lua`, keyed by name. Read from disk once per process. */
export function scriptDefs(): Map<string, ScriptDef> {
  if (cache) return cache;
  const m = new Map<string, ScriptDef>();
  for (const file of readdirSync(SCRIPT_DIR)) {
    const match = FILE_RE.exec(file);
    if (!match) continue;
    const [, name, n] = match as unknown as [string, string, string];
    const lua = expandIncludes(readFileSync(SCRIPT_DIR + file, 'utf8'), (path) => readFileSync(`${SCRIPT_DIR}${path}.lua`, 'utf8'));
    m.set(name, { name, numberOfKeys: Number(n), lua });
  }
  cache = m;
  return m;
}

/** ioredis `scripts` constructor option for every script (so `duplicate()` connections have them too). */
export function scriptOptions(): Record<string, { lua: string; numberOfKeys: number }> {
  const out: Record<string, { lua: string; numberOfKeys: number }> = {};
  for (const d of scriptDefs().values()) out[d.name] = { lua: d.lua, numberOfKeys: d.numberOfKeys };
  return out;
}

/** A Redis connection on which the project's scripts are defined. */
export type ScriptedRedis = Redis;

/** Defines every script on an existing connection (idempotent). */
export function loadScripts(redis: Redis): ScriptedRedis {
  for (const d of scriptDefs().values()) {
    if (typeof (redis as unknown as Record<string, unknown>)[d.name] !== 'function') {
      redis.defineCommand(d.name, { lua: d.lua, numberOfKeys: d.numberOfKeys });
    }
  }
  return redis;
}

/** Thrown when a script is called with the wrong number of keys or does not exist. */
export class ScriptUsageError extends Error {}

/** The script `name` after checking it exists and takes `keys.length` keys. @throws ScriptUsageError */
function checkedDef(name: string, keys: string[]): ScriptDef {
  const def = scriptDefs().get(name);
  if (!def) throw new ScriptUsageError(`unknown Lua script ${name}`);
  if (keys.length !== def.numberOfKeys) throw new ScriptUsageError(`${name} takes ${def.numberOfKeys} keys, got ${keys.length}`);
  return def;
}

/**
 * Queues a script call on a MULTI or pipeline of a connection made by `createRedis` (its reply comes with the
 * others' from `exec()`, as `[error, reply]`).
 * @param keys exactly the script's KEYS, in its header's order
 * @throws ScriptUsageError on an unknown script, a wrong key count, or a pipeline without the project's scripts
 */
export function queueScript(batch: ChainableCommander, name: string, keys: string[], args: Array<string | number>): void {
  checkedDef(name, keys);
  const fn = (batch as unknown as Record<string, ((...a: string[]) => unknown) | undefined>)[name];
  if (typeof fn !== 'function') throw new ScriptUsageError(`script ${name} not defined on this pipeline (connection not made by createRedis?)`);
  fn.call(batch, ...keys, ...args.map(String));
}

/**
 * Calls a script by name.
 * @param keys exactly the script's KEYS, in its header's order
 * @param args its ARGV, in order (numbers are sent as strings)
 * @returns the script's raw reply (see the script header for codes)
 * @throws ScriptUsageError on an unknown script or a wrong key count; Redis errors as thrown by ioredis
 */
export async function callScript(redis: Redis, name: string, keys: string[], args: Array<string | number>): Promise<unknown> {
  checkedDef(name, keys);
  loadScripts(redis);
  const fn = (redis as unknown as Record<string, (...a: Array<string | number>) => Promise<unknown>>)[name];
  if (!fn) throw new ScriptUsageError(`script ${name} not defined on connection`);
  return fn.call(redis, ...keys, ...args.map(String));
}

/**
 * Calls a script in this turn's one pipeline of the connection (tick-batch.ts): the same one script call, sent with
 * the connection's other operations of this turn.
 * @param keys exactly the script's KEYS, in its header's order
 * @returns the script's raw reply
 * @throws ScriptUsageError on an unknown script or a wrong key count; the script's Redis error
 */
export async function batchScript(redis: Redis, name: string, keys: string[], args: Array<string | number>): Promise<unknown> {
  checkedDef(name, keys);
  loadScripts(redis);
  const [[err, reply]] = (await tickBatch(redis).pipeline([[name, ...keys, ...args.map(String)]])) as [[Error | null, unknown]];
  if (err) throw err;
  return reply;
}
