/**
 * The alert rules are valid (`promtool check rules`), the example scrape configuration is valid
 * (`promtool check config`), every unit test in alerts.test.yml passes (`promtool test rules`), and
 * every alert has both a case where it fires and a case where it must stay silent.
 * promtool comes from Debian's `prometheus` package (.ci/run installs it); without it the file is skipped
 * outside CI and fails in CI.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const dir = join(import.meta.dirname, '../../ops/prometheus');
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;

function promtool(...args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: dir, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('promtool available', () => {
  it.runIf(process.env.CI)('is installed in CI', () => {
    expect(hasPromtool).toBe(true);
  });
});

describe.skipIf(!hasPromtool)('prometheus rules (promtool)', () => {
  const rules = readFileSync(join(dir, 'alerts.yml'), 'utf8');
  const tests = readFileSync(join(dir, 'alerts.test.yml'), 'utf8');
  const alertNames = [...rules.matchAll(/^\s*- alert: (\w+)\s*$/gm)].map((m) => m[1] as string);

  it('check rules', () => {
    const r = promtool('check', 'rules', 'alerts.yml');
    expect(r.out).toContain(`SUCCESS: ${alertNames.length} rules found`);
    expect(r.status).toBe(0);
  });

  it('check config (prometheus.yml with alerts.yml)', () => {
    const r = promtool('check', 'config', 'prometheus.yml');
    expect(r.status, r.out).toBe(0);
  });

  it('test rules: every unit test passes', () => {
    const r = promtool('test', 'rules', 'alerts.test.yml');
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain('SUCCESS');
  });

  it('every alert has a firing case and a silent case', () => {
    expect(alertNames.length).toBeGreaterThanOrEqual(10);
    for (const name of alertNames) {
      const firing = new RegExp(`alertname: ${name}\\n\\s*exp_alerts:\\n\\s*- exp_labels:`);
      const silent = new RegExp(`alertname: ${name}\\n\\s*exp_alerts: \\[\\]`);
      expect(tests, `${name} has no firing case`).toMatch(firing);
      expect(tests, `${name} has no silent case`).toMatch(silent);
    }
  });

  it('contains the seeds’ alerts and the on-call additions', () => {
    for (const a of ['P34HoldActive', 'P34RepeatedDrift', 'ReconcileCloseHighFailureRate', 'ReconcileCloseGuardrailViolation', 'ReconcileHoldStuck', 'QuantumServiceDown', 'P33SnapshotStale', 'DeadLetterGrowing', 'ExchangeRateLimited', 'GovernorCircuitBreakerTripped']) {
      expect(alertNames).toContain(a);
    }
  });
});
