import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { inject } from 'vitest';
import { freePort } from '../../src/embedded/server.js';
import { withDatabase } from '../support/urls.js';
import { testClient } from '../support/connections.js';

const repo = resolve(import.meta.dirname, '../..');
const bin = join(repo, 'bin', 'pgferry.js');

/** An environment that names no database at all (no DATABASE_URL, no PG* variables). */
function bareEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of Object.keys(env)) if (k === 'DATABASE_URL' || k.startsWith('PG')) delete env[k];
  return { ...env, ...extra };
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function pgferry(args: string[], env: NodeJS.ProcessEnv = bareEnv()): Promise<Run> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: repo, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => res({ code, stdout, stderr }));
  });
}

// A database with nothing of pgferry in it.
const empty = `${inject('templateDb')}_empty`;
const emptyUrl = withDatabase(inject('adminUrl'), empty);
async function admin(sql: string): Promise<void> {
  const c = testClient({ connectionString: inject('adminUrl') });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}
beforeAll(() => admin(`CREATE DATABASE ${empty}`));
afterAll(() => admin(`DROP DATABASE IF EXISTS ${empty} WITH (FORCE)`));

describe('errors a newcomer meets: one sentence and a non-zero exit', () => {
  it('no DATABASE_URL: says to set it (exit 2)', async () => {
    for (const cmd of [['migrate'], ['ticker'], ['dlq', 'list', 'send_email']]) {
      const r = await pgferry(cmd);
      expect({ cmd, code: r.code }).toEqual({ cmd, code: 2 });
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/no database to connect to: set DATABASE_URL/);
    }
  });

  it('an unmigrated database: says to run pgferry migrate (exit 4)', async () => {
    const r = await pgferry(['dlq', 'list', 'send_email'], bareEnv({ DATABASE_URL: emptyUrl }));
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(
      /pgferry is not installed in database ".*_empty" on .*run `pgferry migrate`/,
    );
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('pgferry ticker on an unmigrated database: says the stream engine is missing (exit 4)', async () => {
    const r = await pgferry(['ticker', '--url', emptyUrl]);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(
      /stream engine is not installed in database ".*_empty".*run `pgferry migrate`/,
    );
    expect(r.stderr).not.toMatch(/admin role/);
  });

  it('pgferry migrate says which database it installed into', async () => {
    const r = await pgferry(['migrate', '--url', emptyUrl, '--only', 'queue']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/applied to database ".*_empty" on 127\.0\.0\.1:\d+ as user "\w+"/);
  });
});

describe('pgferry dev twice', () => {
  let first: ChildProcess | undefined;
  let dataDir = '';
  let port = 0;
  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'pgferry-dev-twice-'));
    port = await freePort();
    first = spawn(
      process.execPath,
      [bin, 'dev', '--data-dir', dataDir, '--port', String(port), '--no-migrate'],
      {
        cwd: repo,
        env: bareEnv(),
      },
    );
    let out = '';
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`dev did not start:\n${out}`)), 90_000);
      const on = (d: Buffer): void => {
        out += d.toString();
        if (out.includes('DATABASE_URL=')) {
          clearTimeout(timer);
          res();
        }
      };
      first!.stdout!.on('data', on);
      first!.stderr!.on('data', on);
      first!.on('exit', () => rej(new Error(`dev exited:\n${out}`)));
    });
  }, 120_000);
  afterAll(async () => {
    if (first && first.exitCode === null) {
      const gone = new Promise((r) => first!.once('exit', r));
      first.kill('SIGINT');
      await gone;
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('same data folder: says it is in use (exit 1)', async () => {
    const other = await freePort();
    const r = await pgferry([
      'dev',
      '--data-dir',
      dataDir,
      '--port',
      String(other),
      '--no-migrate',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/data folder .* is already in use .*pgferry dev.* already running/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('same port: says the port is in use (exit 1)', async () => {
    const otherDir = mkdtempSync(join(tmpdir(), 'pgferry-dev-twice-b-'));
    try {
      const r = await pgferry([
        'dev',
        '--data-dir',
        otherDir,
        '--port',
        String(port),
        '--no-migrate',
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`port ${port} is already in use`));
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      rmSync(otherDir, { recursive: true, force: true });
    }
  }, 90_000);
});
