import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { VERSION } from '../../src/version.js';

const repo = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

describe('pgferry --version and the bin', () => {
  it('VERSION is package.json version', () => {
    const pkg = JSON.parse(readFileSync(resolve(repo, 'package.json'), 'utf8')) as {
      version: string;
    };
    expect(VERSION).toBe(pkg.version);
  });

  it('`npx pgferry --version` runs from the source inside a clone (no dist/ needed)', async () => {
    const { stdout } = await run('npx', ['--no-install', 'pgferry', '--version'], { cwd: repo });
    expect(stdout.trim()).toBe(VERSION);
  });
});
