import { describe, expect, it, vi, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';
import { a, grouped } from './fixtures/cli-tasks.js';
import cliDefault from './fixtures/cli-tasks.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { taskClient } from './helpers.js';

const db = useTestDatabase();
const root = fileURLToPath(new URL('../../', import.meta.url));
const fixture = 'test/tasks/fixtures/cli-tasks.ts';

function cli(args: string[]): {
  exit: Promise<number | null>;
  kill(sig: NodeJS.Signals): void;
  output(): string;
} {
  let out = '';
  const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: db.url },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  db.track({
    close: async () =>
      void (p.exitCode === null && p.signalCode === null && (p.kill('SIGKILL'), await exit)),
  });
  return { exit, kill: (sig) => p.kill(sig), output: () => out };
}

/** Runs `pgferry …` in-process; returns exit code and what it printed. */
async function run(args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = vi
    .spyOn(console, 'log')
    .mockImplementation((...x: unknown[]) => void lines.push(x.join(' ')));
  const err = vi
    .spyOn(console, 'error')
    .mockImplementation((...x: unknown[]) => void lines.push(x.join(' ')));
  try {
    const code = await main([...args, '--url', db.url, '--queue-schema', db.queueSchema]);
    return { code, out: lines.join('\n') };
  } finally {
    log.mockRestore();
    err.mockRestore();
  }
}

afterEach(() => vi.restoreAllMocks());

describe('pgferry worker / pgferry dlq', () => {
  it('runs the included tasks of a module, leaves excluded ones, and exits 0 on SIGTERM', async () => {
    await db.sql(`CREATE TABLE cli_done (task text, n int)`);
    const client = taskClient(db);
    const [b, c] = grouped as [typeof a, typeof a];
    for (const t of [a, b, c]) await client.enqueue(t, { n: 1 });
    const p = cli([
      'worker',
      fixture,
      '--concurrency',
      '20',
      '--include',
      'cli_a,cli_b,cli_c',
      '--exclude',
      'cli_c',
      '--queue-schema',
      db.queueSchema,
      '--poll-interval-ms',
      '100',
    ]);
    await eventually(
      async () => (await db.sql(`SELECT count(*)::int AS n FROM cli_done`))[0]!.n === 2,
      20_000,
    );
    p.kill('SIGTERM');
    expect(await p.exit).toBe(0);
    expect(p.output()).toMatch(/pgferry worker started.*cli_a,cli_b/);
    expect((await db.sql(`SELECT task FROM cli_done ORDER BY task`)).map((r) => r.task)).toEqual([
      'cli_a',
      'cli_b',
    ]);
    expect(await db.sql(`SELECT 1 FROM ${db.queueSchema}.q_cli_c`)).toHaveLength(1);
  });

  it('exit codes: 2 for bad flags and unknown task names, 1 for a module that does not load; --help lists every flag', async () => {
    expect((await run(['worker', fixture, '--concurrency', 'zero'])).code).toBe(2);
    const unknown = await run(['worker', fixture, '--include', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.out).toMatch(/no task named "nope".*cli_a, cli_b, cli_c, cli_d/);
    expect((await run(['worker', 'test/tasks/fixtures/missing.js'])).code).toBe(1);
    expect((await run(['worker'])).code).toBe(2);
    const help = await run(['worker', '--help']);
    expect(help.code).toBe(0);
    for (const flag of [
      '--concurrency',
      '--include',
      '--exclude',
      '--poll-interval-ms',
      '--shutdown-grace-ms',
      '--prune-interval-minutes',
      '--prune-batch-size',
      '--no-listen',
      '--tasks-schema',
      'Exit codes',
    ]) {
      expect(help.out).toContain(flag);
    }
  });

  it('dlq: list, inspect, reschedule and purge from the command line', async () => {
    const client = taskClient(db);
    const d = cliDefault.d;
    await client.enqueueBatch(
      d,
      [1, 2, 3].map((n) => ({ input: { n } })),
    );
    const p = cli([
      'worker',
      fixture,
      '--include',
      'cli_d',
      '--queue-schema',
      db.queueSchema,
      '--quiet',
    ]);
    await eventually(async () => (await client.deadLetters(d).count()) === 3, 20_000);
    p.kill('SIGINT');
    expect(await p.exit).toBe(0);
    const list = await run(['dlq', 'list', 'cli_d']);
    expect(list.code).toBe(0);
    expect(list.out.split('\n')).toHaveLength(3);
    expect(list.out).toMatch(/attempts 1 .*TypeError: always fails/);
    const letters = await client.deadLetters(d).list();
    const ids = letters.map((x) => x.id);
    const inspect = await run(['dlq', 'inspect', 'cli_d', String(ids[0])]);
    expect(inspect.out).toContain(`input:       ${JSON.stringify(letters[0]!.input)}`);
    expect(inspect.out).toMatch(/stack:\nTypeError: always fails/);
    expect((await run(['dlq', 'inspect', 'cli_d', '999999'])).code).toBe(1);
    const json = await run(['dlq', 'reschedule', 'cli_d', String(ids[0]), '--json']);
    expect(JSON.parse(json.out)).toEqual([{ deadId: ids[0], newId: expect.any(Number) }]);
    expect((await run(['dlq', 'reschedule', 'cli_d'])).code).toBe(2); // nothing selected
    expect((await run(['dlq', 'purge', 'cli_d', '--error', 'TypeError'])).out).toBe(
      'purged 2 dead letter(s)',
    );
    expect(await client.deadLetters(d).count()).toBe(0);
  });
});
