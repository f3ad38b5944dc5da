import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

describe('optional peer dependencies', () => {
  it('pgferry loads without postgres, @electric-sql/pglite, kysely and drizzle-orm', () => {
    const res = spawnSync(
      process.execPath,
      [
        '--import',
        here('./fixtures/block-optional-peers.mjs'),
        '--import',
        'tsx',
        here('./fixtures/import-without-peers.ts'),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(res.stderr).toBe('');
    const { blocked, out } = JSON.parse(res.stdout.trim().split('\n').pop()!) as {
      blocked: boolean;
      out: string[];
    };
    expect(blocked).toBe(true);
    expect(out).toEqual([
      expect.stringMatching(/^postgres:PGFERRY_INVALID_ARGUMENT:.*npm install postgres/),
      expect.stringMatching(/^pglite:PGFERRY_INVALID_ARGUMENT:.*npm install @electric-sql\/pglite/),
    ]);
  });
});
