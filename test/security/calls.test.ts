// Calls EVERY installed function as every hostile login: refused (42501)
// where the login may not call it; where it may, once per text argument with
// each injection payload. Injected SQL would call sec_canary.trap(), which
// records who ran it: the suite demands it never ran at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { accessOf } from './expectations.js';
import { WHO, attempt, schemas, useHostileRoles, STREAM, type Who } from './hostile.js';

const db = useTestDatabase();
const h = useHostileRoles(db);

const PAYLOADS = [
  `x'); SELECT sec_canary.trap('quote'); --`,
  `x"); SELECT sec_canary.trap('ident'); --`,
  `x" ; SELECT sec_canary.trap('ident2'); --`,
  `sec_canary.trap('expr')`,
  `true OR sec_canary.trap('or')`,
  `$$; SELECT sec_canary.trap('dollar'); $$`,
  `%s %I %L \\ '' ""`,
  `pg_temp.x`,
  'Ünïcødé_队列_'.repeat(8),
  'x'.repeat(200_000),
];

// A harmless value for every argument type an installed function takes.
const VALUES: Record<string, unknown> = {
  text: 'sec_nothing',
  name: 'sec_nothing',
  'character varying': 'sec_nothing',
  integer: 0,
  bigint: 0,
  smallint: 0,
  numeric: 0,
  'double precision': 0,
  boolean: false,
  interval: '0 seconds',
  'timestamp with time zone': '2000-01-01T00:00:00Z',
  jsonb: '{}',
  json: '{}',
  bytea: '\\x00',
  'text[]': '{}',
  'jsonb[]': '{}',
  'bigint[]': '{}',
  'integer[]': '{}',
  xid8: '1',
};

interface Callable {
  key: string;
  call: string;
  types: string[];
  trigger: boolean;
}

const fns: Callable[] = [];

beforeAll(async () => {
  await db.sql(`
    CREATE SCHEMA sec_canary;
    CREATE TABLE sec_canary.hits (who name, sess name, what text);
    GRANT USAGE ON SCHEMA sec_canary TO PUBLIC;
    GRANT INSERT ON sec_canary.hits TO PUBLIC;
    CREATE FUNCTION sec_canary.trap(what text DEFAULT '') RETURNS boolean LANGUAGE sql AS
      $$ INSERT INTO sec_canary.hits VALUES (current_user, session_user, what) RETURNING true $$;`);
  // Live objects, so calls reach past "not found" where they can.
  await db.sql(`SELECT ${db.queueSchema}.create('sec_calls')`);
  await db.sql(`SELECT ${STREAM}.create_queue('sec_calls')`);
  await db.sql(`SELECT ${STREAM}.send('sec_calls', 'payload')`);
  const s = schemas(db);
  for (const [component, schema] of Object.entries(s)) {
    const rows = await db.sql<{
      name: string;
      sig: string;
      types: string[];
      kind: string;
      trigger: boolean;
    }>(
      `SELECT p.proname AS name, p.proname || '(' || oidvectortypes(p.proargtypes) || ')' AS sig,
              ARRAY(SELECT format_type(t, NULL) FROM unnest(p.proargtypes) t) AS types,
              p.prokind::text AS kind, p.prorettype = 'trigger'::regtype AS trigger
         FROM pg_proc p WHERE p.pronamespace = $1::regnamespace ORDER BY 2`,
      [schema],
    );
    for (const r of rows) {
      let sig = r.sig;
      for (const [c, sch] of Object.entries(s)) sig = sig.replaceAll(`${sch}.`, `${c}.`);
      const args = r.types.map((t, i) => `$${i + 1}::${t}`).join(', ');
      const fq = `"${schema}"."${r.name}"(${args})`;
      fns.push({
        key: `${component}.${sig}`,
        call: r.kind === 'p' ? `CALL ${fq}` : `SELECT ${fq}`,
        types: r.types,
        trigger: r.trigger,
      });
    }
  }
  for (const who of WHO) await h.client[who].query(`SET statement_timeout = '5s'`);
});

afterAll(async () => {
  await db.sql(`DROP SCHEMA sec_canary CASCADE`);
});

function mayCall(who: Who, key: string): boolean {
  const a = accessOf(key) ?? 'none';
  if (a === 'none') return false;
  if (a === 'bus') return who === 'bus';
  return who === 'admin' || who === a;
}

function defaults(types: string[]): unknown[] {
  return types.map((t) => VALUES[t] ?? null);
}

describe('every installed function, called by every hostile login', () => {
  it.each(WHO)('refuses %s every function it may not call', async (who) => {
    const c = h.client[who];
    const wrong: string[] = [];
    let tried = 0;
    for (const f of fns.filter((x) => !mayCall(who, x.key))) {
      tried++;
      // Non-NULL arguments: PostgreSQL folds a STRICT function of NULLs to
      // NULL at plan time, before any privilege check.
      const got = await attempt(c, f.call, defaults(f.types));
      if (got !== '42501') wrong.push(`${f.key}: ${got}`);
    }
    expect(wrong).toEqual([]);
    expect(tried).toBeGreaterThan(100);
  });

  it.each(WHO)(
    'gives %s nothing through injection in any text argument of what it may call',
    async (who) => {
      const c = h.client[who];
      const outcomes = new Map<string, string>();
      const mine = fns.filter((x) => mayCall(who, x.key) && !x.trigger);
      for (const f of mine) {
        const textArgs = f.types
          .map((t, i) => (['text', 'name', 'character varying', 'text[]'].includes(t) ? i : -1))
          .filter((i) => i >= 0);
        for (const i of textArgs) {
          for (const p of PAYLOADS) {
            const params = defaults(f.types);
            params[i] = f.types[i] === 'text[]' ? [p] : p;
            const got = await attempt(c, f.call, params);
            // Connection still usable after every call (nothing crashed).
            if (got !== 'ok') await c.query('SELECT 1');
            outcomes.set(`${f.key}#${i}`, got);
          }
        }
      }
      if (who !== 'nobody') expect(mine.length).toBeGreaterThan(0);
      const hits = await db.sql(`SELECT who, sess, what FROM sec_canary.hits`);
      expect(hits).toEqual([]);
      // pgferry's objects are all still there
      expect(
        await db.sql(
          `SELECT count(*)::int AS n FROM ${STREAM}.queue WHERE queue_name = 'sec_calls'`,
        ),
      ).toEqual([{ n: 1 }]);
      expect(
        await db.sql(
          `SELECT count(*)::int AS n FROM ${db.queueSchema}.meta WHERE queue_name = 'sec_calls'`,
        ),
      ).toEqual([{ n: 1 }]);
    },
  );

  it('leaves every login without new rights', async () => {
    const roles = WHO.map((w) => h.login[w].role);
    const rows = await db.sql<{
      rolname: string;
      rolsuper: boolean;
      rolcreaterole: boolean;
      n: number;
    }>(
      `SELECT r.rolname, r.rolsuper, r.rolcreaterole,
              (SELECT count(*)::int FROM pg_auth_members m WHERE m.member = r.oid) AS n
         FROM pg_roles r WHERE r.rolname = ANY ($1::text[]) ORDER BY 1`,
      [roles],
    );
    expect(rows).toHaveLength(5);
    for (const r of rows) {
      expect(r.rolsuper).toBe(false);
      expect(r.rolcreaterole).toBe(false);
      expect(r.n).toBe(r.rolname.startsWith('hostile_nobody') ? 0 : 1);
    }
  });
});
