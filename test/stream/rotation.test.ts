// Event tables rotate and are emptied with TRUNCATE once every consumer has
// passed them, so consuming leaves no dead tuples, even while another
// session holds an old snapshot open. The queue engine (read + delete) on
// the same workload is the control: its dead tuples cannot be vacuumed away.
import { describe, expect, it } from 'vitest';
import { eventually, useTestDatabase } from '../support/db.js';
import { S, connections, drainAll, tick } from './helpers.js';

const db = useTestDatabase();
const Q = db.queueSchema;

describe('rotation', () => {
  it('leaves n_dead_tup = 0 on the event tables under a held snapshot (queue engine: > 0)', async () => {
    const [holder] = await connections(db, 1);
    await db.sql(
      `select ${S}.create_queue('rot'), ${S}.subscribe('rot', 'a'), ${S}.subscribe('rot', 'b')`,
    );
    await db.sql(`select ${S}.set_queue_config('rot', 'rotation_period', '1 millisecond')`);
    await db.sql(`select ${Q}.create('rot_control')`);
    const [{ qid }] = (await db.sql(
      `select queue_id as qid from ${S}.queue where queue_name = 'rot'`,
    )) as [{ qid: number }];

    // An old snapshot held open for the whole workload (what blocks VACUUM).
    await holder!.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    await holder!.query('SELECT count(*) FROM pg_class');

    // Rotation waits until every cursor's tick no longer sees a transaction
    // from before the last switch; other databases of the cluster running
    // long transactions can delay that, so rounds go on until two full cycles
    // of the three tables.
    const perRound = 500;
    let rotations = 0;
    let received = 0;
    let rounds = 0;
    // Events sent before each switch: the switch emptied the table it moved to.
    const sentAtSwitch: number[] = [];
    const switchTxid = async () =>
      (
        await db.sql<{ s: string }>(
          `select queue_switch_step1::text as s from ${S}.queue where queue_name = 'rot'`,
        )
      )[0]!.s;
    for (
      const started = Date.now();
      (rotations < 6 || rounds < 12) && Date.now() - started < 90_000;
      rounds++
    ) {
      await db.sql(
        `select ${S}.send_batch('rot', array_agg(g::text)) from generate_series(1, $1) g`,
        [perRound],
      );
      await db.sql(
        `select ${Q}.send_batch('rot_control', array_agg(to_jsonb(g))) from generate_series(1, $1) g`,
        [perRound],
      );
      await tick(db, 'rot');
      received += (await drainAll(db, 'rot', 'a')).length;
      await drainAll(db, 'rot', 'b');
      await db.sql(
        `select ${Q}.delete('rot_control', array_agg(msg_id)) from ${Q}.read('rot_control', 30, $1)`,
        [perRound],
      );
      const before = await switchTxid();
      await db.sql(`select ${S}.maint()`);
      if ((await switchTxid()) !== before) {
        rotations++;
        sentAtSwitch.push((rounds + 1) * perRound);
      }
    }
    expect(received).toBe(rounds * perRound);
    const [{ switched }] = (await db.sql(
      `select count(*)::int as switched from ${S}.queue where queue_name = 'rot' and queue_switch_time > now() - interval '1 hour'`,
    )) as [{ switched: number }];
    expect(switched).toBe(1);
    expect(rotations).toBeGreaterThanOrEqual(6);
    // Truncation really emptied old tables: of the three, the oldest was
    // emptied by the third-last switch, so exactly the events sent since
    // then remain (how many that is depends on when switches could happen).
    const [{ n }] = (await db.sql(`select count(*)::int as n from ${S}.event_${qid}`)) as [
      { n: number },
    ];
    expect(n).toBe(rounds * perRound - sentAtSwitch[rotations - 3]!);
    expect(n).toBeLessThan(rounds * perRound);

    // VACUUM counts exactly the dead tuples it could not remove.
    const tables = [0, 1, 2].map((i) => `${S}.event_${qid}_${i}`);
    for (const t of [...tables, `${Q}.q_rot_control`]) await db.sql(`VACUUM ${t}`);
    const dead = async (rel: string[]) =>
      Number(
        (
          await db.sql<{ d: string }>(
            `select coalesce(sum(n_dead_tup), 0) as d from pg_stat_user_tables where (schemaname || '.' || relname) = any($1)`,
            [rel],
          )
        )[0]!.d,
      );
    // the control proves the held snapshot blocks cleanup of deleted rows...
    await eventually(async () => (await dead([`${Q}.q_rot_control`])) > 0, 10_000, 50);
    // ...while the event tables have none
    expect(await dead(tables)).toBe(0);
    await holder!.query('COMMIT');
  }, 120_000); // the rounds above may take up to 90 s when other databases hold xmin back

  it('does not rotate while a consumer still needs the oldest table', async () => {
    await db.sql(
      `select ${S}.create_queue('lagging'), ${S}.subscribe('lagging', 'fast'), ${S}.subscribe('lagging', 'slow')`,
    );
    await db.sql(`select ${S}.set_queue_config('lagging', 'rotation_period', '1 millisecond')`);
    await db.sql(`select ${S}.send('lagging', 'kept')`);
    for (let i = 0; i < 6; i++) {
      await tick(db, 'lagging');
      await drainAll(db, 'lagging', 'fast');
      await db.sql(`select ${S}.maint()`);
    }
    // slow never consumed: its event must still be there
    expect(await drainAll(db, 'lagging', 'slow')).toHaveLength(1);
  });
});
