/**
 * The parts of ccxt this adapter uses — the `binanceusdm` class and three error classes — loaded from their
 * own modules instead of ccxt's entry point, which imports every exchange of the library (over a hundred, and
 * their WebSocket versions): ~0.45 s and ~60 MB more per process for classes never used (measured in
 * docs/performance.md).
 *
 * ccxt's `exports` map names only its entry point, so the files are located next to it:
 * `require.resolve('ccxt')` is `node_modules/ccxt/dist/ccxt.cjs`; the ES modules are in
 * `node_modules/ccxt/js/src/` (`binanceusdm.js`, default export; `base/errors.js`, named exports). They are the
 * very modules the entry point imports, so the classes are identical (`instanceof` holds across both ways
 * in, as tests that use `import ccxt from 'ccxt'` rely on). ccxt anticipates this use ("when an exchange module is
 * imported directly, bypassing the ccxt entry point", `Exchange#getCcxtVersion`).
 *
 * If a ccxt release moves those files, the entry point is loaded instead (same classes, the old cost) —
 * test/exchange/ccxt-module.test.ts fails on such a release so it is noticed at the upgrade.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type ccxtEntry from 'ccxt';

/** What the adapter uses of ccxt. */
export type CcxtParts = Pick<typeof ccxtEntry, 'binanceusdm' | 'AuthenticationError' | 'DDoSProtection' | 'NetworkError'>;

/** Absolute paths of the two modules in the installed ccxt, or null when they are not where 4.5.x has them. */
export function ccxtModuleFiles(): { binanceusdm: string; errors: string } | null {
  const entry = createRequire(import.meta.url).resolve('ccxt'); // .../ccxt/dist/ccxt.cjs
  const src = join(dirname(entry), '..', 'js', 'src');
  const files = { binanceusdm: join(src, 'binanceusdm.js'), errors: join(src, 'base', 'errors.js') };
  return existsSync(files.binanceusdm) && existsSync(files.errors) ? files : null;
}

/** Loads {@link CcxtParts}; `direct` says whether they came from their own modules (not the entry point). */
export async function loadCcxt(): Promise<CcxtParts & { direct: boolean }> {
  const files = ccxtModuleFiles();
  if (files) {
    const [usdm, errors] = await Promise.all([import(pathToFileURL(files.binanceusdm).href), import(pathToFileURL(files.errors).href)]);
    return { binanceusdm: usdm.default, AuthenticationError: errors.AuthenticationError, DDoSProtection: errors.DDoSProtection, NetworkError: errors.NetworkError, direct: true };
  }
  const full = (await import('ccxt')).default;
  return { binanceusdm: full.binanceusdm, AuthenticationError: full.AuthenticationError, DDoSProtection: full.DDoSProtection, NetworkError: full.NetworkError, direct: false };
}
