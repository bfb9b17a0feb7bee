/**
 * The only caller of the project's Lua scripts (as BullMQ's `Scripts` class is of its own): one typed wrapper
 * per script in `../lua/` (named keys and arguments, the KEYS built from keys.ts in the header's order), each
 * returning its reply decoded into the names of ./codes.ts. Loading (ioredis `scripts` option, includes) is in
 * ./loader.ts. test/ops/script-callers.test.ts checks that no other module of src/ calls a script.
 */
export * from './codes.js';
export * from './apply.js';
export * from './reconcile.js';
export * from './governor.js';
export * from './streams.js';
export * from './risk.js';
export * from './venue.js';
export { ScriptUsageError, expandIncludes, loadScripts, scriptDefs, scriptOptions, type ScriptDef, type ScriptedRedis } from './loader.js';
