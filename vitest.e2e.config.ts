import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    // Cold builds of the control-plane tools take minutes each, one after the other.
    testTimeout: 60 * 60_000,
    fileParallelism: false,
    sequence: { concurrent: false },
  },
});
