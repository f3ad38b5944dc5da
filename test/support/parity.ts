// Row-by-row comparison for parity tests: a prepared or generated copy of a
// queue-engine function run on one queue, the function itself on a twin.
import { expect } from 'vitest';

type Row = Record<string, unknown>;

/** Timestamp columns: set by each side's own clock, compared within TOL_MS. */
const TIMES = new Set(['enqueued_at', 'last_read_at', 'vt', 'archived_at']);
const TOL_MS = 5000;

/** Same rows in the same order: equal columns, timestamps within TOL_MS. */
export function expectSameRows(a: Row[], b: Row[]): void {
  expect(a.length, 'row count').toBe(b.length);
  a.forEach((row, i) => {
    const other = b[i]!;
    expect(Object.keys(row).sort()).toEqual(Object.keys(other).sort());
    for (const [k, v] of Object.entries(row)) {
      if (TIMES.has(k) && v != null && other[k] != null) {
        const d = Math.abs(
          new Date(v as string).getTime() - new Date(other[k] as string).getTime(),
        );
        expect(d, `${k} of row ${i}`).toBeLessThan(TOL_MS);
      } else {
        expect([k, v]).toEqual([k, other[k]]);
      }
    }
  });
}
