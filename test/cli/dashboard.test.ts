import { describe, expect, it, vi } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';
import { eventually, useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const root = fileURLToPath(new URL('../../', import.meta.url));

async function quiet(args: string[]): Promise<number> {
  const err = vi.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    return await main(args);
  } finally {
    err.mockRestore();
  }
}

describe('pgferry dashboard', () => {
  it('serves pages and /metrics behind a token on 127.0.0.1 and exits 0 on SIGTERM', async () => {
    let out = '';
    const p = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/main.ts',
        'dashboard',
        '--port',
        '0',
        '--queue-schema',
        db.queueSchema,
      ],
      {
        cwd: root,
        env: { ...process.env, DATABASE_URL: db.url, PGFERRY_DASHBOARD_TOKEN: 'cli-token-123' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exit = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    db.track({ close: async () => void (p.exitCode === null && (p.kill('SIGKILL'), await exit)) });
    await eventually(async () => /dashboard on http:\/\//.test(out), 30_000);
    const url = /dashboard on (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)![1]!;
    expect(out).toContain('read-only');
    expect((await fetch(url)).status).toBe(401);
    const auth = { headers: { authorization: 'Bearer cli-token-123' } };
    expect((await fetch(url + 'queues', auth)).status).toBe(200);
    expect(await (await fetch(url + 'metrics', auth)).text()).toContain(
      '# TYPE pgferry_queue_depth gauge',
    );
    p.kill('SIGTERM');
    expect(await exit).toBe(0);
  });

  it('exits 2 on bad usage (an exposed host without auth, a short token) and 3 without a database', async () => {
    expect(await quiet(['dashboard', '--host', '0.0.0.0', '--url', db.url])).toBe(2);
    expect(await quiet(['dashboard', '--token', 'short', '--url', db.url])).toBe(2);
    expect(await quiet(['dashboard', '--basic', 'nopass', '--url', db.url])).toBe(2);
    expect(
      await quiet(['dashboard', '--port', '0', '--url', 'postgres://postgres@127.0.0.1:1/none']),
    ).toBe(3);
  });
});
