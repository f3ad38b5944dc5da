/**
 * Queue tests that cannot run on PGlite, which has exactly one session, and
 * are therefore left out of the `PGFERRY_TEST_DRIVER=pglite` run of
 * scripts/test.ts (by test name; everything else in test/queue runs there).
 *
 * Each opens its own server connections from `db.url` (pg.Client, pgmq-js,
 * extra QueueClients), or needs a second session to act while the first
 * waits inside the database (read_with_poll woken by another session's send,
 * a reader holding a transaction open while another reads past it). Under
 * PGlite `db.url` names a server twin of the database, not the PGlite one;
 * such tests could only run there if rewritten to use `db.queueClient()` /
 * `db.driver()` (serialised on PGlite), as docs/drivers.md explains.
 */
export const PGLITE_EXCLUDED_TESTS: readonly string[] = [
  // test/queue/core-concurrency.test.ts, fifo-concurrency.test.ts: one pg.Client per consumer
  '(separate connections)',
  // core-messages, partition-behaviour, core-client: a long poll woken by another session
  'returns as soon as a message arrives from another session',
  'read_with_poll returns a message sent while it waits',
  'readWithPoll waits in the database for a message',
  // core-client: the caller's node-postgres pool on db.url
  "runs in the caller's own node-postgres transaction",
  // fifo: a pg.Client on db.url
  'untyped parameters (node-postgres) resolve through the text-vt shims',
  // notify: a pg.Client on db.url listens
  'enable_notify_insert: throttle row',
  'throttle 0: one notification per inserting transaction',
  '1.13.1: a mixed-case queue notifies on its name as given',
  'notify on delete (and archive, pop)',
  // pgmq-js connects by URL
  'pgmq-js (npm) against pgferry',
  // dead-letter, core-process, metrics, partition-maintenance: clients on db.url
  'under concurrent consumers no message is handed out more often than allowed',
  'locks visible messages without updating them; other readers skip them until commit',
  'stay exact under concurrent writers, readers and maintenance',
  'maintenance runs safely while senders and readers work',
  'maintenance of a queue runs in one session at a time',
];

/** A vitest `-t` pattern matching every test except those above. */
export function pgliteTestNamePattern(): string {
  const escaped = PGLITE_EXCLUDED_TESTS.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return `^(?!.*(?:${escaped.join('|')}))`;
}
