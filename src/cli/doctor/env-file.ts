/** systemd EnvironmentFile parsing for `p3 doctor --env-dir` (no dependencies). */
import type { Env } from '../../config/env.js';

/** Parses an env file (`KEY=VALUE` lines, `#` comments, optional quotes), as systemd's EnvironmentFile. */
export function parseEnvFile(text: string): Env {
  const env: Env = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let v = m[2] as string;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    env[m[1] as string] = v;
  }
  return env;
}
