import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { useTestDatabase } from '../support/db.js';
import {
  InvalidArgumentError,
  InvalidQueueNameError,
  PgferryError,
  QueueClient,
} from '../../src/index.js';
import { TaskClient } from '../../src/tasks/client.js';
import { defineTask } from '../../src/tasks/define.js';
import { StreamClient } from '../../src/stream/client.js';
import { MAX_JSON_BYTES } from '../../src/payload.js';

const db = useTestDatabase();
const S = db.queueSchema;

function queues(): QueueClient {
  return db.track(new QueueClient({ connectionString: db.url, schema: S }));
}

async function rejection(p: Promise<unknown>): Promise<PgferryError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PgferryError);
    return err as PgferryError;
  }
  throw new Error('expected a rejection');
}

async function count(table: string): Promise<number> {
  const [r] = await db.sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return r!.n;
}

describe('payloads: one JSON rule for queue, tasks and streams', () => {
  it('NaN and ±Infinity are refused (not stored as null), naming where they are', async () => {
    const q = queues();
    await q.createQueue('nums');
    const cases: [Promise<unknown>, RegExp][] = [
      [q.send('nums', { a: NaN }), /^message\.a is NaN/],
      [q.send('nums', [1, Infinity]), /^message\[1\] is NaN/],
      [q.send('nums', 1, { headers: { h: -Infinity } }), /^headers\.h is NaN/],
      [q.sendBatch('nums', [1, { x: { y: NaN } }]), /^messages\[1\]\.x\.y is NaN/],
    ];
    for (const [p, msg] of cases) {
      const err = await rejection(p);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.message).toMatch(msg);
    }
    expect(await count(`${S}.q_nums`)).toBe(0);
    // null itself and finite numbers are fine.
    await q.send('nums', { a: null, b: 1.5 });
    expect(await count(`${S}.q_nums`)).toBe(1);
  });

  it('a NUL character in a message, a header, a key is refused up front (22P05 never reached)', async () => {
    const q = queues();
    await q.createQueue('nul');
    for (const p of [
      q.send('nul', 'a\u0000b'),
      q.send('nul', { ['k\u0000']: 1 }),
      q.send('nul', 1, { headers: { h: '\u0000' } }),
      q.sendBatch('nul', [1, 'x\u0000']),
    ]) {
      const err = await rejection(p);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.message).toMatch(/NUL character/);
      expect(err.sqlState).toBeUndefined();
    }
    expect(await count(`${S}.q_nul`)).toBe(0);
    // A backslash followed by "u0000" is ordinary text, not a NUL.
    await q.send('nul', 'a\\u0000b');
    const [m] = await q.read('nul');
    expect(m!.message).toBe('a\\u0000b');
  });

  it('JSON text over the 256 MB jsonb limit is refused before it is sent', async () => {
    const q = queues();
    await q.createQueue('huge');
    const err = await rejection(q.send('huge', 'x'.repeat(MAX_JSON_BYTES)));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err.message).toMatch(/over PostgreSQL's jsonb limit/);
    expect(await count(`${S}.q_huge`)).toBe(0);
  });

  it('task inputs and idempotency keys', async () => {
    const tc = db.track(new TaskClient({ connectionString: db.url, queueSchema: S }));
    const task = defineTask<unknown>({ name: 'typed_errors', handler: async () => undefined });
    for (const [p, msg] of [
      [tc.enqueue(task, { s: 'a\u0000' }), /^input contains a NUL/],
      [tc.enqueue(task, { n: NaN }), /^input\.n is NaN/],
      [tc.enqueue(task, 1, { idempotencyKey: 'k\u0000' }), /^idempotencyKey contains a NUL/],
      [tc.enqueue(task, 1, { idempotencyKey: 'é'.repeat(1001) }), /idempotencyKey is 2002 bytes/],
      [tc.enqueueBatch(task, [{ input: 1 }, { input: Infinity }]), /^jobs\[1\]\.input is NaN/],
    ] as const) {
      const err = await rejection(p);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.message).toMatch(msg);
    }
    // The largest accepted key, incompressible, fits the btree index.
    const key = randomBytes(1000).toString('hex');
    const job = await tc.enqueue(task, 1, { idempotencyKey: key });
    expect((await tc.enqueue(task, 2, { idempotencyKey: key })).id).toBe(job.id);
    expect(await count(`${S}.q_typed_errors`)).toBe(1);
  });

  it('stream payloads and event types', async () => {
    const sc = db.track(new StreamClient({ connectionString: db.url }));
    await sc.createStream('typed_errors');
    for (const [p, msg] of [
      [sc.send('typed_errors', { s: '\u0000' }), /^payload contains a NUL/],
      [sc.send('typed_errors', { n: Infinity }), /^payload\.n is NaN/],
      [sc.send('typed_errors', 1, { type: 'a\u0000' }), /^type contains a NUL/],
      [sc.sendBatch('typed_errors', [1, NaN]), /^payloads\[1\] is NaN/],
    ] as const) {
      const err = await rejection(p);
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect(err.message).toMatch(msg);
    }
    const [r] = await db
      .sql<{ n: number }>(
        `SELECT count(*)::int AS n FROM pgque.event_template WHERE ev_data IS NOT NULL`,
      )
      .catch(() => [{ n: 0 }]);
    expect(r!.n).toBe(0);
  });
});

describe('queue names', () => {
  it('NUL (22021) and multibyte names over the identifier limit (42809) are typed, up front', async () => {
    const q = queues();
    const nul = await rejection(q.send('a\u0000b', 1));
    expect(nul).toBeInstanceOf(InvalidQueueNameError);
    expect(nul.message).toMatch(/NUL/);
    // 24 characters (under PGMQ's 47) but 48 bytes: derived identifiers would not fit 63 bytes.
    const long = await rejection(q.createQueue('é'.repeat(24)));
    expect(long).toBeInstanceOf(InvalidQueueNameError);
    expect(long.message).toMatch(/48 bytes/);
    // 46 bytes works (47 is the most).
    await q.createQueue('é'.repeat(23));
    await q.send('é'.repeat(23), 1);
    const names = (await q.listQueues()).map((x) => x.queueName);
    expect(names).toContain('é'.repeat(23));
    expect(names).not.toContain('é'.repeat(24));
  });
});

describe('SQLSTATEs a caller can provoke through raw SQL map to typed errors', () => {
  it.each([
    ['22P05', `SELECT '"\\u0000"'::jsonb`, InvalidArgumentError],
    ['22021', `SELECT $1::text`, InvalidArgumentError, ['a\u0000']],
    ['54000', `SELECT array_fill(1, ARRAY[200000000])`, InvalidArgumentError],
    // A multibyte name over the identifier limit: the SQL refuses it (P0001) before any
    // derived identifier is truncated (which gave 42809 "is not a sequence").
    ['P0001', `SELECT ${S}.create($1)`, InvalidQueueNameError, ['é'.repeat(30)]],
  ] as const)('%s', async (state, text, cls, params?: readonly unknown[]) => {
    const q = queues();
    const err = await rejection(q.driver.query(text, params ? [...params] : []));
    expect(err, err.message).toBeInstanceOf(cls);
    expect(err.sqlState).toBe(state);
  });
});
