import { defineConfig } from 'vitest/config';

// The dashboard's browser tests (Debian's chromium through playwright-core).
// scripts/test.ts runs them in their own step, which passes with a printed
// reason when /usr/bin/chromium is missing (CI installs it).
export default defineConfig({
  test: {
    include: ['test/browser/**/*.browser.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    maxWorkers: 1,
    minWorkers: 1,
  },
});
