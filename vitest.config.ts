import { defineConfig } from 'vitest/config';

/** Tests talk to real Redis servers (one private redis-server per test file) and a real paper exchange. */
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    reporters: ['default'],
  },
});
