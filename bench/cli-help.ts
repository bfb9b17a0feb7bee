/**
 * Measurement 7, `p3 --help` (goal ≤ 0.3 s): wall time from spawning `node bin/p3.mjs --help` to
 * its exit, as an operator's shell sees it, `n` times in a row. It runs the compiled build when it is current
 * (`npm run bench` builds it first, `prebench`); `loader` says which ran.
 */
import { spawn } from 'node:child_process';
import { fromRoot } from '../src/lib/root.js';
import { now, percentile, r3 } from './lib/stats.js';

const BIN = fromRoot('bin/p3.mjs');

/** `cli_help_ms` of results.json. */
export interface CliHelpFigure {
  n: number;
  p50: number;
}

/** One `p3 --help`, ms. @throws Error when it exits non-zero */
async function once(): Promise<number> {
  const t = now();
  const code = await new Promise<number | null>((resolve, reject) => {
    const c = spawn(process.execPath, [BIN, '--help'], { stdio: 'ignore' });
    c.once('error', reject);
    c.once('exit', (status) => resolve(status));
  });
  if (code !== 0) throw new Error(`p3 --help exited ${code}`);
  return now() - t;
}

/** Runs `p3 --help` `n` times (after one unmeasured run that warms the file cache). */
export async function benchCliHelp(n: number): Promise<CliHelpFigure & { loader: 'dist' | 'tsx' }> {
  const { currentEntry } = (await import(fromRoot('bin/dist.mjs'))) as { currentEntry: () => string | null };
  await once();
  const samples: number[] = [];
  for (let i = 0; i < n; i++) samples.push(await once());
  return { n, p50: r3(percentile(samples, 50)), loader: currentEntry() ? 'dist' : 'tsx' };
}
