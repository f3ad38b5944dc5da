// Stream and bus pages.
import { busStats, streamStats } from '../engine-stats.js';
import { age, html, table, td, tn } from './html.js';
import { button, csrfField, u, type PageContext, type Rendered } from './page-parts.js';

export async function streams(c: PageContext): Promise<Rendered> {
  const s = await streamStats(c.ops);
  const dlq = [];
  for (const st of s.streams)
    for (const d of await c.ops.streams.dlqInspect(st.queueName, { limit: 50 }))
      dlq.push({ stream: st.queueName, d });
  return {
    title: 'Streams',
    active: 'streams',
    body: html`${table(
        'stream-table',
        [
          'stream',
          'ticker lag',
          'new events',
          'events/s',
          'last tick',
          'paused',
          'external ticker',
        ],
        s.streams.map((q) => [
          td(q.queueName),
          tn(age(q.tickerLagSeconds)),
          tn(q.newEvents),
          tn(q.eventsPerSecond?.toFixed(2)),
          tn(q.lastTickId),
          td(q.paused),
          td(q.externalTicker),
        ]),
      )}
      <h2>Consumers</h2>
      ${table(
        'consumer-table',
        [
          'stream',
          'consumer',
          'lag',
          'last seen',
          'pending events',
          'batch in flight',
          'last tick',
        ],
        s.consumers.map((x) => [
          td(x.queueName),
          td(x.consumerName),
          tn(age(x.lagSeconds)),
          tn(age(x.lastSeenSeconds)),
          tn(x.pendingEvents),
          tn(x.currentBatch),
          tn(x.lastTick),
        ]),
      )}
      <h2>Dead letters</h2>
      <form method="post" action="${u(c, 'streams/actions')}">
        ${csrfField(c)}${button(c, 'replay', 'Replay selected')}${table(
          'stream-dlq',
          ['', 'dead letter', 'stream', 'event', 'type', 'reason', 'failed at', 'data'],
          dlq.map(({ stream, d }) => [
            html`<td><input type="checkbox" name="id" value="${d.dlId}" /></td>`,
            tn(d.dlId),
            td(stream),
            tn(d.evId),
            td(d.evType),
            td(d.reason),
            td(d.time),
            html`<td><code>${(d.evData ?? '').slice(0, 160)}</code></td>`,
          ]),
          false,
        )}
      </form>`,
  };
}

export async function bus(c: PageContext): Promise<Rendered> {
  const b = await busStats(c.ops);
  return {
    title: 'Bus',
    active: 'bus',
    body: html`<p class="muted">
        The bus stores channels only as their sha256 (knowing the name is the capability), so
        channels are listed by hash.
      </p>
      ${table(
        'bus-table',
        ['channel (sha256)', 'members', 'live', 'oldest member since'],
        b.map((x) => [
          html`<td><code>${x.channelHash}</code></td>`,
          tn(x.members),
          tn(x.live),
          td(x.oldestJoinedAt),
        ]),
      )}`,
  };
}
