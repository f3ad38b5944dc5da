/**
 * The driver conformance suite (River's `riverdrivertest.Exercise`): one set
 * of cases every `Driver` must pass. Each driver's test file builds a
 * `DriverTarget` and calls `exerciseDriver`. A capability a driver genuinely
 * lacks (PGlite has one in-process session) is declared in the target, and
 * the case then asserts the documented alternative behaviour instead.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { Driver, Executor, Queryable } from '../../src/driver/types.js';
import { execute } from '../../src/driver/types.js';
import {
  ConnectionError,
  DatabaseError,
  InvalidArgumentError,
  PgferryError,
  QueueNotFoundError,
} from '../../src/errors.js';
import { eventually } from '../support/db.js';

export interface DriverCapabilities {
  /**
   * The driver has more than one database session: a pool of query
   * connections plus a dedicated LISTEN connection. False for PGlite, whose
   * only session runs queries, transactions (serialised) and LISTEN alike.
   */
  separateSessions: boolean;
  /** A backend of the driver can be killed with pg_terminate_backend from another session. */
  terminateBackend: boolean;
  /** `{ prepare: true }` leaves a server-side prepared statement on the connection. */
  serverPreparedStatements: boolean;
}

export interface MakeDriverOptions {
  /** application_name for every connection the driver opens (to find them in pg_stat_activity). */
  applicationName: string;
  /** Pool size. */
  maxConnections: number;
}

export interface DriverTarget {
  capabilities: DriverCapabilities;
  /** A new driver on the test database (the suite closes it). */
  makeDriver(options: MakeDriverOptions): Promise<Driver> | Driver;
  /**
   * Runs `fn` inside a transaction of a client pgferry did not create, handed
   * over as a foreign executor; commits when `fn` resolves, rolls back when it throws.
   */
  foreignTransaction<T>(fn: (tx: Executor) => Promise<T>): Promise<T>;
  /** SQL on a session outside the driver under test (the same database). Null when there is none (PGlite). */
  admin: ((text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>) | null;
}

const uid = (): string => randomBytes(4).toString('hex');

export function exerciseDriver(name: string, getTarget: () => DriverTarget): void {
  describe(`driver conformance: ${name}`, () => {
    const drivers: Driver[] = [];
    let shared: Driver | undefined;
    const make = async (options: Partial<MakeDriverOptions> = {}): Promise<Driver> => {
      const d = await getTarget().makeDriver({
        applicationName: options.applicationName ?? `pgferry_conf_${uid()}`,
        maxConnections: options.maxConnections ?? 3,
      });
      drivers.push(d);
      return d;
    };
    const driver = async (): Promise<Driver> => (shared ??= await make());
    const caps = (): DriverCapabilities => getTarget().capabilities;
    /** A fresh table for one case. */
    const table = async (d: Queryable): Promise<string> => {
      const t = `conf_${uid()}`;
      await d.query(`CREATE TABLE ${t} (id bigint PRIMARY KEY, v text)`);
      return t;
    };
    const count = async (d: Queryable, t: string): Promise<number> =>
      Number((await d.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n);

    afterAll(async () => {
      for (const d of drivers) await d.close();
    });

    describe('query', () => {
      it('sends parameters as node-postgres does and returns its result types', async () => {
        const d = await driver();
        const at = new Date('2024-02-29T12:34:56.789Z');
        const res = await d.query<Record<string, unknown>>(
          `SELECT $1::bigint AS big, 9007199254740993::bigint AS huge, 42::int AS small, 1.5::float8 AS f,
                  12.50::numeric AS num, true AS yes, $2::jsonb AS doc, $3::timestamptz AS at,
                  $4::int[] AS ints, $5::text[] AS texts, ARRAY[1, 2]::bigint[] AS big_ids,
                  $6::text AS nothing, $7::text AS uni, $8::jsonb[] AS docs, $9::bigint[] AS id_param,
                  $10::jsonb AS obj, $11::int AS num_param, $12::jsonb AS json_string,
                  ARRAY[$3::timestamptz, NULL] AS ats, ARRAY[true, NULL, false] AS bools,
                  ARRAY['{"a":1}'::jsonb, NULL] AS doc_list, ARRAY[1.5::float8, NULL] AS floats`,
          [
            '9007199254740993',
            '{"a":1,"b":[true,null]}',
            at,
            [1, 2, 3],
            ['plain', 'with "quotes" and \\ backslash', null, ''],
            null,
            'ünïcödé ✓ 日本語 🚀',
            ['{"k":"v"}', '2', 'null'],
            [5, 6],
            { nested: { x: 1 } },
            7,
            '"just a string"',
          ],
        );
        expect(res.rowCount).toBe(1);
        const row = res.rows[0]!;
        expect(row.big).toBe('9007199254740993');
        expect(row.huge).toBe('9007199254740993');
        expect(row.small).toBe(42);
        expect(row.f).toBe(1.5);
        expect(row.num).toBe('12.50');
        expect(row.yes).toBe(true);
        expect(row.doc).toEqual({ a: 1, b: [true, null] });
        expect(row.at).toBeInstanceOf(Date);
        expect((row.at as Date).toISOString()).toBe(at.toISOString());
        expect(row.ints).toEqual([1, 2, 3]);
        expect(row.texts).toEqual(['plain', 'with "quotes" and \\ backslash', null, '']);
        expect(row.big_ids).toEqual(['1', '2']);
        expect(row.nothing).toBeNull();
        expect(row.uni).toBe('ünïcödé ✓ 日本語 🚀');
        expect(row.docs).toEqual([{ k: 'v' }, 2, null]);
        expect(row.id_param).toEqual(['5', '6']);
        expect(row.obj).toEqual({ nested: { x: 1 } });
        expect(row.num_param).toBe(7);
        // A JSON text is stored as what it encodes, never encoded a second time.
        expect(row.json_string).toBe('just a string');
        expect(row.ats).toEqual([at, null]);
        expect(row.bools).toEqual([true, null, false]);
        expect(row.doc_list).toEqual([{ a: 1 }, null]);
        expect(row.floats).toEqual([1.5, null]);
      });

      it('round-trips a 1 MB jsonb value', async () => {
        const d = await driver();
        const big = {
          blob: 'x'.repeat(1 << 20),
          unicode: 'ü🚀',
          list: Array.from({ length: 1000 }, (_, i) => i),
        };
        const res = await d.query<{ doc: unknown; bytes: number }>(
          `SELECT $1::jsonb AS doc, octet_length($1::jsonb::text) AS bytes`,
          [JSON.stringify(big)],
        );
        expect(res.rows[0]!.bytes).toBeGreaterThan(1 << 20);
        expect(res.rows[0]!.doc).toEqual(big);
      });

      it('reports rowCount for INSERT, UPDATE, DELETE and SELECT; runs parameterless scripts', async () => {
        const d = await driver();
        const t = await table(d);
        const ins = await d.query(
          `INSERT INTO ${t} (id, v) SELECT g, 'v' || g FROM generate_series(1, 3) g`,
        );
        expect(ins.rowCount).toBe(3);
        expect(ins.rows).toEqual([]);
        expect((await d.query(`UPDATE ${t} SET v = $1 WHERE id <= $2`, ['u', 2])).rowCount).toBe(2);
        const sel = await d.query<{ id: string; v: string }>(`SELECT id, v FROM ${t} ORDER BY id`);
        expect(sel.rowCount).toBe(3);
        expect(sel.rows).toEqual([
          { id: '1', v: 'u' },
          { id: '2', v: 'u' },
          { id: '3', v: 'v3' },
        ]);
        expect((await d.query(`DELETE FROM ${t} WHERE id = $1 RETURNING id`, [3])).rows).toEqual([
          { id: '3' },
        ]);
        // Migrations are multi-statement scripts without parameters.
        await d.query(`INSERT INTO ${t} VALUES (10, 'a'); INSERT INTO ${t} VALUES (11, 'b');`);
        expect(await count(d, t)).toBe(4);
      });

      it('answers many concurrent queries each with its own result', async () => {
        const d = await driver();
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) =>
            d.query<{ n: number; s: string }>(`SELECT $1::int AS n, $2::text AS s`, [i, `s${i}`]),
          ),
        );
        results.forEach((r, i) => expect(r.rows).toEqual([{ n: i, s: `s${i}` }]));
      });
    });

    describe('prepared statements ({ prepare: true })', () => {
      it('runs the same text repeatedly and different texts side by side', async () => {
        const d = await driver();
        const a = `SELECT $1::int + 1 AS n`;
        const b = `SELECT $1::text || '!' AS s`;
        for (let i = 0; i < 25; i++) {
          const [ra, rb] = await Promise.all([
            d.query<{ n: number }>(a, [i], { prepare: true }),
            d.query<{ s: string }>(b, [`x${i}`], { prepare: true }),
          ]);
          expect(ra.rows[0]!.n).toBe(i + 1);
          expect(rb.rows[0]!.s).toBe(`x${i}!`);
        }
        // The same text unprepared, and a prepared statement that fails and is then reused.
        expect((await d.query<{ n: number }>(a, [100])).rows[0]!.n).toBe(101);
        const div = `SELECT 10 / $1::int AS q`;
        await expect(d.query(div, [0], { prepare: true })).rejects.toMatchObject({
          sqlState: '22012',
        });
        expect((await d.query<{ q: number }>(div, [5], { prepare: true })).rows[0]!.q).toBe(2);
      });

      it('prepares on the server where the driver can, and is exact either way', async () => {
        const d = await driver();
        const text = `SELECT $1::bigint * 2 AS twice /* ${uid()} */`;
        const found = await d.transaction(async (tx) => {
          const r1 = await tx.query<{ twice: string }>(text, [21], { prepare: true });
          const r2 = await tx.query<{ twice: string }>(text, [50], { prepare: true });
          expect([r1.rows[0]!.twice, r2.rows[0]!.twice]).toEqual(['42', '100']);
          const ps = await tx.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_prepared_statements WHERE statement = $1`,
            [text],
          );
          return Number(ps.rows[0]!.n);
        });
        expect(found).toBe(caps().serverPreparedStatements ? 1 : 0);
      });
    });

    describe('errors', () => {
      it('maps database errors to pgferry classes and keeps the SQLSTATE and cause', async () => {
        const d = await driver();
        const t = await table(d);
        await d.query(`INSERT INTO ${t} VALUES (1, 'a')`);
        const cases: [() => Promise<unknown>, new (...a: never[]) => PgferryError, string][] = [
          [() => d.query(`SELECT 1 / 0`), DatabaseError, '22012'],
          [() => d.query(`INSERT INTO ${t} VALUES ($1, 'dup')`, [1]), DatabaseError, '23505'],
          [() => d.query(`SELECT $1::int`, ['not a number']), InvalidArgumentError, '22P02'],
          [() => d.query(`SELECT * FROM q_no_such_queue_${uid()}`), QueueNotFoundError, '42P01'],
          [() => d.query(`SELEC 1`), DatabaseError, '42601'],
          [() => d.query(`SELECT 1 / $1::int`, [0], { prepare: true }), DatabaseError, '22012'],
          [
            () => d.query(`DO $$ BEGIN RAISE EXCEPTION 'custom' USING ERRCODE = 'P0001'; END $$`),
            InvalidArgumentError,
            'P0001',
          ],
        ];
        for (const [run, cls, state] of cases) {
          const err = await run().then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(err, state).toBeInstanceOf(cls);
          expect((err as PgferryError).sqlState).toBe(state);
          expect((err as PgferryError).cause).toBeDefined();
        }
        // The driver is still usable after errors.
        expect((await d.query<{ one: number }>(`SELECT 1 AS one`)).rows).toEqual([{ one: 1 }]);
      });

      it('keeps its pooled connection after ordinary SQL errors', async () => {
        // A reconnect (and the re-preparation of every statement) per failed
        // statement would turn a burst of constraint errors or lock timeouts
        // into a reconnect storm.
        const d = await make({ maxConnections: 1 });
        const t = await table(d);
        const pid = async (): Promise<number> =>
          Number((await d.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid);
        const before = await pid();
        await d.query(`INSERT INTO ${t} VALUES (1, 'a')`);
        const failing = [
          () => d.query(`SELECT 1 / 0`),
          () => d.query(`INSERT INTO ${t} VALUES ($1, 'dup')`, [1]),
          () => d.query(`SELECT 1 / $1::int`, [0], { prepare: true }),
          () => d.query(`DO $$ BEGIN RAISE EXCEPTION 'custom' USING ERRCODE = 'PF999'; END $$`),
          () => d.query(`SELECT * FROM no_such_table_${uid()}`),
        ];
        for (const run of failing) {
          await expect(run()).rejects.toBeInstanceOf(PgferryError);
          expect(await pid()).toBe(before);
        }
        // The statement that failed once runs on the same connection when it can.
        expect(
          (await d.query<{ q: number }>(`SELECT 4 / $1::int AS q`, [2], { prepare: true })).rows,
        ).toEqual([{ q: 2 }]);
        expect(await pid()).toBe(before);
        expect(await count(d, t)).toBe(1);
      });

      it('maps errors raised inside a transaction', async () => {
        const d = await driver();
        const err = await d
          .transaction((tx) => tx.query(`SELECT 'x'::int`))
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(err).toBeInstanceOf(InvalidArgumentError);
        expect((err as PgferryError).sqlState).toBe('22P02');
      });
    });

    describe('transactions', () => {
      it('commits and returns the callback result', async () => {
        const d = await driver();
        const t = await table(d);
        const out = await d.transaction(async (tx) => {
          await tx.query(`INSERT INTO ${t} VALUES ($1, $2)`, [1, 'one']);
          await tx.query(`INSERT INTO ${t} VALUES ($1, $2)`, [2, 'two'], { prepare: true });
          return (await tx.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n;
        });
        expect(out).toBe('2');
        expect(await count(d, t)).toBe(2);
      });

      it('rolls back when the callback throws and rethrows the same error', async () => {
        const d = await driver();
        const t = await table(d);
        const boom = new Error('boom');
        await expect(
          d.transaction(async (tx) => {
            await tx.query(`INSERT INTO ${t} VALUES (1, 'x')`);
            throw boom;
          }),
        ).rejects.toBe(boom);
        await expect(
          d.transaction(async (tx) => {
            await tx.query(`INSERT INTO ${t} VALUES (2, 'x')`);
            await tx.query(`INSERT INTO ${t} VALUES (2, 'dup')`);
          }),
        ).rejects.toMatchObject({ sqlState: '23505' });
        expect(await count(d, t)).toBe(0);
      });

      it('isolates an open transaction from other statements (or serialises them)', async () => {
        const d = await driver();
        const t = await table(d);
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        let inserted!: () => void;
        const didInsert = new Promise<void>((r) => (inserted = r));
        const tx = d.transaction(async (q) => {
          await q.query(`INSERT INTO ${t} VALUES (1, 'pending')`);
          inserted();
          await gate;
        });
        await didInsert;
        const outside = count(d, t);
        if (caps().separateSessions) {
          // Another pool connection does not see the uncommitted row.
          expect(await outside).toBe(0);
          release();
          await tx;
        } else {
          // One session: the statement waits for the transaction and then sees its commit.
          let settled = false;
          void outside.then(() => (settled = true));
          await Promise.resolve();
          expect(settled).toBe(false);
          release();
          await tx;
          expect(await outside).toBe(1);
        }
        expect(await count(d, t)).toBe(1);
      });

      it('runs concurrent transactions to completion', async () => {
        const d = await driver();
        const t = await table(d);
        await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            d.transaction(async (tx) => {
              await tx.query(`INSERT INTO ${t} VALUES ($1, 'a')`, [i]);
              await tx.query(`UPDATE ${t} SET v = 'b' WHERE id = $1`, [i], { prepare: true });
            }),
          ),
        );
        expect(
          (await d.query<{ n: string }>(`SELECT count(*) AS n FROM ${t} WHERE v = 'b'`)).rows[0]!.n,
        ).toBe('8');
      });
    });

    describe('a foreign client passed as tx', () => {
      it('runs statements through execute() inside the caller’s transaction: commit and rollback', async () => {
        const d = await driver();
        const t = await table(d);
        const target = getTarget();
        const seen = await target.foreignTransaction(async (tx) => {
          await execute(tx, `INSERT INTO ${t} VALUES ($1, $2)`, [1, 'committed']);
          const r = await execute<{ doc: unknown; id: string }>(
            tx,
            `SELECT $1::jsonb AS doc, id FROM ${t}`,
            ['{"a":[1]}'],
          );
          return r.rows;
        });
        expect(seen).toEqual([{ doc: { a: [1] }, id: '1' }]);
        const boom = new Error('caller rolls back');
        await expect(
          target.foreignTransaction(async (tx) => {
            await execute(tx, `INSERT INTO ${t} VALUES ($1, $2)`, [2, 'rolled back']);
            throw boom;
          }),
        ).rejects.toBe(boom);
        expect((await d.query<{ id: string }>(`SELECT id FROM ${t}`)).rows).toEqual([{ id: '1' }]);
      });
    });

    describe('listen', () => {
      it('delivers notifications with their payloads', async () => {
        const d = await driver();
        const channel = `conf.Chan_${uid()}.INSERT`;
        const got: (string | undefined)[] = [];
        const sub = await d.listen(channel, (p) => got.push(p));
        await d.query(`SELECT pg_notify($1, $2)`, [channel, 'hello ü🚀']);
        await d.query(`SELECT pg_notify($1, '')`, [channel]);
        await d.transaction(async (tx) => {
          await tx.query(`SELECT pg_notify($1, 'from a transaction')`, [channel]);
        });
        await eventually(() => got.length >= 3);
        expect(got).toEqual(['hello ü🚀', undefined, 'from a transaction']);
        await sub.close();
      });

      it('listens on a dedicated connection, not one of the pool’s', async () => {
        const applicationName = `pgferry_conf_${uid()}`;
        const maxConnections = 2;
        const d = await make({ applicationName, maxConnections });
        const channel = `conf_dedicated_${uid()}`;
        const got: (string | undefined)[] = [];
        const sub = await d.listen(channel, (p) => got.push(p));
        const admin = getTarget().admin;
        if (caps().separateSessions && admin) {
          // Hold every pool connection inside an open transaction…
          let release!: () => void;
          const gate = new Promise<void>((r) => (release = r));
          const pids: number[] = [];
          const holding = Array.from({ length: maxConnections }, () =>
            d.transaction(async (tx) => {
              pids.push(
                (await tx.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`)).rows[0]!.pid,
              );
              await gate;
            }),
          );
          await eventually(() => pids.length === maxConnections);
          // …and a notification still arrives: it comes over another connection.
          await admin(`SELECT pg_notify($1, 'while the pool is busy')`, [channel]);
          await eventually(() => got.length === 1);
          expect(got).toEqual(['while the pool is busy']);
          const listeners = await admin(
            `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'`,
            [applicationName],
          );
          expect(listeners).toHaveLength(1);
          expect(pids).not.toContain(listeners[0]!.pid);
          expect(new Set(pids).size).toBe(maxConnections);
          release();
          await Promise.all(holding);
        } else {
          // PGlite: the only session listens; the channel is registered there
          // and notifications arrive after the statement that sent them.
          const ch = await d.query<{ c: string }>(`SELECT pg_listening_channels() AS c`);
          expect(ch.rows.map((r) => r.c)).toContain(channel);
          await d.query(`SELECT pg_notify($1, 'same session')`, [channel]);
          await eventually(() => got.length === 1);
          expect(got).toEqual(['same session']);
        }
        await sub.close();
      });

      it('stops delivering after Subscription.close(), keeping other handlers', async () => {
        const d = await driver();
        const channel = `conf_unlisten_${uid()}`;
        const barrier = `conf_barrier_${uid()}`;
        const closedGot: string[] = [];
        const keptGot: string[] = [];
        const barrierGot: string[] = [];
        const closing = await d.listen(channel, (p) => closedGot.push(p ?? ''));
        const kept = await d.listen(channel, (p) => keptGot.push(p ?? ''));
        const bar = await d.listen(barrier, (p) => barrierGot.push(p ?? ''));
        await d.query(`SELECT pg_notify($1, 'one')`, [channel]);
        await eventually(() => closedGot.length === 1 && keptGot.length === 1);
        await closing.close();
        await closing.close(); // idempotent
        await d.query(`SELECT pg_notify($1, 'two')`, [channel]);
        // 'two' reached the kept handler, on the same dispatch the closed one would have had it.
        await eventually(() => keptGot.length === 2);
        await kept.close();
        await d.query(`SELECT pg_notify($1, 'three')`, [channel]);
        // Notifications arrive in order on one connection: once the barrier's
        // has arrived, any later-closed channel's would have too.
        await d.query(`SELECT pg_notify($1, 'barrier')`, [barrier]);
        await eventually(() => barrierGot.length === 1);
        expect(closedGot).toEqual(['one']);
        expect(keptGot).toEqual(['one', 'two']);
        await bar.close();
        if (!caps().separateSessions) {
          const ch = await d.query<{ c: string }>(`SELECT pg_listening_channels() AS c`);
          expect(ch.rows.map((r) => r.c)).not.toContain(channel);
        }
      });

      it('re-establishes LISTEN after its connection is killed', async () => {
        const applicationName = `pgferry_conf_${uid()}`;
        const d = await make({ applicationName });
        const channel = `conf_reconnect_${uid()}`;
        const got: (string | undefined)[] = [];
        const sub = await d.listen(channel, (p) => got.push(p));
        const admin = getTarget().admin;
        if (caps().terminateBackend && admin) {
          const findListener = async (): Promise<number | undefined> => {
            const rows = await admin(
              `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND query ILIKE 'LISTEN%'`,
              [applicationName],
            );
            return rows[0]?.pid as number | undefined;
          };
          const before = await eventually(findListener);
          const killed = await admin(`SELECT pg_terminate_backend($1) AS ok`, [before]);
          expect(killed[0]!.ok).toBe(true);
          // Keep notifying until one gets through the re-established LISTEN.
          await eventually(
            async () => {
              await admin(`SELECT pg_notify($1, 'after reconnect')`, [channel]);
              return got.includes('after reconnect');
            },
            10_000,
            50,
          );
          const after = await findListener();
          expect(after).toBeDefined();
          expect(after).not.toBe(before);
        } else {
          // PGlite: there is no other backend; its own cannot be terminated,
          // and the subscription keeps working.
          const r = await d.query<{ ok: boolean }>(
            `SELECT pg_terminate_backend(pg_backend_pid()) AS ok`,
          );
          expect(r.rows[0]!.ok).toBe(false);
          await d.query(`SELECT pg_notify($1, 'still here')`, [channel]);
          await eventually(() => got.includes('still here'));
        }
        await sub.close();
      });
    });

    describe('close', () => {
      it('is idempotent, leaves no connections and refuses further work', async () => {
        const applicationName = `pgferry_conf_${uid()}`;
        const d = await make({ applicationName });
        await d.query(`SELECT 1`);
        await d.transaction((tx) => tx.query(`SELECT 1`));
        await d.listen(`conf_close_${uid()}`, () => undefined);
        const admin = getTarget().admin;
        const connections = async (): Promise<number> =>
          Number(
            (
              await admin!(
                `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1`,
                [applicationName],
              )
            )[0]!.n,
          );
        if (admin) expect(await connections()).toBeGreaterThanOrEqual(2);
        await Promise.all([d.close(), d.close()]);
        await d.close();
        if (admin) await eventually(async () => (await connections()) === 0);
        const err = await d.query(`SELECT 1`).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(Error);
        if (!caps().separateSessions) expect(err).toBeInstanceOf(ConnectionError);
      });
    });
  });
}
