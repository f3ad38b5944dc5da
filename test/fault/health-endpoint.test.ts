// `pgferry worker` and `pgferry ticker` with --health-port: real processes,
// real HTTP requests, and a real outage (through the fault proxy) that turns
// readiness off and back on.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/embedded/server.js';
import { eventually, useTestDatabase } from '../support/db.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';

const db = useTestDatabase();
const root = fileURLToPath(new URL('../../', import.meta.url));
let proxy: FaultProxy;

beforeAll(async () => {
  const u = new URL(db.url);
  proxy = await startFaultProxy({ host: u.hostname, port: Number(u.port) });
});
afterAll(async () => {
  proxy.refuse(false);
  await proxy.close();
});

function cli(args: string[]): { exit: Promise<number | null>; stop(): void; output(): string } {
  let out = '';
  const p = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: proxy.url(db.url) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
  db.track({
    close: async () =>
      void (p.exitCode === null && p.signalCode === null && (p.kill('SIGKILL'), await exit)),
  });
  return { exit, stop: () => p.kill('SIGTERM'), output: () => out };
}

async function probe(port: number, path: string): Promise<{ status: number; state?: string }> {
  let res: Response;
  try {
    res = await fetch(`http://127.0.0.1:${port}${path}`);
  } catch {
    return { status: 0 }; // not listening yet
  }
  if (!res.headers.get('content-type')?.includes('json')) {
    await res.text();
    return { status: res.status };
  }
  return { status: res.status, state: ((await res.json()) as { state: string }).state };
}

/** Ready, then not ready during an outage (alive all along), then ready again. */
async function outageCycle(port: number): Promise<void> {
  await eventually(async () => (await probe(port, '/readyz')).status === 200, 30_000);
  expect(await probe(port, '/livez')).toEqual({ status: 200, state: 'running' });
  expect((await probe(port, '/nope')).status).toBe(404);
  proxy.refuse(true);
  proxy.cut();
  try {
    await eventually(async () => (await probe(port, '/readyz')).status === 503, 15_000);
    expect(await probe(port, '/readyz')).toEqual({ status: 503, state: 'reconnecting' });
    expect(await probe(port, '/livez')).toEqual({ status: 200, state: 'reconnecting' });
  } finally {
    proxy.refuse(false);
  }
  await eventually(async () => (await probe(port, '/readyz')).status === 200, 15_000);
}

describe('--health-port', () => {
  it('pgferry worker: /livez and /readyz follow the worker through an outage', async () => {
    const port = await freePort();
    const p = cli([
      'worker',
      'test/tasks/fixtures/cli-tasks.ts',
      '--queue-schema',
      db.queueSchema,
      '--poll-interval-ms',
      '100',
      '--error-retry-interval-ms',
      '200',
      '--no-cron',
      '--prune-interval-minutes',
      '0',
      '--health-port',
      String(port),
      '--health-host',
      '127.0.0.1',
    ]);
    await outageCycle(port).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${p.output()}`);
    });
    expect(p.output()).toContain(`health endpoint on http://127.0.0.1:${port}`);
    p.stop();
    expect(await p.exit).toBe(0);
  }, 60_000);

  it('pgferry ticker: the same endpoints, and a bad port is a usage error', async () => {
    const port = await freePort();
    const p = cli([
      'ticker',
      '--election-ms',
      '200',
      '--max-interval-ms',
      '100',
      '--health-port',
      String(port),
      '--health-host',
      '127.0.0.1',
    ]);
    await outageCycle(port).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${p.output()}`);
    });
    p.stop();
    expect(await p.exit).toBe(0);
    const bad = cli(['ticker', '--health-port', '70000']);
    expect(await bad.exit).toBe(2);
    expect(bad.output()).toMatch(/--health-port must be an integer/);
  }, 60_000);
});
