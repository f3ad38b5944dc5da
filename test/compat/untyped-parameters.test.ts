// What PostgreSQL infers for the parameters of the statements other clients
// send, read back from pg_prepared_statements after PREPARE. asyncpg (pgmq-py's
// async client) encodes every argument with the type inferred here, so an
// int sent where `text` was inferred fails in the client ("expected str, got
// int"); node-postgres sends text for every untyped parameter, which any
// inferred type accepts. See docs/compatibility.md, "Untyped parameters".
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';

const db = useTestDatabase();
const S = db.queueSchema;
let c: pg.PoolClient;

beforeAll(async () => {
  c = await db.pool.connect();
  await c.query(`SELECT ${S}.create('infer')`);
});
afterAll(() => c.release());

/** The parameter types PostgreSQL infers for `statement` (PREPAREd, then deallocated). */
async function inferred(statement: string): Promise<string[]> {
  await c.query(`PREPARE p AS ${statement}`);
  try {
    const r = await c.query<{ t: string[] }>(
      `SELECT parameter_types::text[] AS t FROM pg_prepared_statements WHERE name = 'p'`,
    );
    return r.rows[0]!.t;
  } finally {
    await c.query('DEALLOCATE p');
  }
}

const TSTZ = 'timestamp with time zone';

// Every statement shape of pgmq-py 1.0.x's async client (src/pgmq/async_queue.py:
// asyncpg, `$n` placeholders, Python ints and strs as arguments).
const PGMQ_PY_1_0: [string, string[]][] = [
  [`SELECT pgmq.create(queue_name=>$1)`, ['text']],
  [`SELECT pgmq.create_unlogged(queue_name=>$1)`, ['text']],
  [
    `SELECT pgmq.create_partitioned(queue_name=>$1, partition_interval=>$2::text, retention_interval=>$3::text)`,
    ['text', 'text', 'text'],
  ],
  [`SELECT pgmq.validate_queue_name(queue_name=>$1)`, ['text']],
  [`SELECT pgmq.drop_queue(queue_name=>$1, partitioned=>$2)`, ['text', 'boolean']],
  [`SELECT queue_name FROM pgmq.list_queues()`, []],
  [`SELECT * FROM pgmq.send(queue_name=>$1::text, msg=>$2::jsonb)`, ['text', 'jsonb']],
  [
    `SELECT * FROM pgmq.send(queue_name=>$1::text, msg=>$2::jsonb, delay=>$3::integer)`,
    ['text', 'jsonb', 'integer'],
  ],
  [
    `SELECT * FROM pgmq.send(queue_name=>$1::text, msg=>$2::jsonb, delay=>$3::timestamptz)`,
    ['text', 'jsonb', TSTZ],
  ],
  [`SELECT * FROM pgmq.send_batch(queue_name=>$1, msgs=>$2::jsonb[])`, ['text', 'jsonb[]']],
  [
    `SELECT * FROM pgmq.send_batch(queue_name=>$1, msgs=>$2::jsonb[], delay=>$3::integer)`,
    ['text', 'jsonb[]', 'integer'],
  ],
  [
    `SELECT * FROM pgmq.send_batch(queue_name=>$1, msgs=>$2::jsonb[], delay=>$3::timestamptz)`,
    ['text', 'jsonb[]', TSTZ],
  ],
  [
    `SELECT * FROM pgmq.read(queue_name=>$1::text, vt=>$2::integer, qty=>$3::integer)`,
    ['text', 'integer', 'integer'],
  ],
  [
    `SELECT * FROM pgmq.read_with_poll(queue_name=>$1, vt=>$2, qty=>$3, max_poll_seconds=>$4, poll_interval_ms=>$5)`,
    ['text', 'integer', 'integer', 'integer', 'integer'],
  ],
  [`SELECT * FROM pgmq.pop(queue_name=>$1)`, ['text']],
  [`SELECT pgmq.delete(queue_name=>$1::text, msg_id=>$2::int)`, ['text', 'integer']],
  [`SELECT * FROM pgmq.delete(queue_name=>$1::text, msg_ids=>$2::int[])`, ['text', 'integer[]']],
  [`SELECT pgmq.archive(queue_name=>$1::text, msg_id=>$2::int)`, ['text', 'integer']],
  [`SELECT * FROM pgmq.archive(queue_name=>$1::text, msg_ids=>$2::int[])`, ['text', 'integer[]']],
  [`SELECT pgmq.purge_queue(queue_name=>$1)`, ['text']],
  [`SELECT * FROM pgmq.metrics(queue_name=>$1)`, ['text']],
  [`SELECT * FROM pgmq.metrics_all()`, []],
  [`SELECT pgmq.detach_archive(queue_name=>$1)`, ['text']],
];

// pgmq-js (npm, the version in devDependencies): positional, mostly untyped.
const PGMQ_JS: [string, string[]][] = [
  [`SELECT pgmq.create($1)`, ['text']],
  [`SELECT pgmq.create_unlogged($1)`, ['text']],
  [`SELECT pgmq.drop_queue($1)`, ['text']],
  [`SELECT * FROM pgmq.list_queues()`, []],
  [`SELECT * FROM pgmq.send($1::text, $2::jsonb, $3::integer)`, ['text', 'jsonb', 'integer']],
  [
    `SELECT * FROM pgmq.send_batch($1::text, $2::jsonb[], $3::integer)`,
    ['text', 'jsonb[]', 'integer'],
  ],
  [`SELECT * FROM pgmq.read($1, $2, $3)`, ['text', 'text', 'integer']],
  [`SELECT * FROM pgmq.pop($1)`, ['text']],
  [`SELECT * FROM pgmq.set_vt($1, $2, $3)`, ['text', 'text', 'text']],
  [`SELECT pgmq.archive($1, $2::bigint)`, ['text', 'bigint']],
  [`SELECT * FROM pgmq.archive($1, $2::bigint[])`, ['text', 'bigint[]']],
  [`SELECT pgmq.delete($1, $2::bigint)`, ['text', 'bigint']],
  [`SELECT * FROM pgmq.delete($1, $2::bigint[])`, ['text', 'bigint[]']],
  [`SELECT pgmq.purge_queue($1)`, ['text']],
  [`SELECT pgmq.detach_archive($1)`, ['text']],
  [`SELECT * FROM pgmq.metrics($1)`, ['text']],
  [`SELECT * FROM pgmq.metrics_all()`, []],
];

const inSchema = (sql: string) => sql.replaceAll('pgmq.', `${S}.`);
/** Test cases named by the statement with `?` for its placeholders (vitest reads `$1` in titles). */
const cases = (list: [string, string[]][]) =>
  list.map(([statement, types]) => ({
    label: statement.replace(/\$(\d)/g, '?$1'),
    statement,
    types,
  }));

describe('parameter types inferred at PREPARE', () => {
  it('read_with_poll called by name with untyped parameters (pgmq-py 1.0, pipecat) infers text, then integers', async () => {
    expect(
      await inferred(
        `SELECT * FROM ${S}.read_with_poll(queue_name=>$1, vt=>$2, qty=>$3, max_poll_seconds=>$4, poll_interval_ms=>$5)`,
      ),
    ).toEqual(['text', 'integer', 'integer', 'integer', 'integer']);
    // And the prepared statement reads with integer arguments.
    await c.query(`SELECT ${S}.send('infer', '{"k":1}'::jsonb)`);
    await c.query(
      `PREPARE p AS SELECT msg_id FROM ${S}.read_with_poll(queue_name=>$1, vt=>$2, qty=>$3, max_poll_seconds=>$4, poll_interval_ms=>$5)`,
    );
    try {
      const r = await c.query(`EXECUTE p('infer', 30, 1, 1, 10)`);
      expect(r.rows).toHaveLength(1);
    } finally {
      await c.query('DEALLOCATE p');
    }
  });

  it.each(cases(PGMQ_PY_1_0))('pgmq-py 1.0 async: $label', async ({ statement, types }) => {
    expect(await inferred(inSchema(statement))).toEqual(types);
  });

  it.each(cases(PGMQ_JS))('pgmq-js: $label', async ({ statement, types }) => {
    expect(await inferred(inSchema(statement))).toEqual(types);
  });

  it('pgmq-py 1.0 set_vt by name infers text for vt: the timestamptz form pgmq-py 1.1 calls by name keeps it from integer', async () => {
    // Documented limitation (docs/compatibility.md): same as against PGMQ,
    // where this call is ambiguous.
    expect(await inferred(`SELECT * FROM ${S}.set_vt(queue_name=>$1, msg_id=>$2, vt=>$3)`)).toEqual(
      ['text', 'text', 'text'],
    );
    expect(
      await inferred(
        `SELECT * FROM ${S}.set_vt(queue_name=>$1::text, msg_id=>$2::bigint, vt=>$3::timestamptz)`,
      ),
    ).toEqual(['text', 'bigint', TSTZ]);
  });
});

describe('calls that keep working', () => {
  it('typed timestamptz reads, by position and by name; read_with_poll\u2019s timestamptz form by position', async () => {
    await c.query(`SELECT ${S}.send('infer', '{"k":2}'::jsonb)`);
    const at = new Date(Date.now() + 60_000);
    const byPos = await c.query(`SELECT vt FROM ${S}.read($1, $2::timestamptz, 1)`, ['infer', at]);
    const byName = await c.query(
      `SELECT vt FROM ${S}.read(queue_name=>$1, vt=>$2::timestamptz, qty=>1)`,
      ['infer', at],
    );
    const poll = await c.query(`SELECT vt FROM ${S}.read_with_poll($1, $2::timestamptz, 10, 0)`, [
      'infer',
      at,
    ]);
    expect(byPos.rows.length + byName.rows.length).toBeGreaterThanOrEqual(1);
    for (const r of [...byPos.rows, ...byName.rows]) expect(r.vt).toEqual(at);
    expect(poll.rows).toEqual([]); // max_poll_seconds 0: empty at once (reference quirk)
  });

  it('node-postgres untyped calls: positional read/read_with_poll/set_vt and named read_with_poll', async () => {
    const [id] = (
      await c.query<{ id: string }>(`SELECT ${S}.send('infer', '{"k":3}'::jsonb) AS id`)
    ).rows.map((r) => r.id);
    await c.query(`SELECT ${S}.set_vt($1, $2, $3)`, ['infer', id, 0]);
    const polled = await c.query(`SELECT msg_id FROM ${S}.read_with_poll($1, $2, $3, $4, $5)`, [
      'infer',
      0,
      10,
      1,
      10,
    ]);
    expect(polled.rows.map((r) => r.msg_id)).toContain(id);
    const named = await c.query(
      `SELECT msg_id FROM ${S}.read_with_poll(queue_name=>$1, vt=>$2, qty=>$3, max_poll_seconds=>$4, poll_interval_ms=>$5)`,
      ['infer', 0, 10, 1, 10],
    );
    expect(named.rows.map((r) => r.msg_id)).toContain(id);
    const read = await c.query(`SELECT msg_id FROM ${S}.read($1, $2, $3)`, ['infer', 30, 10]);
    expect(read.rows.map((r) => r.msg_id)).toContain(id);
  });

  it('read_with_poll\u2019s timestamptz form takes no named arguments (deliberate, see docs)', async () => {
    await expectSqlError(
      c.query(
        `SELECT * FROM ${S}.read_with_poll(queue_name=>'infer', vt=>now() + interval '1 min', qty=>1)`,
      ),
      '42883',
    );
  });
});
