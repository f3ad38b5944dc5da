import pg from 'pg';
import { EXIT } from './command.js';
import { PgferryError, mapError } from '../errors.js';

/**
 * One clear sentence for the mistakes people make in their first minutes
 * (no database configured, pgferry not installed in it), instead of the
 * driver's or the server's wording. Used by main.ts; each case has its exit
 * code and a test in test/cli/newcomer-errors.test.ts.
 */

/** Commands that connect to a database given by --url, DATABASE_URL or PG* variables. */
export const DATABASE_COMMANDS = new Set([
  'migrate',
  'worker',
  'dlq',
  'ticker',
  'queues',
  'jobs',
  'streams',
  'dashboard',
]);

const NO_DATABASE =
  'no database to connect to: set DATABASE_URL (e.g. DATABASE_URL=postgres://user:password@localhost:5432/app) ' +
  'or pass --url; for a local one, run `npx pgferry dev` and use the URL it prints';

/** The database a command was pointed at: --url, else DATABASE_URL; undefined when only PG* variables (or nothing) say. */
export function targetUrl(argv: readonly string[]): string | undefined {
  const i = argv.findIndex((a) => a === '--url' || a.startsWith('--url='));
  if (i >= 0) return argv[i]!.startsWith('--url=') ? argv[i]!.slice(6) : argv[i + 1];
  return process.env.DATABASE_URL || undefined;
}

/** The sentence when a database command has nothing to connect to, else undefined. */
export function missingDatabase(command: string, argv: readonly string[]): string | undefined {
  if (!DATABASE_COMMANDS.has(command) || targetUrl(argv)) return undefined;
  const libpq = ['PGHOST', 'PGDATABASE', 'PGUSER', 'PGSERVICE'].some((v) => process.env[v]);
  return libpq ? undefined : NO_DATABASE;
}

/** `database "app" on localhost:5432` for messages (never the password). */
export function describeTarget(url: string | undefined): string {
  if (!url) return 'the database the PG* variables name';
  try {
    const u = new URL(url);
    const db = decodeURIComponent(u.pathname.slice(1)) || u.username || 'postgres';
    return `database "${db}" on ${u.hostname || 'localhost'}:${u.port || '5432'}`;
  } catch {
    return 'the database given';
  }
}

/** pgferry's engines are not installed (or not in that schema) in the database. */
export class NotInstalledError extends PgferryError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('PGFERRY_NOT_INSTALLED', message, options);
  }
}

/** A clearer sentence and exit code for an error from a command, or undefined to print it as is. */
export function explain(
  err: unknown,
  argv: readonly string[],
): { message: string; exit: number } | undefined {
  if (err instanceof NotInstalledError) return { message: err.message, exit: EXIT.incompatible };
  const e = err as { message?: unknown; sqlState?: unknown; code?: unknown };
  const text = typeof e.message === 'string' ? e.message : '';
  if (/no PostgreSQL user name specified/.test(text))
    return { message: NO_DATABASE, exit: EXIT.usage };
  const state = typeof e.sqlState === 'string' ? e.sqlState : e.code;
  const schema =
    /schema "([^"]+)" does not exist/.exec(text)?.[1] ??
    (state === '42883' || state === '42P01'
      ? /(?:function|relation) "?([a-z_][a-z0-9_]*)\.(?!q_|a_)/i.exec(text)?.[1]
      : undefined);
  if (schema && (state === '3F000' || state === '42883' || state === '42P01'))
    return {
      message: `pgferry is not installed in ${describeTarget(targetUrl(argv))} (${text}): run \`pgferry migrate\` against it first`,
      exit: EXIT.incompatible,
    };
  return undefined;
}

/** Throws NotInstalledError unless pgferry's migrations table exists in `schema` (the `engine` that needs it). */
export async function requireInstalled(
  connectionString: string | undefined,
  schema: string,
  engine: string,
): Promise<void> {
  const client = new pg.Client(connectionString ? { connectionString } : {});
  try {
    await client.connect();
    const r = await client.query<{ ok: boolean }>(
      `SELECT to_regclass(format('%I._pgferry_migrations', $1::text)) IS NOT NULL AS ok`,
      [schema],
    );
    if (!r.rows[0]?.ok)
      throw new NotInstalledError(
        `pgferry's ${engine} engine is not installed in ${describeTarget(connectionString)} (no schema "${schema}" with pgferry's migrations): run \`pgferry migrate\` against it first`,
      );
  } catch (err) {
    throw mapError(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** `database "app" on host:port as user "u"`, read from the server itself. */
export async function connectedTarget(connectionString: string | undefined): Promise<string> {
  const client = new pg.Client(connectionString ? { connectionString } : {});
  try {
    await client.connect();
    const r = await client.query<{ db: string; usr: string }>(
      'SELECT current_database() AS db, current_user AS usr',
    );
    const host = client.host + (client.port ? `:${client.port}` : '');
    return `database "${r.rows[0]!.db}" on ${host} as user "${r.rows[0]!.usr}"`;
  } finally {
    await client.end().catch(() => undefined);
  }
}
