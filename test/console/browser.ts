/**
 * Debian's chromium (/usr/bin/chromium, `apt-get install chromium`; .ci/run installs it) driven by
 * playwright-core: never a browser download. Each launch gets a fresh user-data-dir, removed on close.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

/** Path of the system chromium. */
export const CHROMIUM = '/usr/bin/chromium';

/** A headless chromium with its own profile folder. */
export interface TestBrowser {
  ctx: BrowserContext;
  close(): Promise<void>;
}

/**
 * Launches headless chromium (no network services, no GPU, no sandbox as root in CI).
 * @param extraArgs more command-line switches, e.g. `--host-resolver-rules=MAP evil.example 127.0.0.1`
 */
export async function launchChromium(extraArgs: string[] = []): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (bash .ci/run does it); never a browser download`);
  const dir = mkdtempSync(join(tmpdir(), 'p3-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1440, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
  return {
    ctx,
    close: async () => {
      await ctx.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
