import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/embedded/server.js';
import { migrate } from '../../src/migrate/migrator.js';
import { QueueClient } from '../../src/index.js';
import { eventually } from '../support/db.js';
import { testClient } from '../support/connections.js';

/*
 * Crash recovery empties UNLOGGED tables, PGMQ's notify throttles among them.
 * This file crashes a server of its own (SIGKILL of the postmaster, restart
 * on the same data directory), never the suite's shared one. Durable
 * settings (not the suite's `fast` ones): async commits would be lost.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'pgferry-notify-crash-'));
let server: EmbeddedPostgres | undefined;
let port = 0;

beforeAll(async () => {
  server = await startEmbeddedPostgres({ dataDir });
  port = server.port;
  await migrate({ connectionString: server.url, components: ['queue'] });
}, 120_000);

afterAll(async () => {
  await server?.stop().catch(() => undefined);
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL of the postmaster, then a restart on the same data directory (crash recovery). */
async function crashAndRestart(): Promise<void> {
  const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
  process.kill(pid, 'SIGKILL');
  await eventually(() => !alive(pid), 20_000);
  // Backends notice the postmaster's death and exit; until they have, the
  // old shared memory is in use and a new postmaster refuses to start.
  let lastErr: unknown;
  for (let i = 0; i < 40; i++) {
    try {
      server = await startEmbeddedPostgres({ dataDir, port });
      return;
    } catch (err) {
      lastErr = err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw lastErr;
}

async function listenFor(
  url: string,
  channel: string,
): Promise<{ got: () => number; close: () => Promise<void> }> {
  const c = testClient({ connectionString: url });
  await c.connect();
  let n = 0;
  c.on('notification', (m) => {
    if (m.channel === channel) n++;
  });
  await c.query(`LISTEN "${channel}"`);
  return { got: () => n, close: () => c.end() };
}

describe('insert notifications after crash recovery', () => {
  it('keep working although the UNLOGGED throttle rows are gone', async () => {
    const url = server!.url;
    let q = new QueueClient({ connectionString: url });
    await q.createQueue('wake');
    await q.createQueue('wake2');
    await q.enableNotifyInsert('wake', { throttleIntervalMs: 0 });
    await q.enableNotifyInsert('wake2', { throttleIntervalMs: 1000 });
    const before = await listenFor(url, 'pgmq.q_wake.INSERT');
    await q.send('wake', 1);
    await eventually(() => before.got() >= 1, 10_000);
    await before.close();
    await q.close();

    await crashAndRestart();

    q = new QueueClient({ connectionString: url });
    try {
      // The crash really emptied PGMQ's table (the precondition of the bug).
      expect(await q.listNotifyInsertThrottles()).toEqual([]);
      // update_notify_insert still knows the notification is enabled.
      await q.updateNotifyInsert('wake2', 500);
      const after = await listenFor(url, 'pgmq.q_wake.INSERT');
      try {
        await q.send('wake', 2);
        await eventually(() => after.got() >= 1, 10_000);
        // Restored with its own setting (0 ms: every transaction notifies).
        await q.send('wake', 3);
        await eventually(() => after.got() >= 2, 10_000);
      } finally {
        await after.close();
      }
      const throttles = await q.listNotifyInsertThrottles();
      expect(throttles.map((t) => [t.queueName, t.throttleIntervalMs])).toEqual([
        ['wake', 0],
        ['wake2', 500],
      ]);
      // Disabling still disables: no notification, no restored row.
      await q.disableNotifyInsert('wake');
      const off = await listenFor(url, 'pgmq.q_wake.INSERT');
      await q.send('wake', 4);
      await q.send('wake2', 4); // a statement after it, so a notification would have arrived
      await new Promise((r) => setTimeout(r, 300));
      expect(off.got()).toBe(0);
      await off.close();
      expect((await q.listNotifyInsertThrottles()).map((t) => t.queueName)).toEqual(['wake2']);
    } finally {
      await q.close();
    }
  }, 120_000);
});
