/**
 * Memory of a chaos run's services: each service process's resident set size (RSS, `VmRSS` of
 * `/proc/<pid>/status`) sampled when the faults start, every {@link RSS_SAMPLE_MS} and at the end, and the
 * growth check over a soak (docs/reliability.md, "Memory").
 *
 * The bound: between the first sample taken at least {@link RSS_BASELINE_MS} after a process started (its warm-up:
 * JIT, pools, caches filled) and the last sample of the same process, RSS may grow at most {@link RSS_MAX_GROWTH}
 * (20 %). A process restarted by a fault starts a new series (its pid changes); a process that never lived
 * {@link RSS_BASELINE_MS} within the run is not judged (too short to tell a leak from a warm-up).
 * Invariants: sampling never throws (a process that just died is skipped); only processes of the run are read.
 */
import { readFileSync } from 'node:fs';

/** Gap between two samples, ms. */
export const RSS_SAMPLE_MS = 60_000;
/** Warm-up of a process before its RSS is a baseline, ms (minute 5). */
export const RSS_BASELINE_MS = 5 * 60_000;
/** Largest growth allowed from the baseline to the end (0.2 = 20 %). */
export const RSS_MAX_GROWTH = 0.2;

/** One sample of one process. */
export interface RssSample {
  /** ms since the run's faults started. */
  at_ms: number;
  pid: number;
  /** Resident set size, MiB (1 decimal). */
  rss_mb: number;
}

/** The series of one service instance, and its verdict. */
export interface RssSeries {
  instance: string;
  samples: RssSample[];
  /** Growth from the baseline to the end of the process judged, as a fraction (null: no process lived long enough). */
  growth: number | null;
  /** The samples compared (null when not judged). */
  baseline: RssSample | null;
  end: RssSample | null;
}

/** RSS of `pid` in MiB, or null when it cannot be read (gone, not Linux). */
export function readRssMb(pid: number): number | null {
  if (pid <= 0) return null;
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round((Number(m[1]) / 1024) * 10) / 10 : null;
  } catch {
    return null;
  }
}

/**
 * The growth verdict of one instance's samples (see the module comment): for each pid, baseline = its first
 * sample at least `baselineMs` after its first sample, end = its last; the pid with the largest growth is reported.
 */
export function judgeRss(instance: string, samples: RssSample[], baselineMs = RSS_BASELINE_MS): RssSeries {
  let worst: { growth: number; baseline: RssSample; end: RssSample } | null = null;
  for (const pid of new Set(samples.map((s) => s.pid))) {
    const mine = samples.filter((s) => s.pid === pid);
    const first = mine[0];
    if (!first) continue;
    const baseline = mine.find((s) => s.at_ms - first.at_ms >= baselineMs);
    const end = mine[mine.length - 1];
    if (!baseline || !end || end === baseline || baseline.rss_mb <= 0) continue;
    const growth = (end.rss_mb - baseline.rss_mb) / baseline.rss_mb;
    if (!worst || growth > worst.growth) worst = { growth, baseline, end };
  }
  return { instance, samples, growth: worst ? Math.round(worst.growth * 1000) / 1000 : null, baseline: worst?.baseline ?? null, end: worst?.end ?? null };
}

/** Samples the RSS of a set of processes (`pids()`: instance → pid, 0 when not running). */
export class RssSampler {
  private readonly samples = new Map<string, RssSample[]>();
  private timer: NodeJS.Timeout | null = null;
  private readonly t0 = Date.now();

  constructor(
    private readonly pids: () => Array<{ instance: string; pid: number }>,
    private readonly onSample?: (atMs: number, row: Array<{ instance: string; rss_mb: number | null }>) => void,
  ) {}

  /** Takes one sample of every process now. */
  sample(): void {
    const at = Date.now() - this.t0;
    const row: Array<{ instance: string; rss_mb: number | null }> = [];
    for (const { instance, pid } of this.pids()) {
      const rss = readRssMb(pid);
      row.push({ instance, rss_mb: rss });
      if (rss === null) continue;
      const list = this.samples.get(instance) ?? [];
      list.push({ at_ms: at, pid, rss_mb: rss });
      this.samples.set(instance, list);
    }
    this.onSample?.(at, row);
  }

  /** A sample now, then every `everyMs`. */
  start(everyMs = RSS_SAMPLE_MS): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  /** The last sample, and the series with their verdicts. */
  finish(baselineMs = RSS_BASELINE_MS): RssSeries[] {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.sample();
    return [...this.samples.entries()].map(([instance, s]) => judgeRss(instance, s, baselineMs));
  }
}
