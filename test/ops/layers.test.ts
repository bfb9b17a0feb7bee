/**
 * The layout is a one-way staircase. Every import of every module under src/ (static `import ... from`,
 * `export ... from`, `import '...'`, dynamic `import('...')` and `typeof import('...')` with a literal
 * specifier, read with the TypeScript parser, so comments and strings never count) is checked:
 * - no import cycle among the modules of src/ (type-only imports count too: a cycle of types is still two
 *   modules that cannot be understood one without the other);
 * - no module of src/ imports harness/, bench/ or test/ (production code stands without the harness);
 * - no module imports a folder of a higher layer than its own ({@link LAYERS}; folders of one layer may
 *   import each other, the cycle check keeps that one-way).
 * docs/architecture.md#layout describes the layers.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../..');
const SRC = join(root, 'src');

/**
 * The layers of src/, lowest first (the table of docs/architecture.md#layout): a module may import its own
 * layer and the layers below it, never one above. The key is the first folder under src/.
 * - lib: helpers without project knowledge (a mutex, sleep, the repository root);
 * - domain: pure rules, no I/O;
 * - ports: the interfaces the domain needs from the outside world (the exchange);
 * - config: environment parsing (zod, the log levels), error types, the Redis target;
 * - adapters: Redis, the exchange, logging, metrics: the I/O behind the ports;
 * - plans, acl, host, read-model: what services and operators share over the adapters (submitting and
 *   reading plans and permits; the Redis ACL users; the process host that runs services; what operators
 *   read; the strategy client, the package's public API, over the plans). One layer: the read model reads the
 *   heartbeats the host writes, acl names the services, the client builds plans with plans/;
 * - services: the four long-running services (they run on the host; src/services/index.ts, which builds them
 *   by name, is here because it imports each service);
 * - console: the operator console (a web server over the read model and the services' operator actions);
 * - cli: the `p3` commands, the top of production code.
 * harness/, bench/, test/ and bin/ stand above all of these; only that src/ never imports them is checked here.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['lib'],
  ['domain'],
  ['ports'],
  ['config'],
  ['adapters'],
  ['plans', 'acl', 'host', 'read-model', 'client'],
  ['services'],
  ['console'],
  ['cli'],
];

const layerOf = new Map<string, number>(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i] as const)));

/** Every import specifier of a module's text: static, re-export, side-effect, dynamic and `typeof import()` with a literal. */
export function importSpecifiers(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, fileName.endsWith('.js') ? ts.ScriptKind.JS : ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && (ts.isStringLiteral(arg) || ts.isNoSubstitutionTemplateLiteral(arg))) out.push(arg.text);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      out.push(node.argument.literal.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if ((p.endsWith('.ts') && !p.endsWith('.d.ts')) || p.endsWith('.js')) out.push(p);
  }
  return out;
}

/** The file a relative specifier names (`./x.js` is the source `./x.ts`), or null when none exists. */
function resolveSpecifier(from: string, spec: string): string | null {
  const base = resolve(dirname(from), spec);
  const candidates = spec.endsWith('.js') ? [base, `${base.slice(0, -3)}.ts`] : [base, `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => existsSync(c) && statSync(c).isFile()) ?? null;
}

/** One import of a module of src/: the importing file and the imported one (root-relative, `/`-separated). */
interface Edge {
  from: string;
  to: string;
}

const rel = (p: string) => relative(root, p).split('\\').join('/');
const files = walk(SRC, []);
const edges: Edge[] = [];
const unresolved: string[] = [];
for (const file of files) {
  for (const spec of importSpecifiers(file, readFileSync(file, 'utf8'))) {
    if (!spec.startsWith('.')) continue; // a package or node: builtin
    const target = resolveSpecifier(file, spec);
    if (target === null) unresolved.push(`${rel(file)}: ${spec}`);
    else edges.push({ from: rel(file), to: rel(target) });
  }
}

/** The first folder under src/ of a root-relative path, null outside src/. */
const topFolder = (p: string): string | null => (p.startsWith('src/') ? (p.split('/')[1] ?? null) : null);

/** The import cycles of a graph (strongly connected components of more than one module, or a module importing itself). */
export function cyclesOf(graph: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of graph) next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let counter = 0;
  const connect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (next.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of new Set(graph.flatMap((e) => [e.from, e.to]))) if (!index.has(v)) connect(v);
  return out;
}

describe('the import parser', () => {
  it('sees static, re-export, side-effect, dynamic and type imports, and nothing in comments or strings', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from './b.js';",
      "export { c } from './c.js';",
      "import './d.js';",
      "const e = await import('./e.js');",
      'const f: typeof import(\'./f.js\').f = g;',
      "// import { x } from './comment.js';",
      "/* await import('./block.js') */",
      "const s = \"import('./string.js')\";",
    ].join('\n');
    expect(importSpecifiers('x.ts', text)).toEqual(['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js']);
  });

  it('finds cycles, and only cycles', () => {
    expect(cyclesOf([{ from: 'a', to: 'b' }, { from: 'b', to: 'c' }, { from: 'c', to: 'a' }, { from: 'c', to: 'd' }])).toEqual([['a', 'b', 'c']]);
    expect(cyclesOf([{ from: 'a', to: 'b' }, { from: 'a', to: 'c' }, { from: 'b', to: 'c' }])).toEqual([]);
  });

  it('reads the imports of src/ (every relative import resolves to a file)', () => {
    expect(unresolved).toEqual([]);
    expect(files.length).toBeGreaterThan(100);
    // the service catalogue loads each service with a dynamic import: those edges must be seen
    expect(edges.some((e) => e.to === 'src/services/governor/index.ts' && e.from.startsWith('src/services/') && !e.from.startsWith('src/services/governor/'))).toBe(true);
  });
});

describe('layers of src/', () => {
  it('every folder of src/ has a layer', () => {
    const folders = readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isDirectory());
    expect(folders.filter((f) => !layerOf.has(f))).toEqual([]);
    expect(readdirSync(SRC).filter((f) => statSync(join(SRC, f)).isFile())).toEqual([]);
  });

  it('no import cycle among the modules of src/', () => {
    expect(cyclesOf(edges.filter((e) => e.to.startsWith('src/')))).toEqual([]);
  });

  it('no module of src/ imports harness/, bench/ or test/', () => {
    const out = edges.filter((e) => !e.to.startsWith('src/')).map((e) => `${e.from} -> ${e.to}`);
    expect(out).toEqual([]);
  });

  it('no module imports a higher layer than its own', () => {
    const up: string[] = [];
    for (const e of edges) {
      const [a, b] = [topFolder(e.from), topFolder(e.to)];
      if (a === null || b === null) continue;
      const [la, lb] = [layerOf.get(a), layerOf.get(b)];
      if (la === undefined || lb === undefined) continue; // reported by 'every folder of src/ has a layer'
      if (lb > la) up.push(`${e.from} (${a}) -> ${e.to} (${b})`);
    }
    expect(up).toEqual([]);
  });
});
