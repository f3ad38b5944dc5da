import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useTestDatabase } from '../support/db.js';
import { main } from '../../src/cli/main.js';
import { freePort } from '../../src/embedded/server.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();

describe('pgferry demo', () => {
  it('moves every message exactly once on DATABASE_URL and exits 0', async () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = db.url;
    const lines: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => void lines.push(args.join(' '));
    let code: number;
    try {
      code = await main(['demo', '--seconds', '2', '--rate', '500']);
    } finally {
      console.log = log;
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
    expect(code).toBe(0);
    const done = lines.find((l) => l.startsWith('Done:'));
    expect(done).toMatch(/sent ([\d,]+), consumed \1, left 0, duplicates 0/);
    expect(lines.some((l) => /^t= ?\d+s +sent/.test(l))).toBe(true);
  });

  it('rejects bad flags with exit code 2', async () => {
    expect(await main(['demo', '--seconds', 'zero'])).toBe(2);
  });
});

describe('pgferry dev', () => {
  it('starts an embedded PostgreSQL, migrates it, prints its URL and stops on SIGINT', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'pgferry-dev-test-'));
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx/esm',
        'src/cli/main.ts',
        'dev',
        '--data-dir',
        dataDir,
        '--port',
        String(port),
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL printed:\n${out}`)), 60_000);
        child.stdout.on('data', () => {
          const m = /DATABASE_URL=(\S+)/.exec(out);
          if (m) {
            clearTimeout(timer);
            resolve(m[1]!);
          }
        });
        void exited.then(() => reject(new Error(`pgferry dev exited early:\n${out}`)));
      });
      expect(url).toContain(`:${port}/`);
      const c = testClient({ connectionString: url });
      await c.connect();
      await c.query(`SELECT pgmq.create('dev_q')`);
      const r = await c.query(`SELECT * FROM pgmq.send('dev_q', '{"hi":1}')`);
      expect(r.rows).toEqual([{ send: '1' }]);
      await c.end();
      child.kill('SIGINT');
      // Ctrl-C is the normal way to stop it: the server is stopped and the exit is clean.
      expect(await exited).toBe(0);
      expect(out).toContain('pgferry dev: stopped');
      const after = testClient({ connectionString: url, connectionTimeoutMillis: 2000 });
      await expect(after.connect()).rejects.toThrow();
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 90_000);
});
