-- pgferry queue engine, migration 10: read-only functions for operations
-- (dashboard, /metrics, CLI). The ops layer (src/ops) calls these instead of
-- writing its own SQL against the queue tables, so what it reads follows the
-- engine's table layout wherever the engine changes it.
--
-- Both are read-only (STABLE, no writes, safe on a replica) and run with the
-- caller's rights. EXECUTE is revoked from PUBLIC: browsing shows message
-- bodies, and the figures name every queue. Grant EXECUTE (and SELECT on the
-- queue tables) to a monitoring role explicitly; docs/operations.md shows how.

-- One row per queue (all, or the named ones) with figures that never scan a
-- large queue:
--   * depth: the fast-metrics counter when enabled; else the rows counted with
--     a LIMIT of exact_up_to + 1 (exact at or below exact_up_to), beyond that
--     the planner's estimate (reltuples summed over partitions);
--   * in_flight / delayed / retrying: rows with vt in the future, counted on
--     the vt index (cost grows with the messages not visible, not the backlog);
--   * oldest_age_sec: from the first row of the msg_id primary key;
--   * sent_total: the msg_id sequence (a counter of messages sent);
--   * archived_estimate: the archive's planner estimate.
CREATE FUNCTION @schema@.ops_queue_stats(queue_names text[] DEFAULT NULL, exact_up_to integer DEFAULT 10000)
RETURNS TABLE (
  queue_name text, depth bigint, depth_exact boolean, in_flight bigint, delayed bigint,
  retrying bigint, oldest_age_sec double precision, sent_total bigint, archived_estimate bigint,
  dead_letter_queue text, max_read_count integer, fast_metrics boolean, partitioned boolean,
  unlogged boolean, notify_insert boolean)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
DECLARE
  r record;
  seq text;
  est bigint;
  fast_len bigint;
  capped bigint;
BEGIN
  IF exact_up_to IS NULL OR exact_up_to < 0 THEN
    RAISE EXCEPTION 'ops_queue_stats: exact_up_to must be >= 0, got %', exact_up_to
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  FOR r IN
    SELECT m.queue_name::text AS name, m.is_partitioned, m.is_unlogged,
           to_regclass(format('@schema@.%I', @schema@.format_table_name(m.queue_name, 'q'))) AS q,
           to_regclass(format('@schema@.%I', @schema@.format_table_name(m.queue_name, 'a'))) AS a,
           p.dead_letter_queue::text AS dlq, p.max_read_count AS mrc
      FROM @schema@.meta m LEFT JOIN @schema@._dead_letter_policy p ON p.queue_name = m.queue_name
     WHERE queue_names IS NULL OR m.queue_name = ANY (queue_names)
     ORDER BY m.queue_name
  LOOP
    CONTINUE WHEN r.q IS NULL;
    queue_name := r.name;
    dead_letter_queue := r.dlq;
    max_read_count := r.mrc;
    partitioned := r.is_partitioned;
    unlogged := r.is_unlogged;
    fast_metrics := EXISTS (SELECT 1 FROM @schema@._fast_metrics f WHERE f.relid = r.q);
    notify_insert := EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
                              WHERE t.tgrelid = r.q AND t.tgname = 'trigger_notify_queue_insert_listeners');
    SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint INTO est
      FROM pg_catalog.pg_class c
     WHERE c.oid = r.q OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = r.q);
    SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint INTO archived_estimate
      FROM pg_catalog.pg_class c
     WHERE r.a IS NOT NULL
       AND (c.oid = r.a OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = r.a));
    seq := pg_get_serial_sequence(r.q::text, 'msg_id');
    fast_len := NULL;
    IF fast_metrics THEN
      SELECT x.queue_length INTO fast_len FROM @schema@.metrics(r.name) x;
    END IF;
    EXECUTE format(
      'SELECT extract(epoch FROM clock_timestamp() - (SELECT enqueued_at FROM %1$s ORDER BY msg_id LIMIT 1))::float8,
              count(*) FILTER (WHERE last_read_at IS NOT NULL),
              count(*) FILTER (WHERE last_read_at IS NULL AND read_ct = 0),
              count(*) FILTER (WHERE last_read_at IS NULL AND read_ct > 0),
              CASE WHEN $1 THEN NULL ELSE (SELECT count(*) FROM (SELECT 1 FROM %1$s LIMIT $2) x) END,
              %2$s
         FROM %1$s WHERE vt > clock_timestamp()',
      r.q,
      CASE WHEN seq IS NULL THEN 'NULL::bigint'
           ELSE format('(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s)', seq) END)
      INTO oldest_age_sec, in_flight, delayed, retrying, capped, sent_total
      USING fast_metrics, exact_up_to::bigint + 1;
    oldest_age_sec := greatest(oldest_age_sec, 0);
    sent_total := coalesce(sent_total, 0);
    depth_exact := fast_len IS NOT NULL OR capped <= exact_up_to;
    depth := CASE WHEN fast_len IS NOT NULL THEN fast_len
                  WHEN capped <= exact_up_to THEN capped
                  ELSE greatest(est, capped) END;
    RETURN NEXT;
  END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.ops_queue_stats(text[], integer) FROM PUBLIC;

-- Browses a queue (or its archive) without reading it: no read count moves,
-- nothing is locked. Filters: msg_id above after_id, one msg_id, jsonb
-- containment on the body and on the headers (uses a GIN index when there is
-- one); msg_id order, at most max_rows (1..1000) rows.
CREATE FUNCTION @schema@.ops_browse(
  queue_name text, archive boolean DEFAULT false, after_id bigint DEFAULT 0, only_id bigint DEFAULT NULL,
  body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL, max_rows integer DEFAULT 50)
RETURNS TABLE (
  msg_id bigint, read_ct integer, enqueued_at timestamp with time zone,
  last_read_at timestamp with time zone, vt timestamp with time zone, message jsonb, headers jsonb,
  archived_at timestamp with time zone)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF max_rows IS NULL OR max_rows < 1 OR max_rows > 1000 THEN
    RAISE EXCEPTION 'ops_browse: max_rows must be from 1 to 1000, got %', max_rows
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers, %2$s
       FROM %1$s
      WHERE msg_id > $1 AND ($2::bigint IS NULL OR msg_id = $2)
        AND ($3::jsonb IS NULL OR message @> $3) AND ($4::jsonb IS NULL OR headers @> $4)
      ORDER BY msg_id LIMIT $5',
    @schema@._queue_table(queue_name, CASE WHEN archive THEN 'a' ELSE 'q' END),
    CASE WHEN archive THEN 'archived_at' ELSE 'NULL::timestamptz' END)
    USING coalesce(after_id, 0), only_id, body, hdrs, max_rows;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.ops_browse(text, boolean, bigint, bigint, jsonb, jsonb, integer) FROM PUBLIC;
