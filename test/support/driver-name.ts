/**
 * Which driver the suite runs on: PGFERRY_TEST_DRIVER=pg (default) |
 * postgres | pglite. `npm test` runs the queue and driver suites once per
 * driver (scripts/test.ts).
 */
export type TestDriverName = 'pg' | 'postgres' | 'pglite';

export function testDriverName(): TestDriverName {
  const name = process.env.PGFERRY_TEST_DRIVER || 'pg';
  if (name !== 'pg' && name !== 'postgres' && name !== 'pglite') {
    throw new Error(
      `PGFERRY_TEST_DRIVER must be pg, postgres or pglite, not ${JSON.stringify(name)}`,
    );
  }
  return name;
}
