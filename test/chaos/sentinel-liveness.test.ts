/**
 * Failover liveness in CI (docs/architecture.md, "Failover liveness"): a short `p3 chaos --sentinel` run (a master,
 * two replicas, three sentinels; Sentinel failovers only: SENTINEL FAILOVER, kill -9 of the master, and a failover
 * while one replica is stopped and behind) must keep every invariant and converge within the bound after the last
 * failover: the governor and the brain keep deciding plans, the apply layers keep executing them, without a
 * restart. About 15 s of faults, 50-75 s of wall time on an idle machine; the bounds are the chaos command's own
 * (generous: 30 s to converge), nothing here is timed more tightly.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import type { ChaosReport } from '../../harness/chaos/report.js';

const BIN = fileURLToPath(new URL('../../bin/p3.mjs', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'p3-chaos-sentinel-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('p3 chaos --sentinel: failovers while trading, every invariant kept, converged within the bound', async () => {
  const out = join(dir, 'report.json');
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(REDIS_|P3_|P33_|P34_|APPLY_|GOVERNOR_|EXCHANGE)/.test(k)) env[k] = v;
  const args = ['chaos', '--sentinel', '--faults', 'sentinel_failover', '--seconds', '15', '--fault-gap-ms', '2000', '--seed', '25', '--out', out];
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => c.kill('SIGINT'), 170_000);
    c.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
  if (r.code !== 0) console.error(r.stdout, r.stderr);
  const report = JSON.parse(readFileSync(out, 'utf8')) as ChaosReport;
  expect(r.code).toBe(0);
  expect(report.ok).toBe(true);
  expect(report.redis.sentinel).toBe(true);
  expect(report.redis.failovers).toBeGreaterThanOrEqual(1);
  for (const n of Object.values(report.violations)) expect(n).toBe(0);
  expect(report.convergence.max_ms).not.toBeNull();
  expect(report.convergence.max_ms as number).toBeLessThanOrEqual(report.convergence.bound_ms);
  expect(report.lost_results).toEqual([]);
  // plans were decided and executed across the failovers (not every one SKIPPED permit_timeout)
  expect(report.orders.api).toBeGreaterThan(0);
  expect(report.plans.results.EXECUTED ?? 0).toBeGreaterThan(0);
  expect(report.services.unexpected_deaths).toEqual([]);
  expect(report.rss.series.length).toBe(6);
}, 180_000);
