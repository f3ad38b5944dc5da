import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

describe('tracing without @opentelemetry/api', () => {
  it('loads every entry point and enableTracing() resolves false', () => {
    const res = spawnSync(
      process.execPath,
      [
        '--import',
        here('./fixtures/block-otel.mjs'),
        '--import',
        'tsx',
        here('./fixtures/without-otel.ts'),
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(res.stderr).toBe('');
    expect(JSON.parse(res.stdout.trim().split('\n').pop()!)).toEqual({
      enabled: false,
      on: false,
      blocked: true,
    });
  });
});
