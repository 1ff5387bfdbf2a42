import { defineConfig } from 'vitest/config'

// Server-starting test files run one at a time (two cores): integration and
// sim files are in their own sequential project; unit tests run in parallel.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    pool: 'forks',
    reporters: ['default'],
    // Ends the run with a list of the suites skipped for a missing prerequisite (test/helpers/prerequisites.ts).
    globalSetup: ['test/helpers/skip-summary.ts'],
  },
})
