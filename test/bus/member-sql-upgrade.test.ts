// Upgrading a bus at migration 5 to 6 (sql/bus/0006_member_statements.sql),
// and on to 7 (0007_member_peek.sql, the fourth function): members that
// joined before the upgrade get their generated functions from the
// migrations and keep working (read what was sent to them before, publish,
// archive, leave) without joining again. test/bus/member-peek-upgrade.test.ts
// upgrades from 6 to 7 alone.
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from '../support/db.js';
import { installBusUpTo, generatedFunctions } from '../support/bus-upgrade.js';
import { migrate } from '../../src/index.js';
import { IsolatedBackend } from '../../src/bus/index.js';

const db = useTestDatabase();
const SCHEMA = 'upg_bus6';
const CH = 'upgrade-channel';

afterAll(async () => {
  await db.sql(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
});

const generated = (queue: string): Promise<string[]> => generatedFunctions(db, SCHEMA, queue);

describe('bus migration 6 on an installed bus with members', () => {
  it('gives the members that joined before it their functions; they keep working', async () => {
    await installBusUpTo(db, SCHEMA, 5);
    const join = async (): Promise<string> =>
      (await db.sql<{ q: string }>(`SELECT ${SCHEMA}.bus_join($1) AS q`, [CH]))[0]!.q;
    const [a, b] = [await join(), await join()];
    // Sent and read (not archived) before the upgrade; sent and not read.
    const before = await db.sql<{ ids: string[] }>(
      `SELECT ${SCHEMA}.bus_publish($1, $2, '{"n": 1}'::jsonb) AS ids`,
      [CH, a],
    );
    await db.sql(`SELECT ${SCHEMA}.bus_publish($1, $2, '{"n": 2}'::jsonb) AS ids`, [CH, a]);
    const taken = await db.sql<{ msg_id: string }>(
      `SELECT * FROM ${SCHEMA}.bus_read($1, $2, 0, 1, NULL)`,
      [b, CH],
    );
    expect(taken.map((r) => r.msg_id)).toEqual(before[0]!.ids);
    expect(await generated(b)).toEqual([]);

    const result = await migrate({
      connectionString: db.url,
      components: ['bus'],
      schemas: { queue: db.queueSchema, bus: SCHEMA },
    });
    expect(result.applied.map((x) => x.version)).toEqual([6, 7]);
    for (const q of [a, b]) {
      expect(await generated(q)).toEqual(
        ['archive', 'peek', 'read', 'send'].map((op) => `_pgferry_bus_${op}_${q.slice(4)}`),
      );
    }

    // The old member reads through the new functions (the first message is
    // visible again: its visibility timeout was 0), archiving as it goes.
    const backend = db.track(new IsolatedBackend({ connectionString: db.url, schema: SCHEMA }));
    const read = (archive: number[]) =>
      backend.read(b, {
        channel: CH,
        visibilityTimeoutSeconds: 30,
        batchSize: 10,
        maxPollSeconds: 0,
        pollIntervalMs: 10,
        archive,
      });
    const got = await read([]);
    expect(got.map((m) => m.message)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await backend.publish(CH, a, { n: 3 })).toHaveLength(1);
    const next = await read(got.map((m) => m.msgId));
    expect(next.map((m) => m.message)).toEqual([{ n: 3 }]);
    expect(
      (await db.sql(`SELECT * FROM ${db.queueSchema}.${`a_${b}`} ORDER BY msg_id`)).length,
    ).toBe(2);
    expect(await backend.archive(b, CH, [next[0]!.msgId])).toEqual([next[0]!.msgId]);

    // Leaving drops the queue and its functions.
    await backend.leave(b, CH);
    expect(await generated(b)).toEqual([]);
    await db.sql(`SELECT ${SCHEMA}.bus_leave($1, $2)`, [a, CH]);
    expect(await generated(a)).toEqual([]);
  });
});
