import pg from 'pg';
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { PgDriver, sessionSurvives } from '../../src/driver/pg.js';
import { ConnectionError, DatabaseError, TimeoutError } from '../../src/errors.js';
import { testPool } from '../support/connections.js';
import { useTestDatabase } from '../support/db.js';

// Which failed statements give their pooled connection up (PgDriver). The
// conformance suite checks that ordinary SQL errors keep it, on every driver.

const db = useTestDatabase();
const drivers: PgDriver[] = [];
afterAll(async () => {
  for (const d of drivers) await d.close();
});

const oneConnection = (queryTimeoutMs?: number): PgDriver => {
  const d = new PgDriver({ connectionString: db.url, maxConnections: 1, queryTimeoutMs });
  drivers.push(d);
  return d;
};
const pid = async (d: PgDriver): Promise<number> =>
  Number((await d.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid);
const serverError = (code: string, severity = 'ERROR'): Error =>
  Object.assign(new Error(`server said ${code}`), { code, severity });

describe('PgDriver: a failed statement’s connection', () => {
  it('goes back to the pool after statement errors and is given up after session errors', () => {
    for (const code of ['22012', '23505', '40001', '40P01', '55P03', '57014', 'P0001', 'PF501']) {
      expect(sessionSurvives(serverError(code)), code).toBe(true);
    }
    // Lost or ending sessions, stale cached plans, unknown statements.
    for (const code of ['08006', '57P01', '57P05', '58030', 'XX000', '53200', '0A000', '26000']) {
      expect(sessionSurvives(serverError(code)), code).toBe(false);
    }
    expect(sessionSurvives(serverError('25P03', 'FATAL')), '25P03').toBe(false);
    expect(sessionSurvives(serverError('25P02')), 'aborted transaction block').toBe(false);
    // FATAL ends the session whatever the code (a recovery conflict on a standby: 40001).
    expect(sessionSurvives(serverError('40001', 'FATAL')), '40001 FATAL').toBe(false);
    // Not a server error: a client-side timeout, a socket error.
    expect(sessionSurvives(new Error('Query read timeout'))).toBe(false);
    expect(sessionSurvives(Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }))).toBe(false);
    expect(sessionSurvives(undefined)).toBe(false);
  });

  it('is given up when its statement outlives queryTimeoutMs (the statement may still run)', async () => {
    const d = oneConnection(300);
    const before = await pid(d);
    await expect(d.query(`SELECT pg_sleep(3)`)).rejects.toBeInstanceOf(TimeoutError);
    const after = await pid(d);
    expect(after).not.toBe(before);
  });

  it('is given up when a statement leaves a transaction open or aborted', async () => {
    const d = oneConnection();
    let before = await pid(d);
    await expect(d.query(`BEGIN; SELECT 1 / 0`)).rejects.toBeInstanceOf(DatabaseError);
    let after = await pid(d);
    expect(after).not.toBe(before); // not a connection stuck in "current transaction is aborted"
    expect((await d.query<{ one: number }>(`SELECT 1 AS one`)).rows).toEqual([{ one: 1 }]);
    before = after;
    await d.query(`BEGIN`);
    after = await pid(d);
    expect(after).not.toBe(before); // nor one left inside a transaction
    expect(
      (
        await d.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1`,
          [before],
        )
      ).rows[0]!.n,
    ).toBeLessThanOrEqual(1);
  });

  it('settles once and survives a parameter pg cannot serialise', async () => {
    const d = oneConnection();
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(d.query(`SELECT $1::jsonb AS v`, [circular])).rejects.toThrow();
    expect((await d.query<{ one: number }>(`SELECT 1 AS one`)).rows).toEqual([{ one: 1 }]);
  });

  it('a connection of a pool passed in that breaks mid-statement fails the statement, not the process', async () => {
    const pool = testPool({ connectionString: db.url, max: 1 });
    // Used before the driver sees it: its connection has no listener of the driver's.
    await pool.query('SELECT 1');
    pool.removeAllListeners('connect');
    const raw = (await pool.connect()) as unknown as {
      removeAllListeners(e: string): void;
      release(): void;
      connection: { stream: { destroy(err: Error): void } };
    };
    raw.removeAllListeners('error');
    raw.release();
    const d = new PgDriver({ pool });
    drivers.push(d);
    const running = d.query(`SELECT pg_sleep(5)`);
    await new Promise((r) => setTimeout(r, 100));
    raw.connection.stream.destroy(
      Object.assign(new Error('read ECONNRESET (by the test)'), { code: 'ECONNRESET' }),
    );
    await expect(running).rejects.toBeInstanceOf(ConnectionError);
    expect((await d.query<{ one: number }>(`SELECT 1 AS one`)).rows).toEqual([{ one: 1 }]);
    await pool.end();
  });

  it('a connection of its own pool that breaks mid-statement fails the statement, not the process', async () => {
    const d = oneConnection();
    let raw: { connection: { stream: { destroy(err: Error): void } } } | undefined;
    (d.pool as unknown as pg.Pool).on('acquire', (c) => (raw = c as unknown as typeof raw));
    const running = d.query(`SELECT pg_sleep(5)`);
    await new Promise((r) => setTimeout(r, 100));
    raw!.connection.stream.destroy(
      Object.assign(new Error('read ECONNRESET (by the test)'), { code: 'ECONNRESET' }),
    );
    await expect(running).rejects.toBeInstanceOf(ConnectionError);
    expect((await d.query<{ one: number }>(`SELECT 1 AS one`)).rows).toEqual([{ one: 1 }]);
  });

  it('a pool passed in runs statements through its own query() (any object shaped like a pg.Pool)', async () => {
    const inner = testPool({ connectionString: db.url, max: 1 });
    // A wrapper with the promise forms only: no callback connect().
    const wrapper = {
      options: inner.options,
      query: (config: pg.QueryConfig) => inner.query(config),
      connect: () => inner.connect(),
      end: () => inner.end(),
      on: (event: 'error' | 'connect', listener: (arg: never) => void) =>
        inner.on(event as 'error', listener as (err: Error) => void),
    };
    const d = new PgDriver({ pool: wrapper });
    drivers.push(d);
    for (let i = 0; i < 3; i++) {
      await expect(d.query(`SELECT 1 / 0`)).rejects.toBeInstanceOf(DatabaseError);
      expect((await d.query<{ n: number }>(`SELECT $1::int AS n`, [i])).rows).toEqual([{ n: i }]);
    }
    expect(inner.totalCount).toBeLessThanOrEqual(1);
    await inner.end();
  });

  it('after an error, waits for the server to say ready before reusing the connection; a close instead gives it up', async () => {
    // Between driver and server: holds back (or replaces by a close) the
    // ReadyForQuery that follows the next ErrorResponse.
    const target = new URL(db.url);
    let arm: { holdMs: number } | { close: true } | undefined;
    let releasedAt = Infinity; // when the held ReadyForQuery went on to the driver
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const up = net.connect(Number(target.port || 5432), target.hostname);
      sockets.add(client).add(up);
      client.pipe(up);
      let buf = Buffer.alloc(0);
      let sawError = false;
      up.on('data', (chunk) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
          const msg = buf.subarray(0, 1 + buf.readInt32BE(1));
          buf = buf.subarray(msg.length);
          const type = String.fromCharCode(msg[0]!);
          if (type === 'E' && arm) sawError = true;
          if (type === 'Z' && sawError && arm) {
            const a = arm;
            arm = undefined;
            sawError = false;
            if ('close' in a) {
              client.destroy();
              up.destroy();
              return;
            }
            const rest = buf;
            buf = Buffer.alloc(0);
            setTimeout(() => {
              releasedAt = performance.now();
              if (!client.destroyed) client.write(Buffer.concat([msg, rest]));
            }, a.holdMs);
            continue;
          }
          if (!client.destroyed) client.write(msg);
        }
      });
      for (const s of [client, up]) s.on('error', () => undefined);
      client.on('close', () => up.destroy());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const via = new URL(db.url);
      via.hostname = '127.0.0.1';
      via.port = String((proxy.address() as net.AddressInfo).port);
      const d = new PgDriver({ connectionString: via.toString(), maxConnections: 1 });
      drivers.push(d);
      const before = await pid(d);

      arm = { holdMs: 1000 };
      const failing = d.query(`SELECT 1 / 0`).then(
        () => undefined,
        (e: unknown) => [e, performance.now()] as const,
      );
      const waiting = pid(d).then((p) => [p, performance.now()] as const);
      const [err, failedAt] = (await failing)!;
      expect(err).toBeInstanceOf(DatabaseError);
      expect(failedAt).toBeLessThan(releasedAt); // the error is answered at once
      const [samePid, servedAt] = await waiting;
      expect(samePid).toBe(before); // the connection was kept…
      expect(servedAt).toBeGreaterThanOrEqual(releasedAt); // …once the server said ready

      arm = { close: true };
      const failing2 = d.query(`SELECT 1 / 0`);
      const waiting2 = pid(d); // queued for the one connection meanwhile
      await expect(failing2).rejects.toBeInstanceOf(DatabaseError);
      expect(await waiting2).not.toBe(before); // no ReadyForQuery: given up, a new one serves
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => proxy.close(r));
    }
  });

  it('is given up when a prepared statement can no longer run as cached, and the next one works', async () => {
    const d = oneConnection();
    const t = `reuse_${process.pid}_${Date.now()}`;
    await d.query(`CREATE TABLE ${t} (id int)`);
    await d.query(`INSERT INTO ${t} VALUES (1)`);
    const read = (): Promise<{ rows: Record<string, unknown>[] }> =>
      d.query(`SELECT * FROM ${t}`, [], { prepare: true });
    expect((await read()).rows).toEqual([{ id: 1 }]);
    const before = await pid(d);
    await d.query(`ALTER TABLE ${t} ADD COLUMN v text DEFAULT 'x'`);
    // "cached plan must not change result type" (0A000): this session cannot run it again.
    const err = await read().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatabaseError);
    expect((err as DatabaseError).sqlState).toBe('0A000');
    expect((await read()).rows).toEqual([{ id: 1, v: 'x' }]);
    expect(await pid(d)).not.toBe(before);
    await d.query(`DROP TABLE ${t}`);
  });
});
