/**
 * Queue test files that cannot run on PGlite, which has exactly one session.
 * The `PGFERRY_TEST_DRIVER=pglite` step of scripts/test.ts runs test/queue
 * and test/driver without them (`--exclude`; a skipped test would fail the
 * step, so whole files are left out, not single tests).
 *
 * Each listed file has at least one test that opens its own server
 * connections from `db.url` (pg.Client, pgmq-js, extra QueueClients), or
 * needs a second session to act while the first waits inside the database
 * (read_with_poll woken by another session's send, a reader holding a
 * transaction open while another reads past it). Under PGlite `db.url` names
 * a server twin of the database, not the PGlite one. Those tests would run on
 * PGlite if written against `db.queueClient()` / `db.driver()`, whose clients
 * share (serialised) the one PGlite session; the rest of each file already
 * passes there. See docs/drivers.md.
 */
export const PGLITE_EXCLUDED_FILES: Readonly<Record<string, string>> = {
  'test/queue/core-concurrency.test.ts': 'every test: one pg.Client per consumer',
  'test/queue/core-sessions.test.ts':
    'every test: several sessions at once, or connections made from db.url',
  'test/queue/fifo-concurrency.test.ts': 'every test: one pg.Client per consumer',
  'test/queue/pgmq-js.test.ts': 'pgmq-js connects by URL',
  'test/queue/partition-behaviour.test.ts': 'read_with_poll woken by a send from another session',
  'test/queue/fifo.test.ts': 'untyped parameters through a pg.Client on db.url',
  'test/queue/notify.test.ts': 'a pg.Client on db.url listens',
  'test/queue/dead-letter.test.ts': 'concurrent consumers on db.url',
  'test/queue/metrics.test.ts':
    'concurrent writers on db.url; the no-scan check counts 4 seq scans on PGlite (to investigate)',
  'test/queue/partition-maintenance.test.ts': 'senders, readers and a lock holder on db.url',
  'test/queue/grouped-concurrency.test.ts':
    'every test: QueueClients and SQL callers on their own connections from db.url',
  'test/queue/plan-cache.test.ts':
    "a PgDriver on db.url: it reads the server session's pg_prepared_statements",
  'test/queue/dead-letter-due-race.test.ts':
    'sessions on db.url hold rows and due entries while two others read',
  'test/queue/group-lock-scope.test.ts': 'a reader on db.url holds a group while another reads',
  'test/queue/notify-throttle-locks.test.ts': 'transactions on db.url send at once',
  'test/queue/metrics-default.test.ts':
    'a QueueClient and seq-scan counters on db.url (pg_stat_xact_user_tables through db.pool)',
};

/** vitest arguments leaving the files above out. */
export function pgliteExcludeArgs(): string[] {
  return Object.keys(PGLITE_EXCLUDED_FILES).flatMap((f) => ['--exclude', f]);
}
