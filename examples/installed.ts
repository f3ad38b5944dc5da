import { installed } from 'pgferry';

const found = await installed({ connectionString: process.env.DATABASE_URL });
for (const { component, schema, version, latest } of found) {
  const state = version === latest ? 'up to date' : `at v${version}, this pgferry ships v${latest}`;
  console.log(component, schema, state);
}
// queue pgmq up to date
// bus public up to date …
