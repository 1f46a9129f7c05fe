import { defineConfig } from 'vitest/config';

// Two projects: unit tests are pure and fast; integration tests talk to the
// real Redis and the real Docker daemon that scripts/setup-env.sh provides.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Pure, but some generate thousands of cases: on two busy cores that can take seconds.
          testTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          environment: 'node',
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Docker and Redis are shared, slow resources on a 2-core machine.
          fileParallelism: false,
        },
      },
    ],
  },
});
