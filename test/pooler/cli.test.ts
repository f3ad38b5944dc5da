// `pgferry ticker --pooler … --listen-url …` through a real PgBouncer, and a bad --pooler.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { eventually, useTestDatabase } from '../support/db.js';
import { startPgBouncer, type PgBouncer } from '../support/pgbouncer.js';

const db = useTestDatabase();
const repo = resolve(import.meta.dirname, '../..');
const bin = join(repo, 'bin', 'pgferry.js');

function run(args: string[]): {
  output: () => string;
  exited: Promise<number | null>;
  stop: () => void;
} {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: repo,
    env: { ...process.env, DATABASE_URL: db.url },
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  db.track({ close: async () => void (child.exitCode === null && child.kill('SIGKILL')) });
  return { output: () => out, exited, stop: () => void child.kill('SIGTERM') };
}

describe('pgferry ticker through PgBouncer in transaction mode', () => {
  let bouncer: PgBouncer;
  beforeAll(async () => {
    bouncer = await startPgBouncer(db.url, 'transaction');
  });
  afterAll(() => bouncer?.stop());

  it('--pooler transaction without --listen-url: leads (lease row), warns once about polling, stops cleanly', async () => {
    const p = run([
      'ticker',
      '--url',
      bouncer.url,
      '--pooler',
      'transaction',
      '--election-ms',
      '100',
    ]);
    await eventually(() => /elected leader/.test(p.output()), 20_000);
    const rows = (await db.sql(`SELECT holder FROM pgque.ticker_lease`)) as { holder: string }[];
    expect(rows).toHaveLength(1);
    expect(p.output().match(/fall back to polling/g)).toHaveLength(1);
    p.stop();
    expect(await p.exited).toBe(0);
    expect(await db.sql(`SELECT holder FROM pgque.ticker_lease`)).toHaveLength(0);
  });

  it('--listen-url: leads without the polling warning', async () => {
    const p = run([
      'ticker',
      '--url',
      bouncer.url,
      '--pooler',
      'transaction',
      '--listen-url',
      db.url,
      '--election-ms',
      '100',
    ]);
    await eventually(() => /elected leader/.test(p.output()), 20_000);
    expect(p.output()).not.toMatch(/fall back to polling/);
    p.stop();
    expect(await p.exited).toBe(0);
  });
});

it('a bad --pooler is a usage error (exit 2) for ticker and worker', async () => {
  for (const args of [
    ['ticker', '--pooler', 'bogus'],
    ['worker', '--pooler', 'bogus', 'tasks.js'],
  ]) {
    const p = run(args);
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/--pooler must be transaction, session or none, got "bogus"/);
  }
});
