// Compiled JavaScript of the TypeScript sources, so `p3` does not transpile at every start (issue 16:
// tsx held ~120 MB more per process than the same code compiled, and slowed every start).
//
// Layout: dist/<hash>/src/**.js, dist/<hash>/harness/**.js and dist/<hash>/bench/**.js, where <hash> is the SHA-256 (first 16 hex
// digits) of every `.ts` file under src/, harness/ and bench/ (path and content) and of this file (the build options).
// The directory name IS the content of the sources it was built from: bin/p3.mjs hashes the sources at
// start and runs dist/<hash>/ only if that exact directory exists, so a build can never be older than
// src/ (an edit, a `git checkout`, a restored file with an old mtime all change the hash; nothing relies
// on timestamps). A directory appears complete or not at all: it is built in dist/.tmp-<pid>-<n>/ and
// renamed. Non-TypeScript assets (Lua scripts, the console's page, package.json) are never copied: the code
// finds them in the source tree through src/lib/root.ts.
//
//   node bin/dist.mjs build     builds dist/<hash>/ unless it exists (npm's prepare/prestart/pretest/prebench),
//                               keeps the {@link KEEP} most recent other builds, removes older ones
//   node bin/dist.mjs status    prints `current dist/<hash>` or `stale dist/<hash>` (exit 0 / 1)
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder of package.json). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The source folders compiled (relative to the root). */
const SOURCE_DIRS = ['src', 'harness', 'bench'];
/** Builds kept besides the current one (processes started from an older build may still import from it). */
const KEEP = 3;

/** Every `.ts` source file under `root`'s {@link SOURCE_DIRS}, as sorted root-relative paths with `/`. */
export function sourceFiles(root = ROOT) {
  const out = [];
  for (const d of SOURCE_DIRS) {
    const base = join(root, d);
    if (!existsSync(base)) continue;
    for (const f of readdirSync(base, { recursive: true })) {
      const rel = `${d}/${String(f).split(sep).join('/')}`;
      if (rel.endsWith('.ts') && !rel.endsWith('.d.ts')) out.push(rel);
    }
  }
  return out.sort();
}

/** The hash naming the build of `root`'s sources (16 hex digits); reads every source file (~1 MB, a few ms). */
export function sourceHash(root = ROOT) {
  const h = createHash('sha256');
  h.update(readFileSync(fileURLToPath(import.meta.url)));
  for (const rel of sourceFiles(root)) {
    h.update(`\0${rel}\0`);
    h.update(readFileSync(join(root, rel)));
  }
  return h.digest('hex').slice(0, 16);
}

/** The build folder of `hash`. */
export const distDir = (hash, root = ROOT) => join(root, 'dist', hash);

/**
 * The compiled CLI entry (`dist/<hash>/src/cli/main.js`) when the build of the current sources exists,
 * else null (never built, or built from other sources). `P3_NO_DIST=1` always answers null.
 */
export function currentEntry(root = ROOT) {
  if (process.env.P3_NO_DIST === '1') return null;
  const entry = join(distDir(sourceHash(root), root), 'src', 'cli', 'main.js');
  return existsSync(entry) ? entry : null;
}

/**
 * The compiled harness commands beside a compiled CLI entry `entry` (`dist/<hash>/src/cli/main.js`):
 * `{harness: dist/<hash>/harness/cli/index.js, bench: dist/<hash>/bench/cli.js}`.
 */
export function harnessEntries(entry) {
  const base = dirname(dirname(dirname(entry)));
  return { harness: join(base, 'harness', 'cli', 'index.js'), bench: join(base, 'bench', 'cli.js') };
}

/**
 * Builds dist/<hash>/ of the current sources with esbuild (transpile only, one .js per .ts, ES2022 modules,
 * linked source maps). Returns `{hash, dir, built}` (`built` false when it already existed).
 * @throws Error when esbuild fails (a syntax error) — nothing is left behind then
 */
export async function build(root = ROOT) {
  const hash = sourceHash(root);
  const dir = distDir(hash, root);
  if (existsSync(dir)) return { hash, dir, built: false };
  const { build: esbuild } = await import('esbuild');
  const tmp = join(root, 'dist', `.tmp-${process.pid}-${Date.now()}`);
  mkdirSync(tmp, { recursive: true });
  try {
    await esbuild({
      absWorkingDir: root,
      entryPoints: sourceFiles(root),
      outdir: tmp,
      outbase: '.',
      bundle: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      sourcemap: 'linked',
      logLevel: 'error',
      // what tsconfig.json means for emitted code (target ES2022: class fields are defined, not assigned)
      tsconfigRaw: { compilerOptions: { target: 'ES2022', useDefineForClassFields: true, verbatimModuleSyntax: false } },
    });
    writeFileSync(join(tmp, 'BUILD.json'), `${JSON.stringify({ hash, files: sourceFiles(root).length, built_at: new Date().toISOString() })}\n`);
    try {
      renameSync(tmp, dir);
    } catch (err) {
      if (!existsSync(dir)) throw err; // else another process built the same sources first
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  prune(root, hash);
  return { hash, dir, built: true };
}

/** Removes all but the {@link KEEP} newest builds other than `hash`, and temporary folders older than an hour. */
function prune(root, hash) {
  const base = join(root, 'dist');
  const entries = readdirSync(base, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name !== hash)
    .map((e) => ({ name: e.name, mtime: statSync(join(base, e.name)).mtimeMs }));
  const builds = entries.filter((e) => /^[0-9a-f]{16}$/.test(e.name)).sort((a, b) => b.mtime - a.mtime);
  for (const e of builds.slice(KEEP)) rmSync(join(base, e.name), { recursive: true, force: true });
  for (const e of entries) if (e.name.startsWith('.tmp-') && Date.now() - e.mtime > 3_600_000) rmSync(join(base, e.name), { recursive: true, force: true });
}

// `node bin/dist.mjs build|status`
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const cmd = process.argv[2];
  if (cmd === 'build') {
    const t = Date.now();
    const r = await build();
    process.stdout.write(`p3: ${r.built ? 'built' : 'up to date:'} ${relative(ROOT, r.dir)}${r.built ? ` in ${Date.now() - t} ms` : ''}\n`);
  } else if (cmd === 'status') {
    const hash = sourceHash();
    const ok = existsSync(join(distDir(hash), 'src', 'cli', 'main.js'));
    process.stdout.write(`${ok ? 'current' : 'stale'} dist/${hash}\n`);
    process.exitCode = ok ? 0 : 1;
  } else {
    process.stderr.write('usage: node bin/dist.mjs build|status\n');
    process.exitCode = 2;
  }
}
