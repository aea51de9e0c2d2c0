import { defineConfig } from 'vitest/config';

/** The suites whose bundle follows the policy dialect: each runs once per dialect. */
const DIALECT_SUITES = ['queueing', 'evictions', 'recovery', 'faults', 'tenants', 'webhooks', 'routing', 'labelled-namespaces', 'multikueue'].map(
  (suite) => `test/e2e/${suite}.e2e.ts`,
);

const dialect = (name: 'clusterpolicy' | 'cel') => ({
  extends: true as const,
  test: { name, include: DIALECT_SUITES, env: { E2E_DIALECT: name } },
});

export default defineConfig({
  test: {
    globalSetup: ['test/setup/e2e-tools.ts'],
    testTimeout: 10 * 60_000,
    hookTimeout: 10 * 60_000,
    // Each file boots its own control plane; two at a time on 2 cores, as a plane mostly waits on
    // the engines' timers (one plane leaves the CPU 77% idle; two ran the queueing suite in 234 s
    // against 222 s alone).
    maxWorkers: 2,
    sequence: { concurrent: false },
    projects: [
      dialect('clusterpolicy'),
      dialect('cel'),
      // dist/ as it ships, both dialects by design, the tenant guard alone, the tools themselves.
      { extends: true as const, test: { name: 'once', include: ['test/e2e/**/*.e2e.ts'], exclude: DIALECT_SUITES } },
    ],
  },
});
