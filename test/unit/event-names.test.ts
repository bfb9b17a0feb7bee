/**
 * One registry of event names (src/domain/events.ts): every event name written in a Lua script is in it, no
 * TypeScript file of src/ or harness/ writes or compares an event name as a bare string (they use `EVENT.<NAME>`,
 * checked by the compiler), every name of the registry is written somewhere, and docs/glossary.md's "Event names"
 * table is the registry. A typo in an event name fails here or in `tsc`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EVENTS, isEventName } from '../../src/domain/events.js';

const root = join(import.meta.dirname, '../..');

function files(dir: string, ext: RegExp, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files(p, ext, out);
    else if (ext.test(name)) out.push(p);
  }
  return out;
}

/** Event names a Lua script writes: `event('NAME', ...)` (a script's event helper) and `'event', 'NAME'` (XADD fields). */
export function luaEventNames(lua: string): string[] {
  const out: string[] = [];
  for (const m of lua.matchAll(/\bevent\(\s*'([A-Za-z0-9_]+)'|'event',\s*'([A-Za-z0-9_]+)'/g)) out.push((m[1] ?? m[2]) as string);
  return out;
}

/** Bare event-name strings in TypeScript: `event: 'NAME'`, `'event', 'NAME'`, `.event === 'NAME'`, `case 'NAME'` of a switch on `.event`. */
export function tsBareEventNames(ts: string): string[] {
  const out: string[] = [];
  for (const m of ts.matchAll(/\bevent\s*:\s*['"`]([A-Z][A-Z0-9_]+)['"`]|['"]event['"]\s*,\s*['"`]([A-Z][A-Z0-9_]+)['"`]|\.event\s*[!=]==?\s*['"`]([A-Z][A-Z0-9_]+)['"`]/g)) {
    out.push((m[1] ?? m[2] ?? m[3]) as string);
  }
  for (const sw of ts.matchAll(/switch\s*\([^)]*\.event\)\s*\{([\s\S]*?)\n\s{0,4}\}/g)) for (const c of (sw[1] as string).matchAll(/case\s+['"`]([A-Z][A-Z0-9_]+)['"`]/g)) out.push(c[1] as string);
  return out;
}

const luaFiles = files(join(root, 'src/adapters/redis/lua'), /\.lua$/).map((f) => ({ rel: relative(root, f), text: readFileSync(f, 'utf8') }));
const tsFiles = ['src', 'harness'].flatMap((d) => files(join(root, d), /\.ts$/)).map((f) => ({ rel: relative(root, f), text: readFileSync(f, 'utf8') }));

/** The glossary table of the registry, as it must read. */
function glossaryTable(): string {
  const rows = Object.entries(EVENTS).map(([name, e]) => `| \`${name}\` | \`quantum:stream:${e.stream}\` | ${e.writer} | ${e.meaning} |`);
  return ['| event | stream | written by | meaning |', '|---|---|---|---|', ...rows].join('\n');
}

describe('event names', () => {
  it('the scanners find event names where they are written (the checks can fail)', () => {
    expect(luaEventNames("event('HOLD_SETT', { a = 1 })\nredis.call('XADD', k, '*', 'event', 'LEDGER_MIGRATD')")).toEqual(['HOLD_SETT', 'LEDGER_MIGRATD']);
    expect(tsBareEventNames("xadd(s, '*', 'event', 'X_Y', 'a')\nconst e = { event: 'AUTO_REPAIR' };\nif (f.event === 'HOLD_SET') {}")).toEqual(['X_Y', 'AUTO_REPAIR', 'HOLD_SET']);
    expect(tsBareEventNames('switch (f.event) {\n  case \'HOLD_SET\':\n    break;\n}')).toEqual(['HOLD_SET']);
    expect(tsBareEventNames("const e = { event: EVENT.AUTO_REPAIR, status: 'MANUAL_REQUIRED' };")).toEqual([]);
    expect(isEventName('HOLD_SETT')).toBe(false);
  });

  it('every event name a Lua script writes is in the registry', () => {
    const unknown = luaFiles.flatMap((f) => luaEventNames(f.text).filter((n) => !isEventName(n)).map((n) => `${f.rel}: ${n}`));
    expect(unknown).toEqual([]);
  });

  it('TypeScript writes and compares event names through EVENT, never as bare strings', () => {
    const bare = tsFiles.flatMap((f) => tsBareEventNames(f.text).map((n) => `${f.rel}: '${n}'${isEventName(n) ? ' (use EVENT.' + n + ')' : ' (not in the registry)'}`));
    expect(bare).toEqual([]);
  });

  it('every name of the registry is written somewhere (no stale entry)', () => {
    const written = new Set<string>(luaFiles.flatMap((f) => luaEventNames(f.text)));
    for (const f of tsFiles) for (const m of f.text.matchAll(/\bEVENT\.([A-Z][A-Z0-9_]+)/g)) written.add(m[1] as string);
    expect(Object.keys(EVENTS).filter((n) => !written.has(n))).toEqual([]);
  });

  it('docs/glossary.md lists exactly the registry (section "Event names")', () => {
    const doc = readFileSync(join(root, 'docs/glossary.md'), 'utf8');
    const section = /^## Event names\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(doc)?.[1] ?? '';
    const table = section.split('\n').filter((l) => l.startsWith('|')).join('\n');
    expect(table, `replace the table of docs/glossary.md's "Event names" with:\n${glossaryTable()}\n`).toBe(glossaryTable());
  });
});
