// The prepared reads (read, processBatch) return their timestamps as
// `extract(epoch …)` and decode them in TypeScript (src/queue/rows.ts,
// epochToMessage) instead of letting the driver parse a timestamptz. The
// Dates must be exactly the ones the driver's own parsing gives for the same
// row: the same table, one statement selecting both forms, instants with
// every kind of fraction, before 1970, far ahead, the infinities, in a
// session time zone that is not UTC.
import { beforeAll, describe, expect, it } from 'vitest';
import { quoteIdent } from '../../src/driver/quote.js';
import type { Driver } from '../../src/driver/types.js';
import { QueueClient } from '../../src/queue/client.js';
import {
  EPOCH_MESSAGE_COLUMNS,
  epochMs,
  epochToMessage,
  toMessage,
  type EpochMessageRow,
  type MessageRow,
} from '../../src/queue/rows.js';
import { useTestDatabase } from '../support/db.js';

const db = useTestDatabase();
const S = quoteIdent(db.queueSchema);
let driver: Driver;
let client: QueueClient;

beforeAll(() => {
  driver = db.driver();
  client = new QueueClient({ driver, schema: db.queueSchema });
});

const INSTANTS = [
  '2026-12-06 21:33:39.123456+00',
  '2026-12-06 21:33:39.999999+00',
  '2026-12-06 21:33:39.000999+00',
  '2026-12-06 21:33:39.001+00',
  '2026-12-06 21:33:39+00',
  '2000-01-01 00:00:00+00',
  '1970-01-01 00:00:00.000001+00',
  '1969-12-31 23:59:59.999999+00',
  '1969-12-31 23:59:54.4996+00',
  '1950-06-30 12:00:00.5+02',
  '2262-04-11 23:47:16.854775+00',
  '9999-12-31 23:59:59.999999+00',
];

describe('epoch-decoded message rows', () => {
  it('give the same Dates as the driver parsing the timestamptz', async () => {
    await client.createQueue('epoch_rows');
    const ids = await client.sendBatch(
      'epoch_rows',
      INSTANTS.map((_, i) => ({ i })),
    );
    const t = `${S}.${quoteIdent('q_epoch_rows')}`;
    for (const [i, at] of INSTANTS.entries()) {
      // A different instant per column, so a swapped column shows.
      await driver.query(
        `UPDATE ${t} SET vt = $2::timestamptz, enqueued_at = $3::timestamptz,
                last_read_at = CASE WHEN $4 THEN NULL ELSE $2::timestamptz - interval '1 microsecond' END
          WHERE msg_id = $1`,
        [ids[i], at, INSTANTS[(i + 1) % INSTANTS.length], i % 5 === 4],
      );
    }
    await driver.transaction(async (tx) => {
      await tx.query(`SET LOCAL TimeZone = 'Asia/Kathmandu'`);
      const rows = (
        await tx.query<EpochMessageRow>(
          `SELECT ${EPOCH_MESSAGE_COLUMNS('m')} FROM ${t} m ORDER BY msg_id`,
        )
      ).rows;
      const plain = (
        await tx.query<MessageRow>(
          `SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM ${t} ORDER BY msg_id`,
        )
      ).rows;
      expect(rows).toHaveLength(INSTANTS.length);
      rows.forEach((r, i) => {
        const a = epochToMessage(r);
        const b = toMessage(plain[i]!);
        expect(a, INSTANTS[i]).toEqual(b);
        for (const k of ['enqueuedAt', 'visibleAt'] as const)
          expect(a[k].getTime(), `${k} ${INSTANTS[i]}`).toBe(b[k].getTime());
        expect(a.lastReadAt?.getTime() ?? null).toBe(b.lastReadAt?.getTime() ?? null);
      });
    });
  });

  it('decode numeric text, numbers and the infinities', () => {
    expect(epochMs('1733500000.123456')).toBe(1733500000123);
    expect(epochMs('1733500000.000000')).toBe(1733500000000);
    expect(epochMs('-5.500400')).toBe(-5501);
    expect(epochMs('-0.000001')).toBe(-1);
    expect(epochMs('-0.500000')).toBe(-500);
    expect(epochMs('12')).toBe(12000);
    expect(epochMs(1733500000.123456)).toBe(1733500000123);
    expect(epochMs(-5.5004)).toBe(-5501);
    expect(epochMs('Infinity')).toBe(Infinity);
    expect(epochMs('-Infinity')).toBe(-Infinity);
    // What the driver hands over for 'infinity' (a number), decoded alike.
    expect(new Date(epochMs('Infinity')).getTime()).toBeNaN();
  });

  it('read and processBatch hand out the table’s instants', async () => {
    await client.createQueue('epoch_read');
    await client.sendBatch('epoch_read', [{ a: 1 }, { a: 2 }]);
    const got = await client.read('epoch_read', { qty: 1, visibilityTimeoutMs: 0 });
    const seen: number[] = [];
    await client.processBatch(
      'epoch_read',
      async (ms) => {
        for (const m of ms) seen.push(m.visibleAt.getTime(), m.enqueuedAt.getTime());
      },
      { qty: 10, finish: 'archive' },
    );
    const rows = (
      await driver.query<MessageRow>(
        `SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM ${S}.${quoteIdent('a_epoch_read')} ORDER BY msg_id`,
      )
    ).rows.map((r) => toMessage(r));
    expect(got[0]!.visibleAt.getTime()).toBe(rows[0]!.visibleAt.getTime());
    expect(got[0]!.lastReadAt!.getTime()).toBe(rows[0]!.lastReadAt!.getTime());
    expect(seen).toEqual(rows.flatMap((m) => [m.visibleAt.getTime(), m.enqueuedAt.getTime()]));
  });
});
