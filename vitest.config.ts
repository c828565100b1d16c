import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: keep parallel files modest so real child processes get CPU.
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
