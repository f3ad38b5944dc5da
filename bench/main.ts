// `npm run bench [section …] [--smoke]`: pgferry against baselines measured
// in the same run on the same database. See bench/README.md.
import { createDatabase, startServer, type BenchContext, type BenchRow } from './harness.js';
import { loadavg } from 'node:os';
import { sections } from './sections/index.js';

const args = process.argv.slice(2);
const smoke = args.includes('--smoke');
const wanted = args.filter((a) => !a.startsWith('--'));
const selected = wanted.length ? sections.filter((s) => wanted.includes(s.name)) : sections;
if (wanted.length && selected.length !== wanted.length) {
  console.error(`unknown section; known: ${sections.map((s) => s.name).join(', ')}`);
  process.exit(2);
}

const fmt = (n: number): string =>
  n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(n >= 10 ? 1 : 2);

const rows: BenchRow[] = [];
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const server = await startServer();
console.log(
  `server: ${process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded PostgreSQL'}; load average (1/5/15 min) at start: ${load()}`,
);
let failed = false;
try {
  for (const section of selected) {
    console.log(
      `\n## ${section.name}: ${section.description}${smoke ? ' (smoke run: figures mean nothing)' : ''}`,
    );
    const db = await createDatabase(server.adminUrl);
    const ctx: BenchContext = {
      url: db.url,
      adminUrl: server.adminUrl,
      smoke,
      size: (full, small = Math.max(1, Math.ceil(full / 100))) => (smoke ? small : full),
      report(row) {
        rows.push(row);
        let line = `  ${row.operation.padEnd(52)} ${fmt(row.value).padStart(10)} ${row.unit}`;
        if (row.baseline) {
          const ratio = row.ratio ?? row.value / row.baseline.value;
          line += `   vs ${row.baseline.name} ${fmt(row.baseline.value)} → ${ratio.toFixed(2)}×${row.ratio === undefined ? '' : ' (median per-round ratio)'}`;
          if (row.target?.ratio !== undefined)
            line += ` (target ≥ ${row.target.ratio}×${ratio >= row.target.ratio ? ', met' : ', MISSED'})`;
        } else if (row.target?.max !== undefined) {
          line += ` (target ≤ ${row.target.max} ${row.unit}${row.value <= row.target.max ? ', met' : ', MISSED'})`;
        }
        console.log(line);
      },
      log: (msg) => console.log(`  ${msg}`),
    };
    try {
      await section.run(ctx);
      console.log(`  (load average after ${section.name}: ${load()})`);
    } catch (err) {
      failed = true;
      console.error(`  section ${section.name} failed:`, err);
    } finally {
      await db.drop();
    }
  }
} finally {
  await server.stop();
}
console.log(
  `\nbench: ${rows.length} figures from ${selected.length} section(s)${smoke ? ' (smoke)' : ''}`,
);
process.exit(failed ? 1 : 0);
