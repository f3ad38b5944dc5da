// `npm test`: everything CI checks, in order, stopping at the first failure.
//   1. the generated SQL modules match sql/ (drift check)
//   2. strict typecheck of src, test, bench and scripts
//   3. the whole vitest suite (embedded Postgres unless DATABASE_URL is set)
//   4. the queue suite again under a non-default schema
//   5. a one-iteration smoke run of the benchmarks
import { spawnSync } from 'node:child_process';

interface Step {
  name: string;
  cmd: string[];
  env?: Record<string, string>;
}

const steps: Step[] = [
  { name: 'sql drift check', cmd: ['tsx', 'scripts/build-sql.ts', '--check'] },
  { name: 'typecheck', cmd: ['tsc', '-p', 'tsconfig.json', '--noEmit'] },
  { name: 'test suite', cmd: ['vitest', 'run'] },
  {
    name: 'queue suite under schema "ferry_alt"',
    cmd: ['vitest', 'run', 'test/queue'],
    env: { PGFERRY_TEST_QUEUE_SCHEMA: 'ferry_alt' },
  },
  { name: 'benchmark smoke run', cmd: ['tsx', 'bench/main.ts', '--smoke'] },
];

const only = process.argv.slice(2);
let failed = 0;
let passed = 0;
for (const step of steps) {
  if (only.length && !only.some((o) => step.name.includes(o))) continue;
  console.log(`\n=== ${step.name}: ${step.cmd.join(' ')}`);
  const started = Date.now();
  const res = spawnSync('npx', ['--no-install', ...step.cmd], {
    stdio: 'inherit',
    env: { ...process.env, ...step.env },
  });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (res.status === 0) {
    passed++;
    console.log(`=== ${step.name}: ok (${secs}s)`);
  } else {
    failed++;
    console.log(`=== ${step.name}: FAILED (exit ${res.status ?? res.signal}, ${secs}s)`);
    break;
  }
}
console.log(`\nsteps: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
