import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { useTestDatabase } from '../support/db.js';
import { migrate, MigrationError, InvalidArgumentError } from '../../src/index.js';
import { checkServerVersion } from '../../src/migrate/migrator.js';
import { components, latestVersion } from '../../src/migrate/components.js';
import { main } from '../../src/cli/main.js';
import { testClient } from '../support/connections.js';

const db = useTestDatabase();
const latestQueue = latestVersion(components.queue);
// How many migrations the queue ships (versions may skip a number reserved on another branch).
const queueCount = components.queue.migrations.length;

describe('migrate()', () => {
  it('installs into a fresh schema once; a second run applies nothing', async () => {
    const first = await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'mig_a' },
    });
    expect(first.applied.map((a) => a.version)).toEqual(
      components.queue.migrations.map((m) => m.version),
    );
    expect(first.versions.queue).toBe(latestQueue);
    const second = await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'mig_a' },
    });
    expect(second.applied).toEqual([]);
    expect(second.versions.queue).toBe(latestQueue);
    const rows = await db.sql(
      `SELECT version, component FROM mig_a._pgferry_migrations ORDER BY version`,
    );
    expect(rows).toHaveLength(queueCount);
    await db.sql(`SELECT mig_a.create('works')`);
    expect(await db.sql(`SELECT * FROM mig_a.send('works', '{}'::jsonb)`)).toEqual([{ send: '1' }]);
  });

  it('applies each migration exactly once when several processes migrate at the same time', async () => {
    const runs = await Promise.all(
      Array.from({ length: 4 }, () =>
        migrate({
          connectionString: db.url,
          components: ['queue'],
          schemas: { queue: 'mig_race' },
        }),
      ),
    );
    const applied = runs.flatMap((r) => r.applied.map((a) => a.version)).sort((a, b) => a - b);
    expect(applied).toEqual(components.queue.migrations.map((m) => m.version));
    expect(await db.sql(`SELECT count(*)::int AS n FROM mig_race._pgferry_migrations`)).toEqual([
      { n: queueCount },
    ]);
  });

  it('refuses a database whose schema is newer than this code', async () => {
    await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'mig_new' },
    });
    await db.sql(
      `INSERT INTO mig_new._pgferry_migrations (version, name, component) VALUES ($1, 'future', 'queue')`,
      [latestQueue + 1],
    );
    const err = await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'mig_new' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect(err).toMatchObject({ code: 'PGFERRY_SCHEMA_TOO_NEW' });
  });

  it('refuses a schema holding a PGMQ it did not install', async () => {
    await db.sql(`CREATE SCHEMA foreign_pgmq; CREATE TABLE foreign_pgmq.meta (queue_name varchar)`);
    const err = await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'foreign_pgmq' },
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'PGFERRY_FOREIGN_SCHEMA' });
    expect(
      await db.sql(
        `SELECT count(*)::int AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'foreign_pgmq'`,
      ),
    ).toEqual([{ n: 0 }]);
  });

  it('rolls a failing migration back whole and says which one failed', async () => {
    await db.sql(`CREATE SCHEMA half; CREATE TYPE half.metrics_result AS (x int)`);
    const err = await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'half' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect(err).toMatchObject({ code: 'PGFERRY_MIGRATION_FAILED' });
    expect((err as Error).message).toMatch(/queue migration 1 \(core\) failed in schema "half"/);
    const left = await db.sql(
      `SELECT count(*)::int AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'half'`,
    );
    // Only the composite type's own pg_class row that existed before remains.
    expect(left).toEqual([{ n: 1 }]);
    expect(await db.sql(`SELECT to_regclass('half._pgferry_migrations') AS r`)).toEqual([
      { r: null },
    ]);
  });

  it('rejects schema names it cannot guarantee are safe', async () => {
    for (const bad of ['Upper', 'x-y', 'a"b', '', '1abc', 'a'.repeat(64)]) {
      await expect(
        migrate({ connectionString: db.url, schemas: { queue: bad } }),
      ).rejects.toBeInstanceOf(InvalidArgumentError);
    }
  });

  it('checks the server version (PostgreSQL 14 or newer)', () => {
    expect(() => checkServerVersion(130012)).toThrow(MigrationError);
    expect(() => checkServerVersion(130012)).toThrow(/PostgreSQL 14 or newer; this server is 13/);
    expect(() => checkServerVersion(140000)).not.toThrow();
    expect(() => checkServerVersion(180004)).not.toThrow();
  });
});

describe('the real pgmq extension', () => {
  // A stand-in extension named pgmq, installed through PostgreSQL's own
  // extension machinery, so pg_extension says what it says for the real one.
  let files: string[] = [];
  afterAll(() => {
    for (const f of files) if (existsSync(f)) unlinkSync(f);
  });

  it('stops with a clear error that says what to do', async () => {
    const [{ setting } = { setting: '' }] = await db.sql<{ setting: string }>(
      `SELECT setting FROM pg_config WHERE name = 'SHAREDIR'`,
    );
    const dir = join(setting, 'extension');
    const control = join(dir, 'pgmq.control');
    if (existsSync(control))
      throw new Error(`a real pgmq extension is installed at ${control}; run this suite elsewhere`);
    files = [control, join(dir, 'pgmq--0.0.1.sql')];
    writeFileSync(control, "default_version = '0.0.1'\nrelocatable = false\nschema = pgmq_ext\n");
    writeFileSync(files[1]!, 'CREATE TABLE meta (queue_name varchar);\n');
    await db.sql(`CREATE SCHEMA pgmq_ext`);
    await db.sql(`CREATE EXTENSION pgmq SCHEMA pgmq_ext`);
    const err = await migrate({
      connectionString: db.url,
      components: ['queue'],
      schemas: { queue: 'pgmq_ext' },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect(err).toMatchObject({ code: 'PGFERRY_EXTENSION_CONFLICT' });
    expect((err as Error).message).toMatch(
      /belongs to the pgmq extension.*another schema.*--queue-schema/s,
    );
    // Nothing was half-installed next to the extension.
    expect(await db.sql(`SELECT to_regclass('pgmq_ext._pgferry_migrations') AS r`)).toEqual([
      { r: null },
    ]);
    await db.sql(`DROP EXTENSION pgmq`);
  });
});

describe('pgferry migrate (CLI)', () => {
  it('migrates the database given by --url and exits 0', async () => {
    const code = await main(['migrate', '--url', db.url, '--queue-schema', 'cli_q', '--quiet']);
    expect(code).toBe(0);
    expect(await db.sql(`SELECT count(*)::int AS n FROM cli_q._pgferry_migrations`)).toEqual([
      { n: queueCount },
    ]);
  });

  it('exits 2 on bad usage, 3 when the database is unreachable, 4 when the schema is too new', async () => {
    expect(await main(['migrate', '--bogus'])).toBe(2);
    expect(await main(['migrate', '--only', 'nonsense', '--url', db.url])).toBe(2);
    expect(await main(['nonsense'])).toBe(2);
    expect(await main(['migrate', '--url', 'postgres://nobody@127.0.0.1:1/none', '--quiet'])).toBe(
      3,
    );
    await db.sql(
      `INSERT INTO cli_q._pgferry_migrations (version, name, component) VALUES (999, 'x', 'queue')`,
    );
    expect(await main(['migrate', '--url', db.url, '--queue-schema', 'cli_q', '--quiet'])).toBe(4);
  });

  it('reads DATABASE_URL', async () => {
    const saved = process.env.DATABASE_URL;
    process.env.DATABASE_URL = db.url;
    try {
      expect(await main(['migrate', '--queue-schema', 'env_q', '--quiet'])).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.DATABASE_URL;
      else process.env.DATABASE_URL = saved;
    }
    const c = testClient({ connectionString: db.url });
    await c.connect();
    const r = await c.query(`SELECT to_regclass('env_q.meta') IS NOT NULL AS ok`);
    await c.end();
    expect(r.rows).toEqual([{ ok: true }]);
  });
});
