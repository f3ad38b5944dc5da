import type { TestProject } from 'vitest/node';
import pg from 'pg';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/embedded/server.js';
import { migrate } from '../../src/migrate/migrator.js';
import { testSchemas, withDatabase } from './urls.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
  }
}

let server: EmbeddedPostgres | undefined;
let adminUrl = '';
let templateDb = '';
let dataDir = '';

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
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${templateDb}`);
  } finally {
    await admin.end();
  }
  await migrate({ connectionString: withDatabase(adminUrl, templateDb), schemas: testSchemas() });
  project.provide('adminUrl', adminUrl);
  project.provide('templateDb', templateDb);
}

export async function teardown(): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const left = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname = $1 OR datname LIKE $2`,
      [templateDb, `${templateDb}_%`],
    );
    for (const { datname } of left.rows) await admin.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
  if (server) await server.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}
