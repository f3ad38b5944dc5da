import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/embedded/server.js';

export interface PgBouncer {
  /** URL of `database` through the pooler. */
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts Debian's `pgbouncer` (scripts/ensure-system-deps.sh installs it) on
 * a private port in front of `target`, in transaction or session mode. As
 * root it runs as `postgres` (pgbouncer refuses root). `poolSize` server
 * sessions per database and user: 4 by default in transaction mode (so few
 * that every client shares them), 50 in session mode (where each client
 * connection holds one for its whole life).
 */
export async function startPgBouncer(
  target: string,
  mode: 'transaction' | 'session',
  poolSize = mode === 'transaction' ? 4 : 50,
): Promise<PgBouncer> {
  const t = new URL(target);
  const user = decodeURIComponent(t.username);
  const password = decodeURIComponent(t.password);
  const dir = mkdtempSync(join(tmpdir(), 'pgferry-pgbouncer-'));
  chmodSync(dir, 0o755);
  const port = await freePort();
  writeFileSync(join(dir, 'users.txt'), `"${user}" "${password}"\n`, { mode: 0o644 });
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `* = host=${t.hostname} port=${t.port || 5432}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      // A server URL without a password (trust auth, e.g. DATABASE_URL on a local server):
      // clients send none, which `plain` refuses as an empty password.
      `auth_type = ${password ? 'plain' : 'trust'}`,
      `auth_file = ${join(dir, 'users.txt')}`,
      `pool_mode = ${mode}`,
      `default_pool_size = ${poolSize}`,
      'max_client_conn = 500',
      'ignore_startup_parameters = extra_float_digits,options,statement_timeout',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot
    ? {
        uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
        gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
      }
    : {};
  const child: ChildProcess = spawn('pgbouncer', [join(dir, 'pgbouncer.ini')], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...ids,
  });
  let out = '';
  await new Promise<void>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`pgbouncer did not start:\n${out}`)), 30_000);
    const on = (d: Buffer): void => {
      out += d.toString();
      if (/process up|listening on/.test(out)) {
        clearTimeout(timer);
        res();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('error', (err) => rej(err));
    child.once('exit', (code) => rej(new Error(`pgbouncer exited (${code}):\n${out}`)));
  });
  const url = new URL(target);
  url.port = String(port);
  return {
    url: url.toString(),
    async stop() {
      if (child.exitCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM'); // immediate shutdown (SIGINT waits for clients to leave)
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
