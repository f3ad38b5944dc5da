// An event whose id is drawn before a tick reads the sequence, but whose
// transaction commits after the tick took its snapshot, is counted by that
// tick yet is not in its batch. The adaptive ticker (tick_pending) must tick
// again for it at once, not leave it waiting for the idle tick.
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { S, connections, drainAll } from './helpers.js';

const db = useTestDatabase();

describe('tick_pending and late commits', () => {
  it('ticks again for an event that committed after the tick that counted it', async () => {
    await db.sql(`SELECT ${S}.create_queue('late')`);
    await db.sql(`SELECT ${S}.subscribe('late', 'c')`);
    await db.sql(`SELECT ${S}.tick_pending('late')`); // first tick
    // A queue's first event does not grow the sequence past create_queue's
    // tick (an unused sequence reads as 1, as in the reference): use it up.
    await db.sql(`SELECT ${S}.send('late', '{"n":0}'::jsonb)`);
    expect(await db.sql(`SELECT ${S}.tick_pending('late') AS n`)).toEqual([{ n: 1 }]);
    const [producer] = await connections(db, 1);
    await producer!.query('BEGIN');
    await producer!.query(`SELECT ${S}.send('late', '{"n":1}'::jsonb)`);
    // The tick counts the drawn id but its snapshot cannot see the open transaction.
    expect(await db.sql(`SELECT ${S}.tick_pending('late') AS n`)).toEqual([{ n: 1 }]);
    await producer!.query('COMMIT');
    expect(await db.sql(`SELECT ${S}.tick_pending('late') AS n`)).toEqual([{ n: 1 }]);
    // Every tick is consumed and the event arrives in the window the extra tick closed.
    expect(await drainAll(db, 'late', 'c')).toEqual([1, 2]);
    // Nothing is late any more: no further tick.
    expect(await db.sql(`SELECT ${S}.tick_pending('late') AS n`)).toEqual([{ n: 0 }]);
  });
});
