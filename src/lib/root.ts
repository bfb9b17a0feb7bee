/**
 * The project root (the folder of package.json), the same whether this code runs from src/ (tsx, vitest) or
 * compiled from dist/<hash>/src/ (bin/dist.mjs): files that are not TypeScript — the Lua scripts, the
 * console's page, package.json, bin/p3.mjs — are always read from the source tree, never copied, so the
 * compiled code can never see stale ones.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest folder at or above this module's folder that holds a package.json. @throws Error when none does */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** Absolute path of the project root. */
export const PROJECT_ROOT: string = findRoot();

/** Absolute path of `rel` (`/`-separated, relative to the project root), e.g. `fromRoot('src/adapters/redis/lua')`. */
export const fromRoot = (rel: string): string => join(PROJECT_ROOT, ...rel.split('/'));
