import { afterAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { withDatabase } from '../support/urls.js';
import { testClient } from '../support/connections.js';

const repo = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
/** What each example prints (those that print nothing must print nothing). */
const OUTPUT: Record<string, RegExp> = {
  'first-queue.ts': /^1 42 1\n$/,
  'tasks.ts': /mail to a@example\.com\n\{ succeeded: 1, retried: 0, dead: 0 \}/,
  'stream.ts': /^billed order 42\n$/,
  'tasks-define.ts': /^mail to a@example\.com: hi\n$/,
  'dead-letters.ts': /^0\n$/,
  'migrate.ts': /^0 \{ queue: \d+ \}\n$/,
  'dashboard-node.ts': /^200 Queues · pgferry true\nyour app\n$/,
  'dashboard-express.ts': /^200 Queues · pgferry true\n$/,
  'dashboard-fastify.ts': /^200 Queues · pgferry true\n$/,
  'dashboard-hono.ts': /^200 Queues · pgferry true\n$/,
  'metrics-server.ts': /^pgferry_task_succeeded_total\{task="ping"\} 1\n$/,
  'tracing.ts': /^true\n\[ 'send orders' \]\n$/,
  'installed.ts': /^(\w+ \w+ up to date\n){4}$/,
  // taskfeat-b additions
  'tasks-results.ts': /^\{ url: 'cat\.small\.png' \} \{ of: 3, done: 3 \}\n\[ '1 completed' \]\n$/,
  'tasks-flows.ts': /^crawl: 2 pages, 1800 bytes\n$/,
  'tasks-complete-tx.ts': /^\{ invoiced: 7 \}\n1\n$/,
};
const MARKER = /^<!-- example: (examples\/[\w.-]+\.ts) -->$/;
/** A block of declarations (an interface, a constructor's signature), shown as reference, not run. */
const SIGNATURE = '<!-- signature: declarations, not a program -->';

interface Snippet {
  doc: string;
  line: number;
  code: string;
  example: string | undefined;
  signature: boolean;
}

/** Every ```ts block of a Markdown file, with the example file its marker line names. */
function snippets(doc: string): Snippet[] {
  const lines = readFileSync(join(repo, doc), 'utf8').split('\n');
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const end = lines.indexOf('```', i + 1);
    out.push({
      doc,
      line: i + 1,
      code: lines.slice(i + 1, end).join('\n') + '\n',
      example: MARKER.exec(lines[i - 1] ?? '')?.[1],
      signature: lines[i - 1] === SIGNATURE,
    });
    i = end;
  }
  return out;
}

const docs = [
  'README.md',
  ...readdirSync(join(repo, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const all = docs.flatMap(snippets);
const examples = readdirSync(join(repo, 'examples')).filter((f) => f.endsWith('.ts'));

describe('docs show the examples exactly', () => {
  it('every snippet in README.md and docs/ is a complete program under examples/', () => {
    const bare = all.filter((s) => !s.example && !s.signature);
    expect(bare.map((s) => `${s.doc}:${s.line}`)).toEqual([]);
  });

  it('blocks marked as signatures hold declarations only (nothing awaited)', () => {
    const runnable = all.filter((s) => s.signature && /\bawait\b/.test(s.code));
    expect(runnable.map((s) => `${s.doc}:${s.line}`)).toEqual([]);
  });

  it('each marked snippet is the example file, character for character', () => {
    for (const s of all.filter((x) => x.example)) {
      const file = readFileSync(join(repo, s.example!), 'utf8');
      expect({ at: `${s.doc}:${s.line}`, code: s.code }).toEqual({
        at: `${s.doc}:${s.line}`,
        code: file,
      });
    }
  });

  it('every example is shown in the docs', () => {
    const shown = new Set(all.map((s) => s.example));
    expect(examples.filter((f) => !shown.has(`examples/${f}`))).toEqual([]);
  });
});

describe('examples run and exit by themselves', () => {
  const admin = inject('adminUrl');
  const made: string[] = [];
  const sql = async (text: string): Promise<void> => {
    const c = testClient({ connectionString: admin });
    await c.connect();
    try {
      await c.query(text);
    } finally {
      await c.end();
    }
  };
  afterAll(async () => {
    for (const db of made) await sql(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  });

  for (const file of examples) {
    it(file, { timeout: 90_000 }, async () => {
      // each example on its own copy of the migrated database (they reuse names like `orders`)
      const db = `${inject('templateDb')}_ex_${made.length}_${process.pid}`;
      made.push(db);
      await sql(`CREATE DATABASE ${db} TEMPLATE ${inject('templateDb')}`);
      const running = run(process.execPath, ['--import', 'tsx', `examples/${file}`], {
        cwd: repo,
        env: { ...process.env, DATABASE_URL: withDatabase(admin, db) },
        timeout: 60_000, // killed if it lingers
      });
      running.child.stdin?.end('hello\n'); // one line of input, then end of input (bus-chat.ts)
      const result = await running.then(
        ({ stdout }) => ({ exit: 0, stdout, stderr: '' }),
        (err: { code?: unknown; signal?: unknown; stdout?: string; stderr?: string }) => ({
          exit: err.signal ?? err.code,
          stdout: err.stdout ?? '',
          stderr: err.stderr ?? '',
        }),
      );
      expect({ exit: result.exit, stderr: result.stderr }).toEqual({ exit: 0, stderr: '' });
      expect(result.stdout).toMatch(OUTPUT[file] ?? /^$/);
    });
  }
});
