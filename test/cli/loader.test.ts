/**
 * bin/p3.mjs runs compiled JavaScript only when it was built from exactly the current sources (bin/dist.mjs;
 * docs/performance.md): a build directory is named by the hash of every source file, so an edit, a `git checkout` or a
 * file restored with an old modification time makes it stale and p3 falls back to tsx — a test or child
 * process never runs code older than src/. Non-TypeScript assets are read from the source tree.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript module without types
import { build, currentEntry, distDir, sourceHash } from '../../bin/dist.mjs';

const root = join(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'p3-loader-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A project with the given sources (no node_modules needed: the build imports esbuild from this project). */
function miniProject(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmp, 'mini-'));
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  }
  return dir;
}

const p3 = (cwdRoot: string, args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, [join(cwdRoot, 'bin/p3.mjs'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', P3_LOADER_TRACE: '1', ...env }, timeout: 120_000 });

describe('bin/dist.mjs', () => {
  it('names a build by the content of the sources: edits, reverts and old mtimes are all seen', async () => {
    const dir = miniProject({ 'src/cli/main.ts': 'export const v: number = 1;\n', 'src/lib/a.ts': 'export const a = 1;\n' });
    expect(currentEntry(dir)).toBeNull();
    const first = await build(dir);
    expect(first.built).toBe(true);
    expect(currentEntry(dir)).toBe(join(distDir(first.hash, dir), 'src', 'cli', 'main.js'));
    expect(readFileSync(join(first.dir, 'src/lib/a.js'), 'utf8')).toContain('a = 1');
    expect((await build(dir)).built).toBe(false);

    // an edit: stale until built again
    const file = join(dir, 'src/lib/a.ts');
    writeFileSync(file, 'export const a = 2;\n');
    expect(sourceHash(dir)).not.toBe(first.hash);
    expect(currentEntry(dir)).toBeNull();
    const second = await build(dir);
    expect(readFileSync(join(second.dir, 'src/lib/a.js'), 'utf8')).toContain('a = 2');

    // the same size and an old modification time (cp -p, tar, rsync -t) still count as a change
    writeFileSync(file, 'export const a = 3;\n');
    utimesSync(file, new Date(2000, 0, 1), new Date(2000, 0, 1));
    expect(currentEntry(dir)).toBeNull();

    // a new file, and a revert to the first content (the first build is current again)
    writeFileSync(join(dir, 'src/lib/b.ts'), 'export {};\n');
    expect(currentEntry(dir)).toBeNull();
    rmSync(join(dir, 'src/lib/b.ts'));
    writeFileSync(file, 'export const a = 1;\n');
    expect(currentEntry(dir)).toBe(join(distDir(first.hash, dir), 'src', 'cli', 'main.js'));
  });

  it('a syntax error fails the build and leaves no build behind', async () => {
    const dir = miniProject({ 'src/cli/main.ts': 'export const = ;\n' });
    await expect(build(dir)).rejects.toThrow();
    expect(readdirSync(join(dir, 'dist')).filter((d) => !d.startsWith('.'))).toEqual([]);
    expect(currentEntry(dir)).toBeNull();
  });
});

describe('bin/p3.mjs', () => {
  it('runs dist when it is current, tsx after an edit (the edit is what runs), dist again after a build', async () => {
    const copy = mkdtempSync(join(tmp, 'project-'));
    for (const d of ['bin', 'src', 'harness', 'bench']) cpSync(join(root, d), join(copy, d), { recursive: true });
    cpSync(join(root, 'package.json'), join(copy, 'package.json'));
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'));
    await build(copy);

    const a = p3(copy, ['--help']);
    expect(a.status).toBe(0);
    expect(a.stderr).toMatch(/p3: loader dist .*dist\/[0-9a-f]{16}\/src\/cli\/main\.js/);
    expect(a.stdout).toContain('bench');

    // edit a command's description: p3 must show the edit (tsx), never the build of the old sources
    const cmd = join(copy, 'bench/cli.ts');
    writeFileSync(cmd, readFileSync(cmd, 'utf8').replace("description('measure", "description('EDITED measure"));
    const b = p3(copy, ['--help']);
    expect(b.status).toBe(0);
    expect(b.stderr).toContain('p3: loader tsx');
    expect(b.stdout).toContain('EDITED measure');

    await build(copy);
    const c = p3(copy, ['--help']);
    expect(c.stderr).toMatch(/p3: loader dist/);
    expect(c.stdout).toContain('EDITED measure');
    expect(p3(copy, ['--help'], { P3_NO_DIST: '1' }).stderr).toContain('p3: loader tsx');
  });

  it('compiled code finds the Lua scripts, the console page and package.json in the source tree', async () => {
    const { dir } = await build(root);
    const probe = `
      const { scriptDefs } = await import(${JSON.stringify(join(dir, 'src/adapters/redis/scripts/loader.js'))});
      const { P3_VERSION } = await import(${JSON.stringify(join(dir, 'src/host/version.js'))});
      const { fromRoot } = await import(${JSON.stringify(join(dir, 'src/lib/root.js'))});
      console.log(JSON.stringify({ scripts: [...scriptDefs().keys()].length, version: P3_VERSION, page: fromRoot('src/console/public/index.html') }));`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { scripts: number; version: string; page: string };
    expect(out.scripts).toBe(readdirSync(join(root, 'src/adapters/redis/lua')).filter((f) => f.endsWith('.lua')).length);
    expect(out.version).toBe((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version);
    expect(existsSync(out.page)).toBe(true);
  });
});
