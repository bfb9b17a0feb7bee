/**
 * Every Lua script's result codes have one name each (src/adapters/redis/scripts/codes.ts) and the names are
 * exactly the codes of the script's header: the integers listed in its `Output:` section (`  -1  text`,
 * `  code -1  text`, `  {1, ...}`) are the integers its table names, no more, no less. A code added to a script
 * without a name (a wrapper would decode it as its fail-closed fallback) or a name left for a code the script
 * no longer returns fails here.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCRIPT_CODES } from '../../src/adapters/redis/scripts/index.js';

const DIR = new URL('../../src/adapters/redis/lua/', import.meta.url);

/** The integer codes of a script header's `Output:` section. */
export function headerCodes(lua: string): number[] {
  const header = /^--\[\[([\s\S]*?)\]\]/.exec(lua)?.[1] ?? '';
  const out = header.split(/^\s*Output:/m)[1];
  if (out === undefined) throw new Error('header has no Output: section');
  const codes = new Set<number>();
  for (const line of out.split('\n')) {
    const m = /^\s*(?:code\s+)?(-?\d+)\s{2,}\S/.exec(line) ?? /^\s*\{(-?\d+),/.exec(line);
    if (m) codes.add(Number(m[1]));
  }
  return [...codes].sort((a, b) => a - b);
}

const scripts = readdirSync(DIR)
  .map((f) => /^([A-Za-z][A-Za-z0-9]*)-\d+\.lua$/.exec(f))
  .filter((m): m is RegExpExecArray => m !== null)
  .map((m) => ({ name: m[1] as string, lua: readFileSync(new URL(m[0], DIR), 'utf8') }));

describe('Lua result codes', () => {
  it('the header parser reads codes, not prose', () => {
    expect(headerCodes('--[[\n  x\n  Output:\n    1  done\n   -1  held\n    code -2  empty\n    n >= 1  version\n    {0, reason}\n]]')).toEqual([-2, -1, 0, 1]);
    expect(headerCodes('--[[\n  Output:\n    stream entry id   written\n]]')).toEqual([]);
  });

  it('every script has a code table and every table a script', () => {
    expect(Object.keys(SCRIPT_CODES).sort()).toEqual(scripts.map((s) => s.name).sort());
  });

  it.each(scripts.map((s) => [s.name, s.lua] as const))('%s: the header codes are exactly the named codes', (name, lua) => {
    const named = Object.values(SCRIPT_CODES[name] ?? {}).sort((a, b) => a - b);
    expect(headerCodes(lua)).toEqual(named);
  });

  it('no two names of a script share a code', () => {
    for (const [name, table] of Object.entries(SCRIPT_CODES)) expect(new Set(Object.values(table)).size, name).toBe(Object.values(table).length);
  });
});
