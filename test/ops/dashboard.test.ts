/**
 * The Grafana dashboard is valid JSON with the panels an operator needs, and every metric its queries
 * (and the alert rules) read exists: defined in src/, a prom-client default metric, or `up`. A renamed
 * or never-landed metric makes this fail instead of leaving an empty panel or a silent alert.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { metricNamesIn, metricOrigin } from './promql.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  targets?: { expr: string; refId: string }[];
  gridPos: { h: number; w: number; x: number; y: number };
}

const ops = join(import.meta.dirname, '../../ops');
const dash = JSON.parse(readFileSync(join(ops, 'grafana/quantum-p3.json'), 'utf8')) as { uid: string; title: string; panels: Panel[] };
const queryPanels = dash.panels.filter((p) => p.type !== 'row');

describe('grafana dashboard', () => {
  it('has a uid, unique panel ids, and a query in every non-row panel', () => {
    expect(dash.uid).toBe('quantum-p3');
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of queryPanels) {
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.expr.trim(), p.title).not.toBe('');
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it('covers holds, drift by reason, diff, closes and outcomes, permits, apply latency, rate-limit back-off', () => {
    const exprs = queryPanels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)).join('\n');
    for (const m of [
      'p34_reconcile_hold_active',
      'p34_reconcile_drift_total',
      'p34_reconcile_diff_amt',
      'p34_reconcile_close_published_total',
      'reconcile_close_executed_total',
      'reconcile_close_guardrail_fail_total',
      'p33_permit_decisions_total',
      'governor_decisions_total',
      'apply_order_latency_seconds_bucket',
      'status="rate_limit"',
    ]) {
      expect(exprs).toContain(m);
    }
  });

  it('the metric-name extraction sees through functions, matchers, ranges and grouping', () => {
    expect(metricNamesIn('histogram_quantile(0.95, sum by (le) (rate(apply_order_latency_seconds_bucket{job=~"a.*"}[5m])))')).toEqual([
      'apply_order_latency_seconds_bucket',
    ]);
    expect(metricNamesIn('sum(rate(a_total{status!="success"}[5m])) / sum(rate(b_total[5m])) > 0.1 or up == 0').sort()).toEqual(['a_total', 'b_total', 'up']);
    expect(metricOrigin('no_such_metric_p3_xyz')).toBeNull();
    expect(metricOrigin('process_start_time_seconds')).toBe('prom-client');
  });

  it('every dashboard query reads metrics that exist', () => {
    const missing: string[] = [];
    for (const p of queryPanels)
      for (const t of p.targets ?? []) for (const m of metricNamesIn(t.expr)) if (!metricOrigin(m)) missing.push(`${p.title}: ${m}`);
    expect(missing).toEqual([]);
  });

  it('every alert rule reads metrics that exist', () => {
    const rules = readFileSync(join(ops, 'prometheus/alerts.yml'), 'utf8');
    const exprs: string[] = [];
    // `expr: one line` or `expr: |` followed by an indented block.
    const lines = rules.split('\n');
    lines.forEach((l, i) => {
      const m = /^(\s*)expr:\s*(.*)$/.exec(l);
      if (!m) return;
      if (m[2] !== '|') return void exprs.push(m[2] as string);
      const block: string[] = [];
      for (let j = i + 1; j < lines.length && (lines[j] as string).startsWith(`${m[1]}  `); j++) block.push(lines[j] as string);
      exprs.push(block.join('\n'));
    });
    expect(exprs.length).toBeGreaterThanOrEqual(10);
    const missing = exprs.flatMap((e) => metricNamesIn(e).filter((n) => !metricOrigin(n)));
    expect([...new Set(missing)]).toEqual([]);
  });
});
