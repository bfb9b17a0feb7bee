/**
 * Smoke test of `npm run bench`: the quick mode runs every measurement end to end (private Redis,
 * paper exchange, services as child processes) and writes results.json in the shape. No timing
 * assertions: the figures of a quick run mean nothing (and the machine is shared).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBench } from '../../bench/run.js';

const dir = mkdtempSync(join(tmpdir(), 'p3-bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const stat = (extra: string[] = []) => expect.objectContaining(Object.fromEntries(['n', 'p50', 'p99', ...extra].map((k) => [k, expect.any(Number)])));

describe('npm run bench -- --quick', () => {
  it('measures everything once and writes results.json in the documented shape', async () => {
    const out = join(dir, 'results.json');
    const lines: string[] = [];
    const returned = await runBench({ quick: true, out, print: (l) => lines.push(l) });
    const r = JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>;
    expect(r).toEqual(JSON.parse(JSON.stringify(returned)));
    expect(Object.keys(r).sort()).toEqual(
      ['cli_help_ms', 'detection_ms', 'heal_after_snapshot_ms', 'heal_ms', 'machine', 'permit_chain_ms', 'plans_per_s', 'raw_stream_roundtrip_ms', 'rss_mb', 'sweep', 'stream_detect_ms', 'stream_heal_ms', 'rest_detect_ms', 'rest_heal_ms', 'stream_snapshot_ms', 'rest_snapshot_ms'].sort(),
    );
    expect(r.machine).toEqual(expect.objectContaining({ nproc: expect.any(Number), cpu_model: expect.any(String), node: process.version, redis: expect.stringMatching(/^\d+\.\d+/), mode: 'quick' }));
    expect(r.detection_ms).toEqual(stat(['max']));
    expect(r.heal_ms).toEqual(stat(['max', 'snapshot_interval_ms']));
    expect(r.heal_after_snapshot_ms).toEqual(stat());
    expect(r.permit_chain_ms).toEqual(stat());
    for (const k of ['stream_detect_ms', 'stream_heal_ms', 'rest_detect_ms', 'rest_heal_ms']) expect((r[k] as { n: number }).n).toBe(2);
    expect(r.raw_stream_roundtrip_ms).toEqual(stat());
    // every sample was taken (quick counts: 20 drifts, 4 heals, 10 plans, 50 raw round trips)
    expect((r.detection_ms as { n: number }).n).toBe(20);
    expect((r.heal_ms as { n: number }).n).toBe(4);
    expect((r.permit_chain_ms as { n: number }).n).toBe(10);
    expect((r.raw_stream_roundtrip_ms as { n: number }).n).toBe(50);
    const sweep = r.sweep as Array<Record<string, number>>;
    expect(sweep.map((s) => s.symbols)).toEqual([100, 1000]);
    for (const s of sweep) expect(s).toEqual({ symbols: expect.any(Number), engine_ms: expect.any(Number), raw_ms: expect.any(Number), ratio: expect.any(Number) });
    expect(r.plans_per_s).toEqual(expect.any(Number));
    expect(r.cli_help_ms).toEqual({ n: 3, p50: expect.any(Number) });
    expect(Object.keys(r.rss_mb as object).sort()).toEqual(['apply-layer', 'governor', 'position-state-brain', 'reconcile-engine']);
    for (const v of Object.values(r.rss_mb as Record<string, number>)) expect(v).toBeGreaterThan(0);
    expect(lines.join('\n')).toContain('1 detection: snapshot written -> HOLD set');
  }, 300_000);
});
