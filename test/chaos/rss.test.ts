/**
 * The memory check of `p3 chaos` (harness/chaos/rss.ts): RSS is read from /proc for a live process and not for a
 * gone one; growth is judged per process from its first sample at minute 5 to its last, a restarted process (new
 * pid) starts a new series, and a process that never lived 5 minutes is not judged.
 */
import { describe, expect, it } from 'vitest';
import { judgeRss, readRssMb, RSS_BASELINE_MS, RSS_MAX_GROWTH, type RssSample } from '../../harness/chaos/rss.js';

const MIN = 60_000;
const series = (pid: number, from: number, mbs: number[]): RssSample[] => mbs.map((rss_mb, i) => ({ at_ms: from + i * MIN, pid, rss_mb }));

describe('RSS of chaos services', () => {
  it('reads the RSS of a live process, null for none', () => {
    const mb = readRssMb(process.pid);
    expect(mb).not.toBeNull();
    expect(mb as number).toBeGreaterThan(5);
    expect(readRssMb(0)).toBeNull();
    expect(readRssMb(2 ** 22 + 12345)).toBeNull();
  });

  it('judges growth from minute 5 of a process to its end (20 % bound), ignoring the warm-up', () => {
    expect(RSS_BASELINE_MS).toBe(5 * MIN);
    expect(RSS_MAX_GROWTH).toBe(0.2);
    // warm-up from 50 to 100 MB, then flat: no growth
    const flat = judgeRss('apply-1', series(10, 0, [50, 70, 90, 95, 100, 100, 101, 102, 100, 103]));
    expect(flat.growth).toBe(0.03);
    expect(flat.baseline?.at_ms).toBe(5 * MIN);
    // a leak: +4 MB a minute after the warm-up
    const leak = judgeRss('governor-1', series(11, 0, [80, 90, 100, 100, 100, 100, 104, 108, 112, 116, 120, 124, 128]));
    expect(leak.growth as number).toBeGreaterThan(RSS_MAX_GROWTH);
  });

  it('a restarted process starts a new series; one that never lived 5 minutes is not judged', () => {
    const restarted = judgeRss('brain-1', [...series(20, 0, [100, 150, 200]), ...series(21, 3 * MIN, [60, 70, 80, 80, 80, 80, 81, 82])]);
    expect(restarted.end?.pid).toBe(21);
    expect(restarted.growth).toBe(0.025);
    expect(judgeRss('engine-1', series(30, 0, [50, 100, 200, 400])).growth).toBeNull();
    expect(judgeRss('engine-2', []).growth).toBeNull();
  });
});
