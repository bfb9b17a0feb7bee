/**
 * The repository stands on its own: no file under src/, harness/, test/, ops/, bench/, docs/ or README.md cites a
 * document that is not in the repository (the old design contract's section numbers, issue numbers), and
 * every link to `docs/<file>.md#<anchor>` names a file that exists and a heading it has (anchors computed
 * as GitHub does). Incident numbers ("seed 000") are explained in docs/incidents.md.
 *
 * The patterns are built from pieces so this file does not match its own checks.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const SCANNED = ['src', 'harness', 'test', 'ops', 'bench', 'docs', 'README.md'];
const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', 'build']);
const BINARY = /\.(png|jpe?g|gif|ico|pdf|gz|zip|rdb|aof)$/i;

function walk(path: string, out: string[]): void {
  if (!existsSync(path)) return;
  const st = statSync(path);
  if (st.isDirectory()) {
    for (const name of readdirSync(path)) if (!SKIP_DIRS.has(name)) walk(join(path, name), out);
  } else if (st.isFile() && !BINARY.test(path)) {
    out.push(path);
  }
}

const files: { rel: string; text: string }[] = [];
for (const p of SCANNED) {
  const list: string[] = [];
  walk(join(root, p), list);
  for (const f of list) {
    const text = readFileSync(f, 'utf8');
    if (!text.includes('\u0000')) files.push({ rel: relative(root, f), text });
  }
}

/** GitHub-style anchor of a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces to hyphens. */
const anchorOf = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');

/** Anchors of a markdown text's headings (outside fenced code), with GitHub's `-1`, `-2` suffixes for repeats. */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const m = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = anchorOf(m[1] as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

const anchorCache = new Map<string, Set<string>>();
function anchorsOfFile(abs: string): Set<string> {
  let a = anchorCache.get(abs);
  if (!a) {
    a = anchorsOf(readFileSync(abs, 'utf8'));
    anchorCache.set(abs, a);
  }
  return a;
}

/** Lines of `text` matching `re`, as `file:line: text`. */
function hits(re: RegExp): string[] {
  const out: string[] = [];
  for (const { rel, text } of files) {
    text.split('\n').forEach((line, i) => {
      if (re.test(line)) out.push(`${rel}:${i + 1}: ${line.trim().slice(0, 160)}`);
    });
  }
  return out;
}

describe('references resolve inside the repository', () => {
  it('scans the files it should', () => {
    expect(files.some((f) => f.rel === 'README.md')).toBe(true);
    expect(files.some((f) => f.rel === join('docs', 'architecture.md'))).toBe(true);
    expect(files.length).toBeGreaterThan(100);
  });

  it("cites no section of the outside design contract", () => {
    const design = new RegExp(['DES', 'IGN'].join('') + '\\s*' + '\u00a7');
    expect(hits(design)).toEqual([]);
  });

  it('cites no issue by number', () => {
    // a number after the word, alone, plural or hyphenated, in any case; a named outside project's "#NNNN" is allowed.
    const issue = new RegExp('\\b' + 'iss' + 'ues?' + '[ -]+\\d', 'i');
    expect(hits(issue)).toEqual([]);
  });

  it('every incident number named has its section in docs/incidents.md', () => {
    const incidents = readFileSync(join(root, 'docs/incidents.md'), 'utf8');
    const headed = new Set([...incidents.matchAll(/^## .*\(seed (\d{3})\)\s*$/gm)].map((m) => m[1] as string));
    const named = new Set<string>();
    // Incident reports are 000-099; the chaos runs' random seeds (101, 102, 104, 2026 ...) are not incidents.
    const seed = new RegExp('\\b' + 'seed' + 's? (0\\d\\d)\\b', 'gi');
    for (const { text } of files) for (const m of text.matchAll(seed)) named.add(m[1] as string);
    expect(named.size).toBeGreaterThan(0);
    expect([...named].filter((n) => !headed.has(n))).toEqual([]);
  });

  it('every docs/<file>.md link names an existing file and heading', () => {
    const broken: string[] = [];
    // docs/<file>.md#<anchor> anywhere (code comments, YAML, JSON, markdown)
    const absolute = new RegExp('(?<![\\w/.-])' + 'docs' + '/([\\w.-]+\\.md)(?:#([\\w-]+))?', 'g');
    // relative markdown links inside markdown files: ](x.md#anchor), ](../README.md#anchor), ](#anchor)
    const mdLink = /\]\(((?:[\w./-]+\.md)?)(?:#([\w-]+))?\)/g;
    for (const { rel, text } of files) {
      for (const m of text.matchAll(absolute)) {
        const target = join(root, 'docs', m[1] as string);
        if (!existsSync(target)) broken.push(`${rel}: docs/${m[1]} does not exist`);
        else if (m[2] && !anchorsOfFile(target).has(m[2])) broken.push(`${rel}: docs/${m[1]}#${m[2]} has no such heading`);
      }
      if (!rel.endsWith('.md')) continue;
      for (const m of text.matchAll(mdLink)) {
        const file = m[1] as string;
        const anchor = m[2];
        if (!file && !anchor) continue;
        const target = file ? resolve(dirname(join(root, rel)), file) : join(root, rel);
        if (!existsSync(target)) broken.push(`${rel}: ${file} does not exist`);
        else if (anchor && !anchorsOfFile(target).has(anchor)) broken.push(`${rel}: ${file}#${anchor} has no such heading`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('computes anchors as GitHub does', () => {
    expect(anchorOf('RECONCILE_CLOSE invariants')).toBe('reconcile_close-invariants');
    expect(anchorOf('Legacy ledger against a long position (seed 000)')).toBe('legacy-ledger-against-a-long-position-seed-000');
    expect(anchorOf('Sentinel failover (`--sentinel`)')).toBe('sentinel-failover---sentinel');
    expect([...anchorsOf('# A\n```\n# not a heading\n```\n## A\n')]).toEqual(['a', 'a-1']);
  });
});
