/**
 * The demo's services run inside the demo process with generated keys, so an operator's shell knows
 * none of them: `p3 flatten` has no `P3_KEY_OPERATOR`, and `p3 doctor` checks the shell's (empty)
 * environment. The demo therefore writes what its services were given as env files, one per service
 * plus `operator.env` (what `p3 status`/`p3 flatten` need), in a private folder (0700, files 0600: they
 * hold keys) removed when the demo stops; `p3 doctor --env-dir <folder>` then checks the demo itself.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_NAMES } from '../../src/host/service-names.js';

/** What {@link writeDemoEnvDir} wrote. */
export interface DemoEnvDir {
  /** The folder (`p3 doctor --env-dir <dir>`). */
  dir: string;
  /** The variables an operator's shell needs: `REDIS_URL`, `P3_ALLOWLIST`, `P3_KEY_OPERATOR`. */
  operatorEnv: Record<string, string>;
  /** Removes the folder. Never throws. */
  remove(): void;
}

const render = (env: Record<string, string>): string => `${Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n')}\n`;

/**
 * Writes `<service>.env` for every service (all get `serviceEnv`, as in the demo process) and `operator.env`.
 * @param serviceEnv the environment the demo's services run with (must hold `REDIS_URL`, `P3_ALLOWLIST`, `P3_KEY_OPERATOR`)
 * @throws Error when the folder cannot be written
 */
export function writeDemoEnvDir(serviceEnv: Record<string, string>): DemoEnvDir {
  const dir = mkdtempSync(join(tmpdir(), 'p3-demo-env-'));
  const operatorEnv = { REDIS_URL: serviceEnv.REDIS_URL ?? '', P3_ALLOWLIST: serviceEnv.P3_ALLOWLIST ?? '', P3_KEY_OPERATOR: serviceEnv.P3_KEY_OPERATOR ?? '' };
  for (const s of SERVICE_NAMES) writeFileSync(join(dir, `${s}.env`), render(serviceEnv), { mode: 0o600 });
  writeFileSync(join(dir, 'operator.env'), render(operatorEnv), { mode: 0o600 });
  return { dir, operatorEnv, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The lines the demo prints so that an operator can try `p3 status`, `p3 flatten` and `p3 doctor` on it. */
export function operatorLines(d: DemoEnvDir): string[] {
  const exports = Object.entries(d.operatorEnv).map(([k, v]) => `${k}=${v}`).join(' ');
  return [
    'Operator shell for this demo (p3 status, p3 hold, p3 flatten need these):',
    `  export ${exports}`,
    `  (or: set -a; . ${join(d.dir, 'operator.env')}; set +a)`,
    `  npx p3 flatten BTCUSDT --reason "trying the kill switch"`,
    `  npx p3 doctor --env-dir ${d.dir}   # checks the demo's services as they were configured`,
  ];
}
