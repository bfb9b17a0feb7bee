/**
 * Helpers for the ops tests: the metric names a PromQL expression reads, and whether a metric name exists
 * (defined in src/, a prom-client default metric, or Prometheus' own `up`).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '../..');

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * Metric names read by a PromQL expression: strings, label matchers `{...}`, ranges `[...]`, grouping
 * clauses `by (...)` and function names are removed; what remains as identifiers are metric names.
 * Histogram series suffixes (`_bucket`, `_sum`, `_count`) are kept as written.
 */
export function metricNamesIn(expr: string): string[] {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  e = e.replace(/\{[^}]*\}/g, ' ').replace(/\[[^\]]*\]/g, ' ');
  e = e.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const out = new Set<string>();
  for (const m of e.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const name = m[1] as string;
    if (m[2]) continue; // function call
    if (KEYWORDS.has(name.toLowerCase())) continue;
    if (/^\d/.test(name)) continue;
    out.add(name);
  }
  return [...out];
}

function listFiles(dir: string, ext: RegExp): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...listFiles(p, ext));
    else if (ext.test(n)) out.push(p);
  }
  return out;
}

let srcText: string | null = null;
let promDefaults: Set<string> | null = null;

/** Names of prom-client's default metrics (collectDefaultMetrics), from the installed package. */
export function promClientDefaultMetricNames(): Set<string> {
  if (!promDefaults) {
    promDefaults = new Set();
    for (const f of listFiles(join(root, 'node_modules/prom-client/lib/metrics'), /\.js$/)) {
      for (const m of readFileSync(f, 'utf8').matchAll(/'((?:process|nodejs)_[a-z0-9_]+)'/g)) promDefaults.add(m[1] as string);
    }
  }
  return promDefaults;
}

/**
 * Where a metric name comes from: `src` (the name occurs as a whole word in src/**.ts), `prom-client`
 * (a default metric), `prometheus` (`up`), or null when nothing defines it. Histogram suffixes are
 * stripped before the search.
 */
export function metricOrigin(name: string): 'src' | 'prom-client' | 'prometheus' | null {
  if (name === 'up') return 'prometheus';
  const base = name.replace(/_(bucket|sum|count)$/, '');
  if (promClientDefaultMetricNames().has(name) || promClientDefaultMetricNames().has(base)) return 'prom-client';
  srcText ??= listFiles(join(root, 'src'), /\.ts$/)
    .map((f) => readFileSync(f, 'utf8'))
    .join('\n');
  const re = (n: string) => new RegExp(`(^|[^A-Za-z0-9_])${n}([^A-Za-z0-9_]|$)`);
  return re(name).test(srcText) || re(base).test(srcText) ? 'src' : null;
}
