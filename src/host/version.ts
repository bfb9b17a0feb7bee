/** The version every service reports in its heartbeat (`p3 status`, `p3 doctor`). */
import { readFileSync } from 'node:fs';
import { fromRoot } from '../lib/root.js';

/** The package version (`package.json`), or `unknown` when it cannot be read. */
export const P3_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(fromRoot('package.json'), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
})();
