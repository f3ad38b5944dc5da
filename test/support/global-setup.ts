import type { TestProject } from 'vitest/node';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/embedded/server.js';
import { migrate } from '../../src/migrate/migrator.js';
import { testSchemas, withDatabase } from './urls.js';
import { PGliteDriver } from '../../src/driver/pglite.js';
import { testDriverName } from './driver-name.js';
import { testClient } from './connections.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
    /** A dump of a migrated PGlite data dir (PGFERRY_TEST_DRIVER=pglite only). */
    pgliteTemplate: string;
  }
}

let server: EmbeddedPostgres | undefined;
let adminUrl = '';
let templateDb = '';
let dataDir = '';
let pgliteTemplate = '';

/**
 * Starts (or reuses via DATABASE_URL) one PostgreSQL for the whole run and
 * builds a template database with every engine migrated. Each test file
 * then clones the template into its own database (fast, fully isolated).
 */
export async function setup(project: TestProject): Promise<void> {
  if (process.env.DATABASE_URL) {
    adminUrl = process.env.DATABASE_URL;
  } else {
    dataDir = join(tmpdir(), `pgferry-test-${process.pid}`);
    server = await startEmbeddedPostgres({ dataDir, persistent: false, fast: true });
    adminUrl = server.url;
  }
  templateDb = `pgferry_tpl_${process.pid}_${Date.now().toString(36)}`;
  const admin = testClient({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${templateDb}`);
  } finally {
    await admin.end();
  }
  await migrate({ connectionString: withDatabase(adminUrl, templateDb), schemas: testSchemas() });
  if (testDriverName() === 'pglite') pgliteTemplate = await buildPGliteTemplate();
  project.provide('pgliteTemplate', pgliteTemplate);
  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);
}

export async function teardown(): Promise<void> {
  const admin = testClient({ connectionString: adminUrl });
  await admin.connect();
  try {
    const left = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2`,
      [templateDb, `${templateDb}_%`],
    );
    for (const { datname } of left.rows)
      await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  if (server) await server.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  if (pgliteTemplate) rmSync(pgliteTemplate, { force: true });
}

/** Migrates one in-memory PGlite with every engine and dumps its data dir for the test files to load. */
async function buildPGliteTemplate(): Promise<string> {
  const { PGlite } = await import('@electric-sql/pglite');
  const db = await PGlite.create();
  try {
    await migrate({ driver: new PGliteDriver({ db }), schemas: testSchemas() });
    const dump = await db.dumpDataDir('none');
    const file = join(tmpdir(), `pgferry-pglite-${process.pid}.tar`);
    writeFileSync(file, Buffer.from(await dump.arrayBuffer()));
    return file;
  } finally {
    await db.close();
  }
}
