// `npm test`: everything CI checks, in order, stopping at the first failure.
//   1. the generated SQL modules match sql/ (drift check)
//   2. strict typecheck of src, test, bench and scripts, then eslint and prettier --check
//   3. the whole vitest suite (embedded Postgres unless DATABASE_URL is set),
//      but for test/pooler
//   4. the queue suite again under a non-default schema
//   5. the queue and driver suites again on postgres.js and on PGlite
//      (PGFERRY_TEST_DRIVER; on PGlite without the files whose tests need
//      several sessions, listed in test/support/pglite-exclusions.ts)
//   6. test/pooler through a real PgBouncer (Debian pgbouncer), and
//   7. the dashboard's browser tests (Debian chromium via playwright-core);
//      each passes with a printed reason when its program is missing
//   8. a one-iteration smoke run of the benchmarks
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pgliteExcludeArgs } from '../test/support/pglite-exclusions.js';

interface Step {
  name: string;
  cmd: string[];
  env?: Record<string, string>;
  /** A file the step needs; when it is missing the step prints why and passes. */
  needs?: { file: string; why: string };
}

const steps: Step[] = [
  { name: 'sql drift check', cmd: ['tsx', 'scripts/build-sql.ts', '--check'] },
  { name: 'typecheck', cmd: ['tsc', '-p', 'tsconfig.json', '--noEmit'] },
  { name: 'lint', cmd: ['eslint', '.'] },
  { name: 'format check', cmd: ['prettier', '--check', '.'] },
  // The PgBouncer suite has a step of its own below (it needs Debian's pgbouncer).
  { name: 'test suite', cmd: ['vitest', 'run', '--exclude', 'test/pooler/**'] },
  {
    name: 'queue suite under schema "ferry_alt"',
    cmd: ['vitest', 'run', 'test/queue'],
    env: { PGFERRY_TEST_QUEUE_SCHEMA: 'ferry_alt' },
  },
  {
    name: 'queue and driver suites on postgres.js',
    cmd: ['vitest', 'run', 'test/queue', 'test/driver'],
    env: { PGFERRY_TEST_DRIVER: 'postgres' },
  },
  {
    name: 'queue and driver suites on PGlite',
    cmd: ['vitest', 'run', 'test/queue', 'test/driver', ...pgliteExcludeArgs()],
    env: { PGFERRY_TEST_DRIVER: 'pglite' },
  },
  {
    name: 'pooler tests through PgBouncer',
    cmd: ['vitest', 'run', 'test/pooler'],
    needs: {
      file: '/usr/sbin/pgbouncer',
      why: 'Debian pgbouncer is not installed (scripts/ensure-system-deps.sh installs it; CI runs that)',
    },
  },
  {
    name: 'browser tests',
    cmd: ['vitest', 'run', '--config', 'vitest.browser.config.ts'],
    needs: {
      file: '/usr/bin/chromium',
      why: 'Debian chromium is not installed (scripts/ensure-system-deps.sh installs it; CI runs that)',
    },
  },
  { name: 'benchmark smoke run', cmd: ['tsx', 'bench/main.ts', '--smoke'] },
];

const only = process.argv.slice(2);
let failed = 0;
let passed = 0;
// Test counts summed over every vitest run (read from its JSON report).
const tests = { passed: 0, failed: 0, skipped: 0 };
const reports = mkdtempSync(join(tmpdir(), 'pgferry-test-report-'));
let reportNo = 0;
for (const step of steps) {
  if (only.length && !only.some((o) => step.name.includes(o))) continue;
  console.log(`\n=== ${step.name}: ${step.cmd.join(' ')}`);
  if (step.needs && !existsSync(step.needs.file)) {
    console.log(`=== ${step.name}: not run: ${step.needs.why}`);
    passed++;
    continue;
  }
  const started = Date.now();
  const cmd = [...step.cmd];
  let report: string | undefined;
  if (cmd[0] === 'vitest') {
    report = join(reports, `vitest-${++reportNo}.json`);
    cmd.push('--reporter=default', '--reporter=json', `--outputFile.json=${report}`);
  }
  const res = spawnSync('npx', ['--no-install', ...cmd], {
    stdio: 'inherit',
    env: { ...process.env, ...step.env },
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  let stepFailed = false;
  if (report && existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      numPendingTests: number;
      numTodoTests: number;
    };
    tests.passed += r.numPassedTests;
    tests.failed += r.numFailedTests;
    tests.skipped += r.numPendingTests + r.numTodoTests;
    // A failed or skipped test fails the step whatever vitest's exit code says.
    if (r.numFailedTests > 0 || r.numPendingTests + r.numTodoTests > 0) stepFailed = true;
  } else if (report) {
    stepFailed = true; // no report: vitest did not get as far as running tests
  }
  if (res.status === 0 && !stepFailed) {
    passed++;
    console.log(`=== ${step.name}: ok (${secs}s)`);
  } else {
    failed++;
    console.log(`=== ${step.name}: FAILED (exit ${res.status ?? res.signal}, ${secs}s)`);
    break;
  }
}
rmSync(reports, { recursive: true, force: true });
console.log(`\nsteps: ${passed} of ${passed + failed} ran ok`);
console.log(
  `tests: ${tests.passed} passed, ${tests.failed} failed${tests.skipped ? `, ${tests.skipped} skipped` : ''}`,
);
process.exit(failed ? 1 : 0);
