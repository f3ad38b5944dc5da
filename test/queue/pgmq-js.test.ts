// Compatibility with a client nobody here wrote: the npm `pgmq-js` package,
// unmodified, against pgferry's schema (it hard-codes the schema `pgmq`).
import { beforeAll, describe, expect, it } from 'vitest';
import { Pgmq } from 'pgmq-js';
import { useTestDatabase } from '../support/db.js';
import { migrate } from '../../src/migrate/migrator.js';

const db = useTestDatabase();

beforeAll(async () => {
  // Under the alternate-schema run the template has no `pgmq` schema: add one.
  if (db.queueSchema !== 'pgmq') await migrate({ connectionString: db.url, components: ['queue'] });
});

describe('pgmq-js (npm) against pgferry', () => {
  it('creates a queue, sends, reads, sets vt, archives, deletes and pops', async () => {
    const pgmq = await Pgmq.new({ connectionString: db.url, ssl: false } as never, {
      skipExtensionCreation: true,
    });
    db.track({ close: () => pgmq.close() });

    await pgmq.queue.create('js_q');
    const listed = await pgmq.queue.list();
    expect(listed.map((q) => q.name)).toContain('js_q');

    const id1 = await pgmq.msg.send('js_q', { hello: 'world' });
    const [id2, id3, id4] = await pgmq.msg.sendBatch('js_q', [{ n: 2 }, { n: 3 }, { n: 4 }]);
    expect([id1, id2, id3, id4]).toEqual([1, 2, 3, 4]);

    const first = await pgmq.msg.read('js_q', 30);
    expect(first).toMatchObject({ msgId: 1, readCount: 1, message: { hello: 'world' } });

    const batch = await pgmq.msg.readBatch('js_q', 30, 2);
    expect(batch.map((m) => m.msgId).sort()).toEqual([2, 3]);

    // Make message 1 visible again at once, then read it a second time.
    const reset = await pgmq.msg.setVt('js_q', 1, 0);
    expect(reset).toMatchObject({ msgId: 1, readCount: 1 });
    const again = await pgmq.msg.read('js_q', 30);
    expect(again).toMatchObject({ msgId: 1, readCount: 2 });

    expect(await pgmq.msg.archive('js_q', 1)).toBe(true);
    expect(await pgmq.msg.archiveBatch('js_q', [2, 99])).toEqual([2]);
    expect(await pgmq.msg.delete('js_q', 3)).toBe(true);
    expect(await pgmq.msg.delete('js_q', 3)).toBe(false);

    const popped = await pgmq.msg.pop('js_q');
    expect(popped).toMatchObject({ msgId: 4, message: { n: 4 } });
    expect(await pgmq.msg.pop('js_q')).toBeUndefined();

    const metrics = await pgmq.queue.getMetrics('js_q');
    expect(metrics).toMatchObject({ queueName: 'js_q', queueLength: 0, totalMessages: 4 });
    const archived = await db.sql(`SELECT msg_id FROM pgmq.a_js_q ORDER BY msg_id`);
    expect(archived).toEqual([{ msg_id: '1' }, { msg_id: '2' }]);

    await pgmq.queue.purge('js_q');
    await pgmq.queue.drop('js_q');
    expect((await pgmq.queue.list()).map((q) => q.name)).not.toContain('js_q');
  });
});
