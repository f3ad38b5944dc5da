import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { InvalidArgumentError, QueueNotFoundError } from '../../src/errors.js';

const db = useTestDatabase();
const S = db.queueSchema;

const fails = (sql: string, message: string, params: unknown[] = []): Promise<void> =>
  expect(db.sql(sql, params)).rejects.toMatchObject({ code: 'P0001', message });

describe('validate_routing_key / validate_topic_pattern', () => {
  it('accept good input and raise every reference message, in order', async () => {
    expect(await db.sql(`SELECT ${S}.validate_routing_key('a.b-c_D.9') AS ok`)).toEqual([
      { ok: true },
    ]);
    expect(await db.sql(`SELECT ${S}.validate_topic_pattern('a*.#.x#y') AS ok`)).toEqual([
      { ok: true },
    ]);
    const rk = `SELECT ${S}.validate_routing_key($1)`;
    await fails(rk, 'routing_key cannot be NULL or empty', [null]);
    await fails(rk, 'routing_key cannot be NULL or empty', ['']);
    await fails(rk, 'routing_key length cannot exceed 255 characters, got 256 characters', [
      'a'.repeat(256),
    ]);
    await fails(
      rk,
      'routing_key contains invalid characters. Only alphanumeric, dots, hyphens, and underscores are allowed. Got: a.*',
      ['a.*'],
    );
    await fails(rk, 'routing_key cannot start with a dot. Got: .a', ['.a']);
    await fails(rk, 'routing_key cannot end with a dot. Got: a.', ['a.']);
    await fails(rk, 'routing_key cannot contain consecutive dots. Got: a..b', ['a..b']);
    // Order: invalid characters are reported before the leading dot.
    await fails(
      rk,
      'routing_key contains invalid characters. Only alphanumeric, dots, hyphens, and underscores are allowed. Got: .a b',
      ['.a b'],
    );

    const tp = `SELECT ${S}.validate_topic_pattern($1)`;
    await fails(tp, 'pattern cannot be NULL or empty', [null]);
    await fails(tp, 'pattern cannot be NULL or empty', ['']);
    await fails(tp, 'pattern length cannot exceed 255 characters, got 300 characters', [
      '#'.repeat(300),
    ]);
    await fails(
      tp,
      'pattern contains invalid characters. Only alphanumeric, dots, hyphens, underscores, *, and # are allowed. Got: a+b',
      ['a+b'],
    );
    await fails(tp, 'pattern cannot start with a dot. Got: .a', ['.a']);
    await fails(tp, 'pattern cannot end with a dot. Got: a.', ['a.']);
    await fails(tp, 'pattern cannot contain consecutive dots. Got: a..#', ['a..#']);
    await fails(
      tp,
      'pattern cannot contain consecutive stars (**). Use # for multi-segment matching. Got: a.**',
      ['a.**'],
    );
    await fails(
      tp,
      'pattern cannot contain consecutive hashes (##). A single # already matches zero or more segments. Got: ##.a',
      ['##.a'],
    );
    await fails(
      tp,
      'pattern cannot contain adjacent wildcards (*# or #*). Separate wildcards with dots. Got: a.*#',
      ['a.*#'],
    );
    await fails(
      tp,
      'pattern cannot contain adjacent wildcards (*# or #*). Separate wildcards with dots. Got: #*',
      ['#*'],
    );
  });
});

describe('bindings and routing', () => {
  it('compiles patterns as the reference does and routes with its quirks (fz.# does not match fz)', async () => {
    for (const q of ['t1', 't2', 't3']) await db.sql(`SELECT ${S}.create($1)`, [q]);
    const binds: [string, string][] = [
      ['#', 't1'],
      ['fz.#', 't2'],
      ['fz.*', 't3'],
      ['*.a', 't3'],
      ['#.b', 't2'],
    ];
    for (const [p, q] of binds) await db.sql(`SELECT ${S}.bind_topic($1, $2)`, [p, q]);
    const regex = await db.sql<{ pattern: string; compiled_regex: string }>(
      `SELECT pattern, compiled_regex FROM ${S}.topic_bindings ORDER BY pattern`,
    );
    expect(Object.fromEntries(regex.map((r) => [r.pattern, r.compiled_regex]))).toEqual({
      '#': '^.*$',
      'fz.#': '^fz\\..*$',
      'fz.*': '^fz\\.[^.]+$',
      '*.a': '^[^.]+\\.a$',
      '#.b': '^.*\\.b$',
    });
    const route = async (key: string): Promise<string[]> =>
      (await db.sql<{ pattern: string }>(`SELECT pattern FROM ${S}.test_routing($1)`, [key])).map(
        (r) => r.pattern,
      );
    expect(await route('fz')).toEqual(['#']); // quirk: fz.# needs the dot
    expect(await route('fz.a')).toEqual(['#', '*.a', 'fz.#', 'fz.*']); // ordered by pattern
    expect(await route('fz.a.b')).toEqual(['#', '#.b', 'fz.#']);
    expect(await route('b')).toEqual(['#']); // quirk: #.b does not match b
    expect(await route('a.c.b')).toEqual(['#', '#.b']);
    await expect(db.sql(`SELECT * FROM ${S}.test_routing('bad key')`)).rejects.toMatchObject({
      code: 'P0001',
    });
    // The catch-all bindings would match every later test's keys.
    await db.sql(`SELECT ${S}.drop_queue('t1'), ${S}.drop_queue('t2'), ${S}.drop_queue('t3')`);
  });

  it('escapes regex metacharacters a pattern may contain (-, _ are literal)', async () => {
    await db.sql(`SELECT ${S}.create('esc')`);
    await db.sql(`SELECT ${S}.bind_topic('a-b_c.d', 'esc')`);
    expect(await db.sql(`SELECT * FROM ${S}.test_routing('a-b_c.d')`)).toHaveLength(1);
    expect(await db.sql(`SELECT * FROM ${S}.test_routing('a-b_cxd')`)).toHaveLength(0);
  });

  it('bind_topic validates, requires the exact meta name, and keeps an identical binding once', async () => {
    await db.sql(`SELECT ${S}.create('MixedQ')`);
    await fails(`SELECT ${S}.bind_topic('a', $1)`, 'queue_name cannot be NULL or empty', [null]);
    await fails(`SELECT ${S}.bind_topic('a', '')`, 'queue_name cannot be NULL or empty');
    await fails(
      `SELECT ${S}.bind_topic('a..b', 'MixedQ')`,
      'pattern cannot contain consecutive dots. Got: a..b',
    );
    await fails(
      `SELECT ${S}.bind_topic('a', 'mixedq')`,
      `Queue "mixedq" does not exist. Create the queue first using ${S}.create()`,
    );
    await db.sql(`SELECT ${S}.bind_topic('x.y', 'MixedQ')`);
    await db.sql(`SELECT ${S}.bind_topic('x.y', 'MixedQ')`);
    expect(await db.sql(`SELECT * FROM ${S}.list_topic_bindings('MixedQ')`)).toHaveLength(1);
    expect(await db.sql(`SELECT * FROM ${S}.list_topic_bindings('nobody')`)).toHaveLength(0);
  });

  it('unbind_topic returns whether it deleted, with its own NULL/empty checks only', async () => {
    await db.sql(`SELECT ${S}.create('unb')`);
    await db.sql(`SELECT ${S}.bind_topic('u.#', 'unb')`);
    await fails(`SELECT ${S}.unbind_topic('', 'unb')`, 'pattern cannot be NULL or empty');
    await fails(`SELECT ${S}.unbind_topic('u.#', NULL)`, 'queue_name cannot be NULL or empty');
    expect(await db.sql(`SELECT ${S}.unbind_topic('u..x', 'unb') AS r`)).toEqual([{ r: false }]); // not validated
    expect(await db.sql(`SELECT ${S}.unbind_topic('u.#', 'unb') AS r`)).toEqual([{ r: true }]);
    expect(await db.sql(`SELECT ${S}.unbind_topic('u.#', 'unb') AS r`)).toEqual([{ r: false }]);
  });

  it('list_topic_bindings orders by bound_at DESC, pattern; bindings go with drop_queue', async () => {
    await db.sql(`SELECT ${S}.create('lst')`);
    const c = await db.pool.connect();
    try {
      // Same transaction = same bound_at, so pattern decides.
      await c.query('BEGIN');
      await c.query(`SELECT ${S}.bind_topic('l.b', 'lst'), ${S}.bind_topic('l.a', 'lst')`);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
    await db.sql(`SELECT ${S}.bind_topic('l.z', 'lst')`);
    const rows = await db.sql<{ pattern: string }>(
      `SELECT pattern FROM ${S}.list_topic_bindings('lst')`,
    );
    expect(rows.map((r) => r.pattern)).toEqual(['l.z', 'l.a', 'l.b']);
    const all = await db.sql<{ pattern: string; bound_at: Date }>(
      `SELECT * FROM ${S}.list_topic_bindings()`,
    );
    expect(all.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < all.length; i++)
      expect(all[i - 1]!.bound_at >= all[i]!.bound_at).toBe(true);
    await db.sql(`SELECT ${S}.drop_queue('lst')`);
    expect(await db.sql(`SELECT * FROM ${S}.list_topic_bindings('lst')`)).toHaveLength(0);
  });
});

describe('send_topic / send_batch_topic', () => {
  it('send_topic sends once to each distinct matching queue and returns the count; its errors', async () => {
    for (const q of ['s_a', 's_b', 's_c']) await db.sql(`SELECT ${S}.create($1)`, [q]);
    await db.sql(
      `SELECT ${S}.bind_topic('ord.*', 's_a'), ${S}.bind_topic('ord.#', 's_a'), ${S}.bind_topic('ord.new', 's_b')`,
    );
    expect(await db.sql(`SELECT ${S}.send_topic('ord.new', '{"k":1}') AS n`)).toEqual([{ n: 2 }]);
    expect(await db.sql(`SELECT ${S}.send_topic('nothing', '{"k":1}') AS n`)).toEqual([{ n: 0 }]);
    expect(await db.sql(`SELECT ${S}.send_topic('ord.x', '{"k":2}', 3600) AS n`)).toEqual([
      { n: 1 },
    ]);
    expect(
      await db.sql(`SELECT ${S}.send_topic('ord.new', '{"k":3}', '{"h":1}'::jsonb, 0) AS n`),
    ).toEqual([{ n: 2 }]);
    const a = await db.sql<{ message: unknown; headers: unknown; delayed: boolean }>(
      `SELECT message, headers, vt > clock_timestamp() + interval '1 min' AS delayed FROM ${S}.q_s_a ORDER BY msg_id`,
    );
    expect(a).toEqual([
      { message: { k: 1 }, headers: null, delayed: false },
      { message: { k: 2 }, headers: null, delayed: true },
      { message: { k: 3 }, headers: { h: 1 }, delayed: false },
    ]);
    expect(await db.sql(`SELECT count(*)::int AS n FROM ${S}.q_s_c`)).toEqual([{ n: 0 }]);
    await fails(`SELECT ${S}.send_topic('ord.new', NULL)`, 'msg cannot be NULL');
    await fails(`SELECT ${S}.send_topic('ord.new', '{}', -1)`, 'delay cannot be negative, got: -1');
    await fails(`SELECT ${S}.send_topic('', '{}')`, 'routing_key cannot be NULL or empty');
  });

  it('send_topic is all-or-nothing across queues (a failing queue rolls back all)', async () => {
    await db.sql(`SELECT ${S}.create('aon_a'), ${S}.create('aon_b')`);
    await db.sql(`SELECT ${S}.bind_topic('aon', 'aon_a'), ${S}.bind_topic('aon', 'aon_b')`);
    // Make the second queue (queue_name order) fail on insert.
    await db.sql(`ALTER TABLE ${S}.q_aon_b ADD CONSTRAINT no_inserts CHECK (msg_id < 0) NOT VALID`);
    await expect(db.sql(`SELECT ${S}.send_topic('aon', '{}')`)).rejects.toMatchObject({
      code: '23514',
    });
    expect(await db.sql(`SELECT count(*)::int AS n FROM ${S}.q_aon_a`)).toEqual([{ n: 0 }]);
  });

  it('send_batch_topic: six forms, rows per inserted message, batch errors even with no match', async () => {
    await db.sql(`SELECT ${S}.create('b_1'), ${S}.create('b_2')`);
    await db.sql(`SELECT ${S}.bind_topic('bt.#', 'b_2'), ${S}.bind_topic('bt.#', 'b_1')`);
    const m = `array['{"i":1}','{"i":2}']::jsonb[]`;
    const h = `array['{"h":1}', NULL]::jsonb[]`;
    const forms = [
      `${m}`,
      `${m}, ${h}`,
      `${m}, 5`,
      `${m}, now() + interval '1 h'`,
      `${m}, ${h}, -5`,
      `${m}, ${h}, now() + interval '1 h'`,
    ];
    for (const args of forms) {
      const rows = await db.sql<{ queue_name: string; msg_id: string }>(
        `SELECT * FROM ${S}.send_batch_topic('bt.x', ${args})`,
      );
      expect(rows.map((r) => r.queue_name)).toEqual(['b_1', 'b_1', 'b_2', 'b_2']);
    }
    const b1 = await db.sql<{ msg_id: string; headers: unknown; vis: boolean }>(
      `SELECT msg_id, headers, vt <= clock_timestamp() AS vis FROM ${S}.q_b_1 ORDER BY msg_id`,
    );
    expect(b1.map((r) => r.vis)).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
      false,
      false,
      true,
      true,
      false,
      false,
    ]);
    expect(b1[2]!.headers).toEqual({ h: 1 });
    expect(b1[3]!.headers).toBeNull();
    await fails(
      `SELECT * FROM ${S}.send_batch_topic('nomatch', array[]::jsonb[])`,
      'msgs cannot be NULL or empty',
    );
    await fails(
      `SELECT * FROM ${S}.send_batch_topic('nomatch', ${m}, array['{}']::jsonb[])`,
      'headers array length (1) must match msgs array length (2)',
    );
    await fails(
      `SELECT * FROM ${S}.send_batch_topic('bad..key', ${m})`,
      'routing_key cannot contain consecutive dots. Got: bad..key',
    );
    expect(await db.sql(`SELECT * FROM ${S}.send_batch_topic('nomatch', ${m})`)).toEqual([]);
  });
});

describe('topics through the client', () => {
  it('binds, lists, routes and sends', async () => {
    const client = db.queueClient();
    await client.createQueue('ct_a');
    await client.createQueue('ct_b');
    await client.bindTopic('evt.*', 'ct_a');
    await client.bindTopic('evt.#', 'ct_b');
    expect(
      (await client.listTopicBindings({ queue: 'ct_a' })).map((b) => [b.pattern, b.compiledRegex]),
    ).toEqual([['evt.*', '^evt\\.[^.]+$']]);
    expect((await client.listTopicBindings()).length).toBeGreaterThanOrEqual(2);
    expect((await client.testRouting('evt.x.y')).map((r) => r.queueName)).toEqual(['ct_b']);
    expect(await client.sendTopic('evt.one', { n: 1 }, { headers: { h: true } })).toBe(2);
    const batch = await client.sendBatchTopic('evt.two', [{ n: 2 }, { n: 3 }], { delaySeconds: 0 });
    expect(batch.map((r) => r.queueName)).toEqual(['ct_a', 'ct_a', 'ct_b', 'ct_b']);
    expect(batch.every((r) => Number.isInteger(r.msgId))).toBe(true);
    const at = await client.sendBatchTopic('evt.three', [1], {
      deliverAt: new Date(Date.now() + 3_600_000),
    });
    expect(at).toHaveLength(2);
    const read = await client.read<{ n: number }>('ct_a', { qty: 10 });
    expect(read.map((m) => m.message.n)).toEqual([1, 2, 3]);
    expect(read[0]!.headers).toEqual({ h: true });
    expect(await client.unbindTopic('evt.*', 'ct_a')).toBe(true);
    await client.validateRoutingKey('ok.key');
    await client.validateTopicPattern('ok.#');
    await expect(client.validateRoutingKey('bad key')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.validateTopicPattern('a**')).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(client.bindTopic('x', 'no_such_queue')).rejects.toBeInstanceOf(QueueNotFoundError);
    await expect(client.sendTopic('evt.x', { n: 1 }, { delaySeconds: -1 })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(client.sendBatchTopic('evt.x', [])).rejects.toBeInstanceOf(InvalidArgumentError);
    // Runs in the caller's transaction: a rollback sends nothing.
    await client
      .transaction(async (tx) => {
        await client.sendTopic('evt.rollback', { n: 9 }, { tx });
        throw new Error('business write failed');
      })
      .catch(() => undefined);
    expect(await client.read('ct_b', { qty: 100 })).toHaveLength(3);
  });
});
