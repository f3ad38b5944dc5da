import { EXIT, UsageError, type Command } from '../command.js';
import { FLAG, STR, parseFlags } from '../flags.js';
import * as cli from '../ops-options.js';
import { queueStats } from '../../ops/queue-stats.js';
import { browseMessages } from '../../ops/browse.js';

export const queuesCommand: Command = {
  name: 'queues',
  summary: 'list queues with depth, age, in-flight and dead letters; browse messages',
  usage: `pgferry queues [list] [options]
pgferry queues messages <queue> [--archive] [--id <n>] [--where f=v]… [--header h=v]… [options]

  list                   every queue: depth, oldest message age, in flight, delayed,
                         dead letters, archive size (no table scans: see docs/operations.md)
  messages <queue>       browse messages without reading them (nothing changes)
    --archive            the archive instead of the queue
    --id <n>             only this msg_id
    --where <f=v>        payload field (dotted path) equals v (JSON or a bare string); repeatable
    --header <h=v>       header equals v; repeatable
    --limit <n>          at most n (default 50, up to 1000)
    --after <id>         only ids greater than this (paging)

${cli.OPS_USAGE}

Exit codes: 0 ok; 1 failure (e.g. no such queue); 2 bad usage; 3 database unreachable.`,
  async run(argv) {
    const { values, positionals } = parseFlags(
      argv,
      {
        ...cli.OPS_OPTIONS,
        archive: FLAG,
        id: STR,
        where: { type: 'string', multiple: true },
        header: { type: 'string', multiple: true },
        limit: STR,
        after: STR,
      },
      true,
    );
    const [action = 'list', queue, ...extra] = positionals;
    if (extra.length) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    const ops = cli.openOps(values);
    const print = (data: unknown, text: string) =>
      console.log(values.json ? JSON.stringify(data, null, 2) : text);
    try {
      if (action === 'list') {
        if (queue) throw new UsageError('list takes no queue name');
        const qs = await queueStats(ops.read, ops.schemas.queue);
        print(
          qs,
          qs.length
            ? cli.table(
                ['QUEUE', 'DEPTH', 'OLDEST', 'IN FLIGHT', 'DELAYED', 'DEAD', 'ARCHIVED~'],
                qs.map((q) => [
                  q.queue,
                  `${q.depthExact ? '' : '~'}${q.depth}`,
                  cli.age(q.oldestAgeSeconds),
                  q.inFlight,
                  q.delayed,
                  q.deadLetters,
                  q.archivedEstimate,
                ]),
              )
            : 'no queues',
        );
        return EXIT.ok;
      }
      if (action !== 'messages') throw new UsageError('action must be list or messages');
      if (!queue) throw new UsageError('give the queue name');
      const id = cli.intOption(values.id, 'id', 1);
      const limit = cli.intOption(values.limit, 'limit', 1);
      const after = cli.intOption(values.after, 'after');
      const payload = cli.parseWhere(values.where, 'where');
      const headers = cli.parseWhere(values.header, 'header');
      const rows = await browseMessages(ops.read, ops.schemas.queue, queue, {
        archive: values.archive,
        ...(id !== undefined ? { id } : {}),
        ...(limit !== undefined ? { limit } : {}),
        ...(after !== undefined ? { afterId: after } : {}),
        ...(payload ? { payload } : {}),
        ...(headers ? { headers } : {}),
      });
      print(
        rows,
        rows.length
          ? cli.table(
              ['ID', 'READS', 'ENQUEUED', 'VISIBLE AT', 'MESSAGE'],
              rows.map((m) => [
                m.msgId,
                m.readCount,
                m.enqueuedAt.toISOString(),
                m.visibleAt.toISOString(),
                JSON.stringify(m.message).slice(0, 80),
              ]),
            )
          : 'no messages',
      );
      return EXIT.ok;
    } finally {
      await ops.close();
    }
  },
};
