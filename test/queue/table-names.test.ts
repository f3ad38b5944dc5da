import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { TableResolver } from '../../src/queue/engine/tables.js';
import type { Queryable } from '../../src/driver/types.js';

const db = useTestDatabase();

describe('queue table names', () => {
  it('a plain name needs no round trip; any other asks format_table_name, and both agree with it', async () => {
    const driver = db.driver();
    let asked = 0;
    const counting: Queryable = {
      query: (text, params, options) => {
        asked++;
        return driver.query(text, params, options);
      },
    };
    const tables = new TableResolver(db.queueSchema);
    const s = `"${db.queueSchema}"`;
    expect(await tables.table(counting, 'orders_2', 'q')).toBe(`${s}."q_orders_2"`);
    expect(await tables.table(counting, 'orders_2', 'a')).toBe(`${s}."a_orders_2"`);
    expect(asked).toBe(0);
    expect(await tables.table(counting, 'Mixed-Case.Name', 'q')).toBe(`${s}."q_mixed-case.name"`);
    expect(asked).toBe(1);
    // The rule the shortcut stands for, checked against the SQL on plain names.
    for (const name of ['orders_2', 'a', '_x9', 'q0123456789_abcdefghijklmnopqrstuvwxyz']) {
      for (const prefix of ['q', 'a'] as const) {
        const [r] = await db.sql<{ t: string }>(`SELECT ${s}.format_table_name($1, $2) AS t`, [
          name,
          prefix,
        ]);
        expect(await new TableResolver(db.queueSchema).table(counting, name, prefix)).toBe(
          `${s}."${r!.t}"`,
        );
      }
    }
  });
});
