import { describe, expect, it, vi } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import {
  installed,
  migrate,
  InvalidArgumentError,
  MigrationError,
  type ComponentName,
} from '../../src/index.js';
import { expand, resolveSchemas } from '../../src/migrate/migrator.js';
import { components, latestVersion } from '../../src/migrate/components.js';
import { main } from '../../src/cli/main.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
const latest = (c: ComponentName): number => latestVersion(components[c]);
const count = (c: ComponentName): number => components[c].migrations.length;

/**
 * Installs `component` into `schema` exactly as pgferry 0.1's migrator did:
 * its version table (primary key on version alone, DDL copied verbatim from
 * 0.1) and one row per migration, so the upgrade path is tested against the
 * shape installed databases really have.
 */
async function installLike01(component: ComponentName, schema: string): Promise<void> {
  const c = testClient({ connectionString: db.url });
  await c.connect();
  try {
    await c.query('BEGIN');
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${schema}._pgferry_migrations (
         version integer PRIMARY KEY,
         name text NOT NULL,
         component text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const schemas = resolveSchemas({ [component]: schema });
    for (const m of components[component].migrations) {
      await c.query(expand(m.sql, schema, schemas));
      await c.query(
        `INSERT INTO ${schema}._pgferry_migrations (version, name, component, applied_at)
         VALUES ($1, $2, $3, '2026-01-01T00:00:00Z')`,
        [m.version, m.name, component],
      );
    }
    await c.query('COMMIT');
  } finally {
    await c.end();
  }
}

async function primaryKey(schema: string): Promise<string[]> {
  const rows = await db.sql<{ col: string }>(
    `SELECT a.attname AS col
       FROM pg_constraint c
       JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, n) ON true
       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
      WHERE c.conrelid = to_regclass($1) AND c.contype = 'p'
      ORDER BY k.n`,
    [`${schema}._pgferry_migrations`],
  );
  return rows.map((r) => r.col);
}

describe('the version table keyed by (component, version)', () => {
  it('upgrades a 0.1 table in place, keeping its versions, while several migrators race', async () => {
    await installLike01('queue', 'old_q');
    expect(await primaryKey('old_q')).toEqual(['version']);
    const before = await db.sql(
      `SELECT component, version, name, applied_at FROM old_q._pgferry_migrations ORDER BY version`,
    );
    expect(before).toHaveLength(count('queue'));

    // Nothing to apply for the queue: the old table is read as it is.
    const noop = await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'old_q' },
    });
    expect(noop.applied).toEqual([]);
    expect(noop.versions.queue).toBe(latest('queue'));

    // The bus goes into the same schema (0.1 said PGFERRY_SCHEMA_TOO_NEW here).
    const runs = await Promise.all(
      Array.from({ length: 3 }, () =>
        migrate({
          connectionString: db.url,
          components: ['bus'],
          schemas: { queue: 'old_q', bus: 'old_q' },
        }),
      ),
    );
    // Each migration runs in its own locked transaction, so the racers may share the
    // work (one applies 1 and 2, another 3 and 4): every version exactly once, in any run.
    const applied = runs.flatMap((r) => r.applied).sort((a, b) => a.version - b.version);
    expect(applied.map((a) => [a.component, a.version])).toEqual(
      components.bus.migrations.map((m) => ['bus', m.version]),
    );
    for (const r of runs)
      expect(r.versions).toEqual({ queue: latest('queue'), bus: latest('bus') });
    expect(await primaryKey('old_q')).toEqual(['component', 'version']);
    const after = await db.sql(
      `SELECT component, version, name, applied_at FROM old_q._pgferry_migrations
        WHERE component = 'queue' ORDER BY version`,
    );
    expect(after).toEqual(before);
    expect(
      await db.sql(`SELECT to_regprocedure('old_q.bus_join(text)') IS NOT NULL AS ok`),
    ).toEqual([{ ok: true }]);
  });

  it('installs the queue and the bus into one schema, then applies nothing on the next run', async () => {
    const opts = {
      connectionString: db.url,
      components: ['queue', 'bus'] as ComponentName[],
      schemas: { queue: 'qb', bus: 'qb' },
    };
    const first = await migrate(opts);
    expect(first.versions).toEqual({ queue: latest('queue'), bus: latest('bus') });
    expect(first.applied).toHaveLength(count('queue') + count('bus'));
    expect((await migrate(opts)).applied).toEqual([]);
    expect(
      await db.sql(
        `SELECT component, count(*)::int AS n FROM qb._pgferry_migrations GROUP BY component ORDER BY component`,
      ),
    ).toEqual([
      { component: 'bus', n: count('bus') },
      { component: 'queue', n: count('queue') },
    ]);
    await db.sql(`SELECT qb.create('shared_works')`);
    expect(await db.sql(`SELECT * FROM qb.send('shared_works', '{}'::jsonb)`)).toEqual([
      { send: '1' },
    ]);
  });

  it('installs tasks and the bus into one schema (0.1 skipped tasks there without a word)', async () => {
    const res = await migrate({
      connectionString: db.url,
      components: ['tasks', 'bus'],
      schemas: { queue: 'tb_queue', tasks: 'tb_shared', bus: 'tb_shared' },
    });
    expect(res.versions).toEqual({
      queue: latest('queue'),
      tasks: latest('tasks'),
      bus: latest('bus'),
    });
    expect(
      await db.sql(
        `SELECT to_regclass('tb_shared.queues') IS NOT NULL AS tasks,
                to_regprocedure('tb_shared.bus_join(text)') IS NOT NULL AS bus`,
      ),
    ).toEqual([{ tasks: true, bus: true }]);
  });

  it('says PGFERRY_SCHEMA_TOO_NEW only for the component that is too new', async () => {
    await migrate({
      connectionString: db.url,
      components: ['queue', 'bus'],
      schemas: { queue: 'tn', bus: 'tn' },
    });
    await db.sql(
      `INSERT INTO tn._pgferry_migrations (version, name, component) VALUES ($1, 'future', 'bus')`,
      [latest('bus') + 1],
    );
    const err = await migrate({
      connectionString: db.url,
      components: ['bus'],
      schemas: { queue: 'tn', bus: 'tn' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect(err).toMatchObject({ code: 'PGFERRY_SCHEMA_TOO_NEW' });
    expect((err as Error).message).toMatch(
      new RegExp(
        `schema "tn" is at bus migration ${latest('bus') + 1}, .* only knows ${latest('bus')}`,
      ),
    );
    // The queue sharing the schema is not affected.
    const ok = await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'tn' },
    });
    expect(ok.versions.queue).toBe(latest('queue'));
  });
  it('refuses the queue and the stream in one schema (their APIs share function names)', async () => {
    const together = await migrate({
      connectionString: db.url,
      components: ['queue', 'stream'],
      schemas: { queue: 'qs_one', stream: 'qs_one' },
    }).catch((e: unknown) => e);
    expect(together).toBeInstanceOf(InvalidArgumentError);
    expect((together as Error).message).toMatch(
      /the queue and stream engines cannot share schema "qs_one"/,
    );
    expect(await db.sql(`SELECT to_regnamespace('qs_one') AS n`)).toEqual([{ n: null }]);

    // Across runs: the queue is there first, the stream comes later.
    await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'qs_two' },
    });
    const later = await migrate({
      connectionString: db.url,
      components: ['stream'],
      schemas: { stream: 'qs_two' },
    }).catch((e: unknown) => e);
    expect(later).toBeInstanceOf(InvalidArgumentError);
    expect((later as Error).message).toMatch(/the stream and queue engines cannot share/);
    expect(await db.sql(`SELECT DISTINCT component FROM qs_two._pgferry_migrations`)).toEqual([
      { component: 'queue' },
    ]);
  });
});

describe('installed()', () => {
  it('answers which components are installed, in which schema, at which version', async () => {
    await migrate({
      connectionString: db.url,
      components: ['tasks', 'bus'],
      schemas: { queue: 'inst_q', tasks: 'inst_tb', bus: 'inst_tb' },
    });
    await db.sql(
      `INSERT INTO inst_tb._pgferry_migrations (version, name, component) VALUES (7, 'x', 'from_the_future')`,
    );
    const found = await installed({ connectionString: db.url, schemas: ['inst_q', 'inst_tb'] });
    expect(found).toEqual([
      { component: 'queue', schema: 'inst_q', version: latest('queue'), latest: latest('queue') },
      { component: 'bus', schema: 'inst_tb', version: latest('bus'), latest: latest('bus') },
      { component: 'tasks', schema: 'inst_tb', version: latest('tasks'), latest: latest('tasks') },
      { component: 'from_the_future', schema: 'inst_tb', version: 7, latest: undefined },
    ]);
    // Without a filter it sees every schema, the template's own installation included.
    const all = await installed({ driver: db.driver() });
    expect(all.filter((c) => c.schema === 'inst_tb')).toHaveLength(3);
    expect(all.some((c) => c.component === 'queue' && c.schema === db.queueSchema)).toBe(true);
    expect(await installed({ connectionString: db.url, schemas: ['nothing_here'] })).toEqual([]);
    await expect(
      installed({ connectionString: db.url, schemas: ['Bad-Name'] }),
    ).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it('is what `pgferry worker` asks before it starts: a schema holding only the bus has no tasks', async () => {
    await migrate({
      connectionString: db.url,
      components: ['bus'],
      schemas: { queue: 'wq', bus: 'w_bus_only' },
    });
    const errors: string[] = [];
    const spy = vi
      .spyOn(console, 'error')
      .mockImplementation((...x: unknown[]) => void errors.push(x.join(' ')));
    try {
      const code = await main([
        'worker',
        'test/tasks/fixtures/cli-tasks.ts',
        '--url',
        db.url,
        '--queue-schema',
        'wq',
        '--tasks-schema',
        'w_bus_only',
      ]);
      expect(code).toBe(4);
    } finally {
      spy.mockRestore();
    }
    expect(errors.join('\n')).toMatch(
      /the tasks engine is not installed in schema "w_bus_only"; run `pgferry migrate` first/,
    );
  });
});
