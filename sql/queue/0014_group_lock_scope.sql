-- pgferry queue engine, migration 14: FIFO group locks are per queue.
--
-- The group reads (read_grouped, read_grouped_rr, read_grouped_head and
-- their polling forms, through _read_grouped and _read_grouped_core) take a
-- transaction-level advisory lock per group they hand out, so that two
-- readers never take messages of one group at once. The key was the group
-- name alone: while a reader of one queue held group "g1" (for the rest of
-- its transaction), every other queue's readers skipped their own free,
-- visible "g1" and returned nothing for it. Group keys shared across queues
-- (tenant or customer ids) are the normal case.
-- test/queue/group-lock-scope.test.ts replays it.
--
-- The key is now hashtextextended(group, <queue table oid>): the queue
-- table's oid as the hash seed. QueueClient's prepared group read
-- (src/queue/engine/grouped.ts) uses the same key, so the SQL and the
-- prepared read still exclude each other within a queue. The two functions
-- are re-created from their current definitions with only the key changed
-- (the migration fails if a definition does not contain the old key).
DO $mig$
DECLARE
  f regprocedure;
  def text;
  changed text;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
            WHERE p.pronamespace = '@schema_name@'::regnamespace
              AND p.proname IN ('_read_grouped', '_read_grouped_core') LOOP
    def := pg_catalog.pg_get_functiondef(f);
    changed := replace(def, 'pg_try_advisory_xact_lock(hashtextextended(g.grp, 0))',
                       'pg_try_advisory_xact_lock(hashtextextended(g.grp, rel::oid::bigint))');
    IF changed = def THEN
      RAISE EXCEPTION 'migration 14: % has no group lock to re-key', f;
    END IF;
    EXECUTE changed;
  END LOOP;
END
$mig$;
