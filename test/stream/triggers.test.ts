// PgQ's table-change trigger functions turn row changes into events.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { S, tick } from './helpers.js';

const db = useTestDatabase();

describe('trigger functions', () => {
  it('jsontriga, logutriga and sqltriga publish inserts, updates and deletes', async () => {
    await db.sql(`select ${S}.create_queue('cdc'), ${S}.subscribe('cdc', 'c')`);
    await db.sql(`CREATE TABLE acct (id int PRIMARY KEY, name text, note text)`);
    await db.sql(
      `CREATE TRIGGER j AFTER INSERT OR UPDATE OR DELETE ON acct FOR EACH ROW EXECUTE FUNCTION ${S}.jsontriga('cdc', 'ignore=note')`,
    );
    await db.sql(
      `CREATE TRIGGER l AFTER INSERT OR UPDATE OR DELETE ON acct FOR EACH ROW EXECUTE FUNCTION ${S}.logutriga('cdc')`,
    );
    await db.sql(
      `CREATE TRIGGER s AFTER INSERT OR UPDATE OR DELETE ON acct FOR EACH ROW EXECUTE FUNCTION ${S}.sqltriga('cdc')`,
    );
    await db.sql(`INSERT INTO acct VALUES (1, 'a b&c', NULL)`);
    await db.sql(`UPDATE acct SET note = 'only the ignored column'`);
    await db.sql(`UPDATE acct SET name = 'x'`);
    await db.sql(`DELETE FROM acct`);
    await tick(db, 'cdc');
    const rows = await db.sql(
      `select type, payload, extra1 from ${S}.receive('cdc', 'c') order by msg_id`,
    );
    expect(rows.map((r) => r.extra1)).toEqual(Array(rows.length).fill('public.acct'));
    const J = (op: string): string => `{"op":"${op}","table":["public","acct"],"pkey":["id"]}`;
    expect(rows.map((r) => [r.type, r.payload])).toEqual([
      [J('INSERT'), '{"id":1,"name":"a b&c"}'],
      ['I:id', 'id=1&name=a+b%26c&note'],
      ['I', `(id,name,note) values ('1','a b&c',null)`],
      // the json trigger ignores `note`, so the first update is not an event for it
      ['U:id', 'id=1&name=a+b%26c&note=only+the+ignored+column'],
      ['U', `note='only the ignored column' where id='1'`],
      [J('UPDATE'), '{"id":1,"name":"x"}'],
      ['U:id', 'id=1&name=x&note=only+the+ignored+column'],
      ['U', `name='x' where id='1'`],
      [J('DELETE'), '{"id":1,"name":"x"}'],
      ['D:id', 'id=1&name=x&note=only+the+ignored+column'],
      ['D', `id='1'`],
    ]);
  });

  it('SKIP in a BEFORE trigger records the event and skips the change', async () => {
    await db.sql(`select ${S}.create_queue('skip'), ${S}.subscribe('skip', 'c')`);
    await db.sql(`CREATE TABLE sk (id int PRIMARY KEY)`);
    await db.sql(
      `CREATE TRIGGER j BEFORE INSERT ON sk FOR EACH ROW EXECUTE FUNCTION ${S}.jsontriga('skip', 'SKIP')`,
    );
    await db.sql(`INSERT INTO sk VALUES (7)`);
    expect(await db.sql(`select count(*)::int as n from sk`)).toEqual([{ n: 0 }]);
    await tick(db, 'skip');
    expect(
      (await db.sql(`select payload from ${S}.receive('skip', 'c')`)).map((r) => r.payload),
    ).toEqual(['{"id":7}']);
  });
});
