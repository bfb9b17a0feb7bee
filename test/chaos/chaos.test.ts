/**
 * `p3 chaos` end to end (docs/architecture.md#faults-the-system-survives): the real command, every service as its own OS process
 * (two apply layers, two engines, a governor, a brain), a durable private Redis killed and restarted from
 * its AOF, every fault kind, seed 1. Asserts exit 0 and the JSON report's shape: faults injected, plans and
 * orders counted, every invariant at 0 violations, convergence within the bound.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_CHAOS_FAULTS } from '../../harness/chaos/options.js';
import { INVARIANTS } from '../../harness/chaos/invariants.js';
import type { ChaosReport } from '../../harness/chaos/report.js';
import { Decimal } from '../../src/domain/decimal.js';

const BIN = fileURLToPath(new URL('../../bin/p3.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'p3-chaos-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the CLI; resolves with its exit code and output. */
function p3(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(REDIS_URL|P3_|P33_|P34_|APPLY_|GOVERNOR_|EXCHANGE)/.test(k)) env[k] = v;
    const c = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGINT'), timeoutMs);
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('p3 chaos', () => {
  it('seed 1, every default fault kind: exit 0, no violation, converged, report shape', async () => {
    const out = join(dir, 'report.json');
    const r = await p3(['chaos', '--seconds', '45', '--seed', '1', '--out', out], 170_000);
    const report = JSON.parse(readFileSync(out, 'utf8')) as ChaosReport;
    if (r.code !== 0) console.error(r.stdout, r.stderr);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^chaos PASS seed=1 seconds=45 \| faults: /m);

    expect(report.schema).toBe(1);
    expect(report.ok).toBe(true);
    expect(report.seed).toBe(1);
    expect(Object.keys(report.faults).sort()).toEqual([...DEFAULT_CHAOS_FAULTS].sort());
    expect(Object.values(report.faults).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(15);
    expect(report.fault_log.length).toBe(Object.values(report.faults).reduce((a, b) => a + b, 0));
    expect(Object.keys(report.violations).sort()).toEqual([...INVARIANTS].sort());
    for (const n of Object.values(report.violations)) expect(n).toBe(0);
    expect(report.evidence).toEqual([]);
    expect(report.plans.submitted).toBeGreaterThan(10);
    expect(report.orders.api).toBeGreaterThan(5);
    expect(report.convergence.max_ms).not.toBeNull();
    expect(report.convergence.max_ms as number).toBeLessThanOrEqual(report.convergence.bound_ms);
    for (const s of report.convergence.symbols) {
      expect(s.converged).toBe(true);
      expect(s.hold).toBe(false);
      // "match" as docs/architecture.md#quantities defines it: within one lot step (0.001 on every paper symbol)
      expect(new Decimal(s.exchange_amt).minus(s.ledger_amt).abs().lte('0.001')).toBe(true);
    }
    expect(report.services.unexpected_deaths).toEqual([]);
    for (const code of Object.values(report.services.final_exit_codes)) expect(code).toBe(0);
  }, 200_000);

  it('a bad option is a usage error (exit 2) naming it', async () => {
    const r = await p3(['chaos', '--faults', 'kill_service,meteor'], 60_000);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--faults.*meteor/);
  }, 70_000);
});
