/**
 * One module calls the Lua scripts: src/adapters/redis/scripts/ (its typed wrappers, each naming the script's
 * keys, arguments and result codes). No other file of src/ or harness/ calls a script: no `callScript`,
 * `queueScript` or `batchScript`, no EVAL/EVALSHA (`.eval(`, `.evalsha(`, `call('EVALSHA', ...)`), no ioredis
 * custom command of a script (`redis.applyBegin(...)`, `['permitWrite', ...]` in a pipeline), no import of the
 * loader (except src/adapters/redis/client.ts, which loads the scripts on each connection it makes) and no
 * `defineCommand`.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scriptDefs } from '../../src/adapters/redis/scripts/index.js';

const root = join(import.meta.dirname, '../..');
const MODULE = 'src/adapters/redis/scripts/';
const LOADER_IMPORT_ALLOWED = new Set(['src/adapters/redis/client.ts']);

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) tsFiles(p, out);
    else if (/\.(ts|mts|js|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Comments removed (a script named in prose is not a call). */
const code = (text: string): string => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');

/** Each way a file could call a Lua script on its own, with what it found. */
export function scriptCalls(rel: string, text: string, names: string[]): string[] {
  const src = code(text);
  const alt = names.join('|');
  const found: string[] = [];
  const checks: Array<[string, RegExp]> = [
    ['raw script call', /\b(callScript|queueScript|batchScript)\b/],
    ['EVAL/EVALSHA', /\.(eval|evalsha|evalRo|evalshaRo|fcall)\s*\(|\bcall\(\s*['"`](eval|evalsha|eval_ro|evalsha_ro|fcall|script)['"`]/i],
    ['defineCommand', /\bdefineCommand\s*\(/],
    ['script as a custom command', new RegExp(`\\.(${alt})\\s*\\(|\\[\\s*['"\`](${alt})['"\`]\\s*,`)],
  ];
  if (!LOADER_IMPORT_ALLOWED.has(rel)) checks.push(['loader import', /scripts\/loader(\.js)?['"]/]);
  for (const [what, re] of checks) {
    const m = re.exec(src);
    if (m) found.push(`${rel}: ${what} (${m[0]})`);
  }
  return found;
}

describe('the scripts module is the only caller of the Lua scripts', () => {
  const names = [...scriptDefs().keys()];

  it('finds each way of calling a script (the check can fail)', () => {
    expect(scriptCalls('src/x.ts', "await callScript(redis, 'applyBegin', [], []);", names)).toHaveLength(1);
    expect(scriptCalls('src/x.ts', "await redis.evalsha(sha, 1, 'k');", names)).toHaveLength(1);
    expect(scriptCalls('src/x.ts', "await redis.call('EVALSHA', sha, 1, 'k');", names)).toHaveLength(1);
    expect(scriptCalls('src/x.ts', "await (redis as any).applyBegin('k');", names)).toHaveLength(1);
    expect(scriptCalls('src/x.ts', "await tickBatch(redis).pipeline([['permitWrite', key, 60]]);", names)).toHaveLength(1);
    expect(scriptCalls('src/x.ts', "import { loadScripts } from '../redis/scripts/loader.js';", names)).toHaveLength(1);
    expect(scriptCalls('src/x.ts', "/** calls `applyBegin` via the wrapper */\nimport { applyBegin } from '../redis/scripts/index.js';\nawait applyBegin(redis, a);", names)).toEqual([]);
  });

  it('no file of src/ or harness/ outside the scripts module calls a script', () => {
    const offenders: string[] = [];
    for (const dir of ['src', 'harness']) {
      for (const f of tsFiles(join(root, dir))) {
        const rel = relative(root, f).split('\\').join('/');
        if (rel.startsWith(MODULE)) continue;
        offenders.push(...scriptCalls(rel, readFileSync(f, 'utf8'), names));
      }
    }
    expect(offenders).toEqual([]);
  });
});
