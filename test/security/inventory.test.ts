// Every function and table pgferry installs, checked against the table of
// expectations (expectations.ts) for each hostile login: who may call it,
// who may read or write it. A function that is not classified fails here.
import { beforeAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  FUNCTION_ACCESS,
  GENERATED_FUNCTION_ACCESS,
  accessOf,
  type Access,
} from './expectations.js';
import { WHO, attempt, schemas, useHostileRoles, type Who, STREAM } from './hostile.js';

const db = useTestDatabase();
const h = useHostileRoles(db);

const ALLOWED: Record<Access, readonly Who[]> = {
  bus: ['bus'],
  reader: ['reader', 'admin'],
  writer: ['writer', 'admin'],
  admin: ['admin'],
  none: [],
};

interface Fn {
  key: string;
  oid: number;
  secdef: boolean;
  config: string[] | null;
}

async function installedFunctions(): Promise<Fn[]> {
  const s = schemas(db);
  const rows: Fn[] = [];
  for (const [component, schema] of Object.entries(s)) {
    const fns = await db.sql<{
      sig: string;
      oid: number;
      secdef: boolean;
      config: string[] | null;
    }>(
      `SELECT p.proname || '(' || oidvectortypes(p.proargtypes) || ')' AS sig, p.oid::int AS oid,
              p.prosecdef AS secdef, p.proconfig AS config
         FROM pg_proc p WHERE p.pronamespace = $1::regnamespace`,
      [schema],
    );
    for (const f of fns) {
      // Our own types print schema-qualified: name them by component.
      let sig = f.sig;
      for (const [c, sch] of Object.entries(s)) sig = sig.replaceAll(`${sch}.`, `${c}.`);
      rows.push({ key: `${component}.${sig}`, oid: f.oid, secdef: f.secdef, config: f.config });
    }
  }
  return rows;
}

let fns: Fn[] = [];
beforeAll(async () => {
  // Objects of every kind exist: a queue, a stream queue, a bus member.
  await db.sql(`SELECT ${db.queueSchema}.create('sec_inv')`);
  await db.sql(`SELECT ${STREAM}.create_queue('sec_inv')`);
  await h.client.bus.query(`SELECT public.bus_join('sec-inv')`);
  fns = await installedFunctions();
});

describe('the inventory of installed functions', () => {
  it('lists every installed function, and nothing that is gone', () => {
    const installed = new Set(fns.map((f) => f.key));
    const unclassified = [...installed].filter((k) => accessOf(k) === undefined).sort();
    const stale = Object.keys(FUNCTION_ACCESS)
      .filter((k) => !installed.has(k))
      .sort();
    expect(unclassified, 'classify these in test/security/expectations.ts').toEqual([]);
    expect(stale, 'these are listed but not installed').toEqual([]);
    expect(fns.length).toBeGreaterThan(250);
    // The member joined above has its three generated functions.
    for (const [re] of GENERATED_FUNCTION_ACCESS) {
      const n = [...installed].filter((k) => re.test(k)).length;
      expect([re.source, n > 0]).toEqual([re.source, true]);
    }
  });

  it('pins search_path in every SECURITY DEFINER function', () => {
    const loose = fns
      .filter((f) => f.secdef)
      .filter((f) => !(f.config ?? []).includes('search_path=pg_catalog, pg_temp'))
      .map((f) => f.key);
    expect(loose).toEqual([]);
    expect(fns.filter((f) => f.secdef).length).toBeGreaterThan(70);
  });

  it.each(WHO)('lets %s call exactly the functions classified for it', async (who) => {
    const role = h.login[who].role;
    const rows = await db.sql<{ oid: number; can: boolean }>(
      `SELECT p.oid::int AS oid,
              has_function_privilege($1, p.oid, 'EXECUTE')
                AND has_schema_privilege($1, p.pronamespace, 'USAGE') AS can
         FROM pg_proc p WHERE p.oid = ANY ($2::oid[])`,
      [role, fns.map((f) => f.oid)],
    );
    const can = new Map(rows.map((r) => [r.oid, r.can]));
    const wrong = fns
      .filter((f) => can.get(f.oid) !== ALLOWED[accessOf(f.key) ?? 'none'].includes(who))
      .map((f) => `${f.key}: ${can.get(f.oid) ? 'callable' : 'refused'}`);
    expect(wrong).toEqual([]);
  });
});

describe('the inventory of installed tables, views and sequences', () => {
  const PRIVS = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];

  /** What `who` may do on a relation of `component` (relkind S: a sequence). */
  function expected(who: Who, component: string, relkind: string): string[] {
    if (component !== 'stream') return [];
    if (relkind === 'S') return who === 'admin' ? ['SELECT', 'UPDATE', 'USAGE'] : [];
    if (who === 'reader') return ['SELECT'];
    if (who === 'admin') return ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];
    return [];
  }

  it.each(WHO)('gives %s exactly its privileges on every relation', async (who) => {
    const role = h.login[who].role;
    const wrong: string[] = [];
    let seen = 0;
    for (const [component, schema] of Object.entries(schemas(db))) {
      const rels = await db.sql<{ rel: string; relkind: string; privs: string[] }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS rel, c.relkind::text AS relkind,
                ARRAY(SELECT p FROM unnest(CASE WHEN c.relkind = 'S'
                                                THEN ARRAY['SELECT', 'UPDATE', 'USAGE']
                                                ELSE $3::text[] END) p
                       WHERE has_schema_privilege($1, n.oid, 'USAGE')
                         AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege($1, c.oid, p)
                                  ELSE has_table_privilege($1, c.oid, p) END) AS privs
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $2 AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')`,
        [role, schema, PRIVS],
      );
      for (const r of rels) {
        seen++;
        const want = expected(who, component, r.relkind);
        if (r.privs.join() !== want.join())
          wrong.push(`${r.rel}: ${r.privs.join()} (want ${want.join()})`);
      }
    }
    expect(wrong).toEqual([]);
    expect(seen).toBeGreaterThan(30);
  });

  it.each(WHO)('refuses %s a real SELECT on every relation it may not read', async (who) => {
    const c = h.client[who];
    const results: string[] = [];
    for (const [component, schema] of Object.entries(schemas(db))) {
      const rels = await db.sql<{ rel: string; relkind: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS rel, c.relkind::text AS relkind
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'S')`,
        [schema],
      );
      for (const r of rels) {
        const want = expected(who, component, r.relkind).includes('SELECT') ? 'ok' : '42501';
        const got = await attempt(c, `SELECT * FROM ${r.rel} LIMIT 1`);
        if (got !== want) results.push(`${r.rel}: ${got} (want ${want})`);
      }
    }
    expect(results).toEqual([]);
  });

  it.each(WHO)('refuses %s a real write on every relation it may not write', async (who) => {
    const c = h.client[who];
    const results: string[] = [];
    for (const [component, schema] of Object.entries(schemas(db))) {
      const rels = await db.sql<{ rel: string; col: string }>(
        `SELECT format('%I.%I', n.nspname, c.relname) AS rel,
                (SELECT quote_ident(a.attname) FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attgenerated = '' AND a.attidentity = '' ORDER BY a.attnum LIMIT 1) AS col
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
        [schema],
      );
      for (const r of rels) {
        const may = expected(who, component, 'r');
        // WHERE false: the privilege is checked, no row is touched.
        const del = await attempt(c, `DELETE FROM ${r.rel} WHERE false`);
        if (del !== (may.includes('DELETE') ? 'ok' : '42501'))
          results.push(`DELETE ${r.rel}: ${del}`);
        if (r.col) {
          const upd = await attempt(c, `UPDATE ${r.rel} SET ${r.col} = ${r.col} WHERE false`);
          if (upd !== (may.includes('UPDATE') ? 'ok' : '42501'))
            results.push(`UPDATE ${r.rel}: ${upd}`);
        }
      }
    }
    expect(results).toEqual([]);
  });

  it.each(WHO)('gives %s no CREATE on any installed schema', async (who) => {
    const rows = await db.sql<{ nsp: string }>(
      `SELECT n.nspname AS nsp FROM pg_namespace n
        WHERE n.nspname = ANY ($2::text[]) AND has_schema_privilege($1, n.oid, 'CREATE')`,
      [h.login[who].role, Object.values(schemas(db))],
    );
    expect(rows).toEqual([]);
  });
});
