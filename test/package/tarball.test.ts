import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const repo = resolve(import.meta.dirname, '../..');
// Asynchronous on purpose: a blocked test worker misses vitest's heartbeats during the build.
const run = promisify(execFile);

/**
 * What a user gets from `npm install pgferry`: the packed tarball, unpacked
 * into a fresh project whose node_modules holds only pgferry's runtime
 * dependencies (no @types/pg). Loaded with import and with require, and
 * typechecked by CommonJS TypeScript projects.
 */
describe('the packed package', () => {
  it('imports, requires and typechecks from the tarball', { timeout: 600_000 }, async () => {
    const work = mkdtempSync(join(tmpdir(), 'pgferry-pack-'));
    try {
      const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', work], {
        cwd: repo,
      });
      const tgz = join(work, stdout.trim().split('\n').pop()!);
      const app = join(work, 'app');
      const pkgDir = join(app, 'node_modules', 'pgferry');
      mkdirSync(pkgDir, { recursive: true });
      await run('tar', ['xzf', tgz, '-C', pkgDir, '--strip-components=1']);
      const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
      };
      for (const dep of [...Object.keys(manifest.dependencies), '@types/node', 'typescript']) {
        mkdirSync(dirname(join(app, 'node_modules', dep)), { recursive: true });
        symlinkSync(join(repo, 'node_modules', dep), join(app, 'node_modules', dep), 'dir');
      }
      writeFileSync(join(app, 'package.json'), '{ "name": "app", "type": "commonjs" }\n');

      // no `any` in the published declarations
      const anys = declarations(pkgDir).filter(({ line }) => /\bany\b/.test(stripComment(line)));
      expect(anys).toEqual([]);

      const program = (load: string): string => `${load}
(async () => {
  await migrate({ connectionString: process.env.URL, components: ['queue'] });
  const client = new QueueClient({ connectionString: process.env.URL });
  const q = client.queue(process.env.Q);
  await q.create();
  await q.send({ n: 1 });
  const [m] = await q.read({ visibilityTimeoutSeconds: 30 });
  console.log(typeof defineTask, typeof Consumer, typeof Bus, m.message.n);
  await client.close();
})().catch((e) => { console.error(e); process.exitCode = 1; });
`;
      writeFileSync(
        join(app, 'req.cjs'),
        program(`const { QueueClient, migrate } = require('pgferry');
const { defineTask } = require('pgferry/tasks');
const { Consumer } = require('pgferry/stream');
const { Bus } = require('pgferry/bus');`),
      );
      writeFileSync(
        join(app, 'imp.mjs'),
        program(`import { QueueClient, migrate } from 'pgferry';
import { defineTask } from 'pgferry/tasks';
import { Consumer } from 'pgferry/stream';
import { Bus } from 'pgferry/bus';`),
      );
      for (const [file, q] of [
        ['req.cjs', 'from_require'],
        ['imp.mjs', 'from_import'],
      ] as const) {
        const res = await run(process.execPath, [file], {
          cwd: app,
          env: { ...process.env, URL: db.url, Q: q },
        });
        expect(res.stdout.trim()).toBe('function function function 1');
      }

      writeFileSync(
        join(app, 'main.ts'),
        `import { QueueClient, PgDriver, PgferryError } from 'pgferry';
import { defineTask, Worker, type AnyTask } from 'pgferry/tasks';
import { StreamClient } from 'pgferry/stream';
import { Bus, DirectBackend } from 'pgferry/bus';

const send = defineTask({ name: 'send', handler: async (input: { to: string }) => input.to.length });
const tasks: AnyTask[] = [send];
export const worker = new Worker({ connectionString: 'postgres://x', tasks });
export const client = new QueueClient({ driver: new PgDriver({ poolConfig: { max: 2 } }) });
export const q = client.queue<{ id: number }>('orders');
export const streams = new StreamClient({ connectionString: 'postgres://x' });
export const bus = new Bus<{ text: string }>({ backend: new DirectBackend({ client }), channel: 'c' });
export const isError = (e: unknown): boolean => e instanceof PgferryError && e.code.length > 0;
// The types are real, not \`any\`: each line below must be an error.
// @ts-expect-error a queue is not a number
export const wrong: number = q;
// @ts-expect-error the message type is checked
void q.send({ id: 'not a number' });
`,
      );
      for (const [module, moduleResolution] of [
        ['node16', 'node16'],
        ['commonjs', 'node10'],
      ]) {
        writeFileSync(
          join(app, 'tsconfig.json'),
          JSON.stringify({
            compilerOptions: {
              module,
              moduleResolution,
              target: 'es2022',
              strict: true,
              noEmit: true,
              skipLibCheck: false,
              types: ['node'],
            },
            files: ['main.ts'],
          }),
        );
        const tsc = join(repo, 'node_modules', 'typescript', 'bin', 'tsc');
        let output = '';
        try {
          await run(process.execPath, [tsc, '-p', app], { cwd: app });
        } catch (err) {
          output = String((err as { stdout?: string }).stdout);
        }
        expect({ module, output }).toEqual({ module, output: '' });
      }
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});

function declarations(dir: string): { file: string; line: string }[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.d.ts'))
    .flatMap((e) => {
      const file = join(e.parentPath, e.name);
      return readFileSync(file, 'utf8')
        .split('\n')
        .map((line) => ({ file, line }));
    });
}

function stripComment(line: string): string {
  const t = line.trim();
  if (t.startsWith('*') || t.startsWith('/*') || t.startsWith('//')) return '';
  // The words inside string literals are text, not types.
  return t.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
}
