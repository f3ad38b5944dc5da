// Compatibility audit against PgQue 0.2.0 / PgQ: the trigger functions write
// events in PgQ's formats, so consumers written for PgQ's jsontriga,
// logutriga and sqltriga parse them (sql/stream/0012_pgq_helpers.sql).
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { expectSqlError } from '../support/sql-errors.js';
import { S, tick } from './helpers.js';

const db = useTestDatabase();

interface Ev {
  type: string | null;
  payload: string | null;
  extra1: string | null;
  extra2: string | null;
  extra3: string | null;
}

async function events(stream: string): Promise<Ev[]> {
  await tick(db, stream);
  const rows = await db.sql<Ev & { batch_id: string }>(
    `SELECT * FROM ${S}.receive($1, 'c', 1000) ORDER BY msg_id`,
    [stream],
  );
  if (rows.length) await db.sql(`SELECT ${S}.ack($1)`, [rows[0]!.batch_id]);
  return rows.map(({ type, payload, extra1, extra2, extra3 }) => ({
    type,
    payload,
    extra1,
    extra2,
    extra3,
  }));
}

async function table(name: string, trigger: string, args: string, ddl: string): Promise<void> {
  await db.sql(`SELECT ${S}.create_queue($1), ${S}.subscribe($1, 'c')`, [name]);
  await db.sql(`CREATE TABLE ${name} (${ddl})`);
  await db.sql(
    `CREATE TRIGGER t AFTER INSERT OR UPDATE OR DELETE ON ${name}
       FOR EACH ROW EXECUTE FUNCTION ${S}.${trigger}(${args})`,
  );
}

describe('trigger functions write PgQ’s formats', () => {
  it('column order, text forms (booleans t/f, timestamps as text) and JSON value types', async () => {
    await db.sql(`SET TIME ZONE 'UTC'`);
    for (const [name, trigger] of [
      ['tj', 'jsontriga'],
      ['tl', 'logutriga'],
      ['ts', 'sqltriga'],
    ] as const) {
      await table(
        name,
        trigger,
        `'${name}'`,
        'z text, id int PRIMARY KEY, ok boolean, at timestamptz, n numeric',
      );
      await db.sql(
        `INSERT INTO ${name} VALUES ('a b~ä', 1, false, '2020-01-02 03:04:05+00', 1.50)`,
      );
    }
    const [j] = await events('tj');
    expect(j!.type).toBe('{"op":"INSERT","table":["public","tj"],"pkey":["id"]}');
    // Integers, booleans, dates and timestamps are JSON values; other types strings.
    expect(j!.payload).toMatch(
      /^\{"z":"a b~ä","id":1,"ok":false,"at":"2020-01-02T03:04:05(\+00:00|Z)?[^"]*","n":"1.50"\}$/,
    );
    const [l] = await events('tl');
    expect(l!.type).toBe('I:id');
    expect(l!.payload).toMatch(
      /^z=a\+b%7e%c3%a4&id=1&ok=f&at=2020-01-02\+03%3a04%3a05[^&]*&n=1\.50$/,
    );
    const [q] = await events('ts');
    expect(q!.type).toBe('I');
    expect(q!.payload).toMatch(
      /^\(z,id,ok,at,n\) values \('a b~ä','1','f','2020-01-02 03:04:05[^']*','1\.50'\)$/,
    );
    for (const e of [j, l, q]) expect(e!.extra1).toMatch(/^public\.t[jls]$/);
  });

  it('an UPDATE that changes nothing is still an event; sqltriga then sets the first key column', async () => {
    await table('nop', 'sqltriga', `'nop'`, 'id int PRIMARY KEY, v text');
    await db.sql(
      `CREATE TRIGGER l AFTER UPDATE ON nop FOR EACH ROW EXECUTE FUNCTION ${S}.logutriga('nop')`,
    );
    await db.sql(`INSERT INTO nop VALUES (1, NULL)`);
    await db.sql(`UPDATE nop SET v = v`);
    await db.sql(`UPDATE nop SET v = 'x'`);
    expect((await events('nop')).map((e) => [e.type, e.payload])).toEqual([
      ['I', `(id,v) values ('1',null)`],
      ['U:id', 'id=1&v'],
      ['U', `id='1' where id='1'`],
      ['U:id', 'id=1&v=x'],
      ['U', `v='x' where id='1'`],
    ]);
  });

  it('logutriga: an empty value is `key=`, a NULL one a bare key', async () => {
    await table('emp', 'logutriga', `'emp'`, 'id int PRIMARY KEY, a text, b text');
    await db.sql(`INSERT INTO emp VALUES (1, '', NULL)`);
    expect((await events('emp')).map((e) => e.payload)).toEqual(['id=1&a=&b']);
  });

  it('backup puts the old row in extra2; _pgq_ev_* columns set event fields', async () => {
    await table(
      'bk',
      'jsontriga',
      `'bk', 'backup'`,
      'id int PRIMARY KEY, v text, _pgq_ev_type text, _pgq_ev_extra3 text',
    );
    await db.sql(`INSERT INTO bk VALUES (1, 'a', 'my.type', 'x3')`);
    await db.sql(`UPDATE bk SET v = 'b'`);
    expect(await events('bk')).toEqual([
      {
        type: 'my.type',
        payload: '{"id":1,"v":"a"}',
        extra1: 'public.bk',
        extra2: null,
        extra3: 'x3',
      },
      {
        type: 'my.type',
        payload: '{"id":1,"v":"b"}',
        extra1: 'public.bk',
        extra2: '{"id":1,"v":"a"}',
        extra3: 'x3',
      },
    ]);
  });

  it('TRUNCATE is an event with empty data; jsontriga’s type names the operation', async () => {
    await db.sql(`SELECT ${S}.create_queue('tr'), ${S}.subscribe('tr', 'c')`);
    await db.sql(`CREATE TABLE tr (id int PRIMARY KEY)`);
    await db.sql(
      `CREATE TRIGGER j AFTER TRUNCATE ON tr FOR EACH STATEMENT EXECUTE FUNCTION ${S}.jsontriga('tr')`,
    );
    await db.sql(
      `CREATE TRIGGER l AFTER TRUNCATE ON tr FOR EACH STATEMENT EXECUTE FUNCTION ${S}.logutriga('tr')`,
    );
    await db.sql(`TRUNCATE tr`);
    expect((await events('tr')).map((e) => [e.type, e.payload])).toEqual([
      ['{"op":"TRUNCATE","table":["public","tr"],"pkey":["id"]}', '{}'],
      ['R', ''],
    ]);
  });

  it('refuses what PgQ refuses: key updates, UPDATE/DELETE without a key, unknown arguments, deny', async () => {
    await table('rf', 'logutriga', `'rf'`, 'id int PRIMARY KEY, v text');
    await db.sql(`INSERT INTO rf VALUES (1, 'a')`);
    await expectSqlError(db.sql(`UPDATE rf SET id = 2`), 'P0001', 'primary key update not allowed');
    await table('nk', 'logutriga', `'nk'`, 'v text');
    await db.sql(`INSERT INTO nk VALUES ('a')`);
    await expectSqlError(db.sql(`DELETE FROM nk`), 'P0001', 'Update/Delete on table without pkey');
    await table('ba', 'jsontriga', `'ba', 'colour=red'`, 'id int PRIMARY KEY');
    await expectSqlError(db.sql(`INSERT INTO ba VALUES (1)`), 'P0001', 'bad argument: colour=red');
    await table('wh', 'jsontriga', `'wh', 'when=id > 1'`, 'id int PRIMARY KEY');
    await expectSqlError(db.sql(`INSERT INTO wh VALUES (1)`), 'P0001', 'bad argument: when=id > 1');
    await table('dn', 'sqltriga', `'dn', 'deny'`, 'id int PRIMARY KEY');
    await expectSqlError(
      db.sql(`INSERT INTO dn VALUES (1)`),
      'P0001',
      `Table 'public.dn' to queue 'dn': change not allowed (INSERT)`,
    );
  });

  it('session_replication_role = local writes no event and lets the change through', async () => {
    await db.sql(`SELECT ${S}.create_queue('loc'), ${S}.subscribe('loc', 'c')`);
    await db.sql(`CREATE TABLE loc (id int PRIMARY KEY)`);
    await db.sql(
      `CREATE TRIGGER b BEFORE INSERT ON loc FOR EACH ROW EXECUTE FUNCTION ${S}.jsontriga('loc', 'SKIP')`,
    );
    const c = await db.pool.connect();
    try {
      await c.query(`SET session_replication_role = local`);
      await c.query(`INSERT INTO loc VALUES (1)`);
    } finally {
      await c.query(`RESET session_replication_role`);
      c.release();
    }
    await db.sql(`INSERT INTO loc VALUES (2)`);
    expect((await db.sql(`SELECT id FROM loc ORDER BY id`)).map((r) => r.id)).toEqual([1]);
    expect((await events('loc')).map((e) => e.payload)).toEqual(['{"id":2}']);
  });
});
