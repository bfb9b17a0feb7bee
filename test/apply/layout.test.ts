/**
 * The apply layer's layout is a one-way staircase (src/services/apply-layer/index.ts, "Layout"): intake →
 * claim → send → record → results over a base (deps, store, executor, config, metrics ...). Read from the
 * source files' import statements: every module imports only from a lower step or the base, the three
 * handlers never import one another, and the import graph has no cycle.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '../../src/services/apply-layer');

/** Step of a module (path relative to the apply layer): higher imports lower, never the other way. */
function stepOf(rel: string): number {
  if (rel === 'index.ts') return 6;
  if (rel.startsWith('intake/')) return 5;
  if (rel.startsWith('claim/')) return 4;
  if (rel.startsWith('send/')) return 3;
  if (rel.startsWith('record/')) return 2;
  if (rel === 'results.ts') return 1;
  return 0; // the base
}

function walk(dir: string, out: string[]): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Modules of the apply layer each module imports (static, type-only and dynamic imports, re-exports). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of walk(root, [])) {
    const text = readFileSync(file, 'utf8');
    const targets: string[] = [];
    for (const m of text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'(\.{1,2}\/[^']+)'/gm)) {
      const abs = resolve(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'));
      const rel = relative(root, abs);
      if (!rel.startsWith('..')) targets.push(rel);
    }
    graph.set(relative(root, file), targets);
  }
  return graph;
}

describe('apply layer layout', () => {
  const graph = importGraph();

  it('reads the modules it should', () => {
    for (const m of ['index.ts', 'store.ts', 'results.ts', 'intake/plan-handler.ts', 'claim/claim.ts', 'send/send.ts', 'record/record.ts']) expect(graph.has(m), m).toBe(true);
    expect(graph.get('intake/plan-handler.ts')).toContain('claim/claim.ts');
  });

  it('every import goes down the staircase or into the base', () => {
    const upward: string[] = [];
    for (const [from, targets] of graph) {
      for (const to of targets) {
        const ok = stepOf(to) < stepOf(from) || (stepOf(to) === stepOf(from) && stepOf(from) !== 5 && stepOf(from) !== 6);
        if (!ok) upward.push(`${from} -> ${to}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it('the import graph has no cycle', () => {
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (m: string, path: string[]): void => {
      if (state.get(m) === 'done') return;
      if (state.get(m) === 'open') {
        cycles.push([...path.slice(path.indexOf(m)), m].join(' -> '));
        return;
      }
      state.set(m, 'open');
      for (const t of graph.get(m) ?? []) visit(t, [...path, m]);
      state.set(m, 'done');
    };
    for (const m of graph.keys()) visit(m, []);
    expect(cycles).toEqual([]);
  });
});
