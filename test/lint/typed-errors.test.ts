import { describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useTestDatabase } from '../support/db.js';
import { InvalidArgumentError, PgferryError } from '../../src/index.js';

// docs/errors.md: everything pgferry throws is a PgferryError subclass.
const root = fileURLToPath(new URL('../../', import.meta.url));
const db = useTestDatabase();

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'generated' ? [] : sources(path);
    return e.name.endsWith('.ts') ? [path] : [];
  });
}

describe('typed errors', () => {
  it('src/ constructs no plain Error, TypeError or RangeError', () => {
    const found = sources(join(root, 'src')).flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .map((line, i) => ({ line, at: `${relative(root, file)}:${i + 1}` }))
        .filter(({ line }) => /\bnew (?:Type|Range|Syntax)?Error\(/.test(line))
        .map(({ at, line }) => `${at}: ${line.trim()}`),
    );
    expect(found).toEqual([]);
  });

  it('a queue Consumer iterated twice says so with InvalidArgumentError', async () => {
    const client = db.queueClient();
    await client.createQueue('iterate_twice');
    const consumer = client.consume('iterate_twice', { signal: AbortSignal.abort() });
    for await (const _ of consumer) void _;
    const err = await consumer[Symbol.asyncIterator]()
      .next()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect(err).toBeInstanceOf(PgferryError);
    expect(err).toMatchObject({ code: 'PGFERRY_INVALID_ARGUMENT' });
  });
});
