import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();

describe('queue engine smoke', () => {
  it('creates, sends and reads as PGMQ documents', async () => {
    const S = db.queueSchema;
    await db.sql(`select ${S}.create('q')`);
    const [sent] = await db.sql<{ send: string }>(`select * from ${S}.send('q', '{"a":1}')`);
    expect(sent!.send).toBe('1');
    const rows = await db.sql(`select * from ${S}.read('q', 30, 1)`);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ msg_id: '1', read_ct: 1, message: { a: 1 }, headers: null });
  });
});
