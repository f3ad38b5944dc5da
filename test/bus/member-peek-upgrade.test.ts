// Upgrading a bus at migration 6 to 7 (sql/bus/0007_member_peek.sql) with
// live members: the members that joined before it get their peek function
// from the migration and read through bus_peek without joining again (what
// an earlier bus_read hid stays hidden until its visibility timeout); a
// member that joins after it, on the isolated backend, reads through
// bus_peek while it listens; leaving drops all four functions.
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { installBusUpTo, generatedFunctions } from '../support/bus-upgrade.js';
import { migrate } from '../../src/index.js';
import { Bus, IsolatedBackend } from '../../src/bus/index.js';

const db = useTestDatabase();
const SCHEMA = 'upg_bus7';
const OLD = 'upg_bus7_old';
const CH = 'peek-upgrade-channel';

afterAll(async () => {
  await db.sql(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await db.sql(`DROP SCHEMA IF EXISTS ${OLD} CASCADE`);
});

const generated = (queue: string): Promise<string[]> => generatedFunctions(db, SCHEMA, queue);

interface Msg {
  msg_id: string;
  message: { type: string; data: { n: number } };
}

describe('bus migration 7 on an installed bus with members', () => {
  it('gives the members that joined before it their peek function; old and new members read through bus_peek', async () => {
    await installBusUpTo(db, SCHEMA, 6);
    const join = async (): Promise<string> =>
      (await db.sql<{ q: string }>(`SELECT ${SCHEMA}.bus_join($1) AS q`, [CH]))[0]!.q;
    // In the bus's wire form, so that a Bus member can decode them.
    const publish = async (from: string, n: number): Promise<string[]> =>
      (
        await db.sql<{ ids: string[] }>(`SELECT ${SCHEMA}.bus_publish($1, $2, $3::jsonb) AS ids`, [
          CH,
          from,
          JSON.stringify({ type: 'json', data: { n } }),
        ])
      )[0]!.ids;
    const peek = (q: string, archive: string[] | null, skip: string[] | null) =>
      db.sql<Msg>(`SELECT * FROM ${SCHEMA}.bus_peek($1, $2, 10, $3::bigint[], $4::bigint[])`, [
        q,
        CH,
        archive,
        skip,
      ]);
    const [a, b] = [await join(), await join()];
    const [one] = await publish(a, 1);
    const [two] = await publish(a, 2);
    // b took message 1 with bus_read before the upgrade (hidden for 30 s).
    const taken = await db.sql<Msg>(`SELECT * FROM ${SCHEMA}.bus_read($1, $2, 30, 1, NULL)`, [
      b,
      CH,
    ]);
    expect(taken.map((r) => r.msg_id)).toEqual([one]);
    expect(await generated(b)).toEqual(
      ['archive', 'read', 'send'].map((op) => `_pgferry_bus_${op}_${b.slice(4)}`),
    );

    const result = await migrate({
      connectionString: db.url,
      components: ['bus'],
      schemas: { queue: db.queueSchema, bus: SCHEMA },
    });
    expect(result.applied.map((x) => x.version)).toEqual([7]);
    for (const q of [a, b]) {
      expect(await generated(q)).toEqual(
        ['archive', 'peek', 'read', 'send'].map((op) => `_pgferry_bus_${op}_${q.slice(4)}`),
      );
    }

    // The old member peeks: message 1 is still hidden by its read, 2 is
    // there, and a peek hides nothing (the same answer twice).
    for (let i = 0; i < 2; i++) {
      expect((await peek(b, null, null)).map((r) => r.msg_id)).toEqual([two]);
    }
    expect(await peek(b, null, [two!])).toEqual([]);

    // A member joining now, on the isolated backend, listens and so reads
    // through bus_peek; it gets what is published after its join.
    const backend = db.track(new IsolatedBackend({ connectionString: db.url, schema: SCHEMA }));
    const bus = new Bus<{ n: number }>({ backend, channel: CH });
    const heard: number[] = [];
    bus.subscribe((m) => {
      heard.push(m.n);
    });
    await bus.start();
    const c = bus.queue!;
    expect(backend.listening(c)).toBe(true);
    expect(await generated(c)).toHaveLength(4);
    const ids = await publish(a, 3);
    expect(ids).toHaveLength(2);
    await eventually(() => heard.length === 1);
    expect(heard).toEqual([3]);
    // Read by bus_peek, not bus_read: archived soon after with read_ct 0.
    const archivedOfC = (): Promise<{ read_ct: number }[]> =>
      db.sql(`SELECT read_ct FROM ${db.queueSchema}.a_${c}`);
    await eventually(async () => (await archivedOfC()).length === 1);
    expect(await archivedOfC()).toEqual([{ read_ct: 0 }]);
    // The old member archives what it handled with the peek that reads on.
    const rest = await peek(b, [two!], null);
    expect(rest.map((r) => r.message.data)).toEqual([{ n: 3 }]);
    expect(
      (await db.sql(`SELECT msg_id FROM ${db.queueSchema}.a_${b} ORDER BY msg_id`)).map((r) =>
        String(r.msg_id),
      ),
    ).toEqual([two]);

    // Leaving drops the queue and all four functions; a member that left
    // gets nothing more.
    await bus.stop();
    expect(await generated(c)).toEqual([]);
    expect(await publish(a, 4)).toHaveLength(1);
    await db.sql(`SELECT ${SCHEMA}.bus_leave($1, $2)`, [b, CH]);
    expect(await generated(b)).toEqual([]);
    expect(await publish(a, 5)).toEqual([]);
    await db.sql(`SELECT ${SCHEMA}.bus_leave($1, $2)`, [a, CH]);
    expect(await generated(a)).toEqual([]);
  });

  it('an IsolatedBackend of this version on a schema before it reads with bus_read', async () => {
    await installBusUpTo(db, OLD, 6);
    const channel = 'peek-missing-channel';
    const member = async (): Promise<Bus<{ n: number }>> => {
      const backend = db.track(new IsolatedBackend({ connectionString: db.url, schema: OLD }));
      const bus = new Bus<{ n: number }>({ backend, channel });
      db.track({ close: () => bus.stop() });
      await bus.start();
      return bus;
    };
    const [from, to] = [await member(), await member()];
    const heard: number[] = [];
    to.subscribe((m) => {
      heard.push(m.n);
    });
    for (let n = 1; n <= 3; n++) expect(await from.publish({ n })).toBe(1);
    await eventually(() => heard.length === 3);
    expect(heard).toEqual([1, 2, 3]);
    expect(to.stats.readErrors).toBe(0);
    // Read by bus_read (each counted once), archived by a later read.
    const archived = (): Promise<{ read_ct: number }[]> =>
      db.sql(`SELECT read_ct FROM ${db.queueSchema}.a_${to.queue!} ORDER BY msg_id`);
    await eventually(async () => (await archived()).length === 3);
    expect(await archived()).toEqual([{ read_ct: 1 }, { read_ct: 1 }, { read_ct: 1 }]);
  });
});
