import { EXIT, UsageError, type Command } from '../command.js';
import { parseFlags } from '../flags.js';
import { age, openOps, OPS_OPTIONS, OPS_USAGE, table } from '../ops-options.js';
import { streamStats } from '../../ops/engine-stats.js';

export const streamsCommand: Command = {
  name: 'streams',
  summary: 'list streams (ticker lag, new events) and their consumers with lag',
  usage: `pgferry streams [options]

Streams with their ticker lag and events since the last tick, then every
consumer with its lag (time since its position) and pending events
(PgQue's approximate event-sequence distance to the latest tick).

${OPS_USAGE}

Exit codes: 0 ok; 1 failure; 2 bad usage; 3 database unreachable.`,
  async run(argv) {
    const { values, positionals } = parseFlags(argv, OPS_OPTIONS, true);
    if (positionals.length) throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`);
    const ops = openOps(values);
    try {
      const s = await streamStats(ops);
      if (values.json) console.log(JSON.stringify(s, null, 2));
      else
        console.log(
          [
            s.streams.length
              ? table(
                  ['STREAM', 'TICKER LAG', 'NEW EVENTS', 'EVENTS/S', 'PAUSED'],
                  s.streams.map((q) => [
                    q.queueName,
                    age(q.tickerLagSeconds),
                    q.newEvents,
                    q.eventsPerSecond,
                    q.paused,
                  ]),
                )
              : 'no streams',
            '',
            s.consumers.length
              ? table(
                  ['STREAM', 'CONSUMER', 'LAG', 'LAST SEEN', 'PENDING', 'BATCH'],
                  s.consumers.map((c) => [
                    c.queueName,
                    c.consumerName,
                    age(c.lagSeconds),
                    age(c.lastSeenSeconds),
                    c.pendingEvents,
                    c.currentBatch,
                  ]),
                )
              : 'no consumers',
          ].join('\n'),
        );
      return EXIT.ok;
    } finally {
      await ops.close();
    }
  },
};
