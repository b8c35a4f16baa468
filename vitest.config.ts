import { defineConfig } from 'vitest/config';

export default defineConfig({
  oxc: { jsx: { runtime: 'automatic', importSource: 'hono/jsx' } },
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    exclude: ['test/bench/**', 'node_modules/**'],
    // Integration tests start real processes, cgroups and namespaces: run files one at a time
    // so two files never contend for the same host resources or the 2 cores.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 30_000,
    // before the tests: reclaims what test and bench platforms of a dead process left on the host
    // (test/helpers/leftovers.ts); after them: drops the network subnets test servers claimed
    // (test/helpers/subnets.ts) once every worker is gone
    globalSetup: ['test/helpers/leftovers.ts', 'test/helpers/subnets.ts'],
  },
});
