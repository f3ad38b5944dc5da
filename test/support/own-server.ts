// A PostgreSQL of a test file's own, for tests that stop, restart or crash
// the server (the suite's shared server must stay up for the other files).
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  freePort,
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from '../../src/embedded/server.js';
import { migrate } from '../../src/migrate/migrator.js';
import { testClient } from './connections.js';

export interface OwnServer {
  /** URL of the migrated `postgres` database; the same before and after a restart. */
  readonly url: string;
  readonly port: number;
  /** Clean shutdown (SIGINT to the postmaster, as `pg_ctl stop -m fast`). */
  stop(): Promise<void>;
  /** SIGKILL of the postmaster: no shutdown checkpoint, crash recovery on the next start. */
  crash(): Promise<void>;
  /** Starts the server again on the same data folder and port. */
  start(): Promise<void>;
  /** Stops it (if running) and deletes its data folder. */
  destroy(): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a fresh embedded server (durable settings: crash tests check that nothing acknowledged is lost) and migrates it. */
export async function startOwnServer(): Promise<OwnServer> {
  const dataDir = join(tmpdir(), `pgferry-fault-${process.pid}-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  let server: EmbeddedPostgres | undefined = await startEmbeddedPostgres({
    dataDir,
    port,
    persistent: true,
  });
  const url = server.url;
  await migrate({ connectionString: url });

  const own: OwnServer = {
    url,
    port,
    async stop() {
      const s = server;
      server = undefined;
      await s?.stop();
    },
    async crash() {
      const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      // The server object is dead after this: its stop() would wait for an exit already past.
      server = undefined;
      process.kill(pid, 'SIGKILL');
      while (alive(pid)) await sleep(20);
    },
    async start() {
      if (server) return;
      // After a crash the old backends notice their postmaster's death within
      // moments; until then the new postmaster refuses the shared memory they hold.
      for (let attempt = 0; ; attempt++) {
        try {
          server = await startEmbeddedPostgres({ dataDir, port, persistent: true });
          break;
        } catch (err) {
          if (attempt >= 50) throw err;
          await sleep(200);
        }
      }
    },
    async destroy() {
      await own.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return own;
}

/** Waits until the server answers a query (it may still be in crash recovery). */
export async function waitUntilReady(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const c = testClient({ connectionString: url });
    try {
      await c.connect();
      await c.query('SELECT 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(50);
    } finally {
      await c.end().catch(() => undefined);
    }
  }
}
