-- pgferry queue engine, migration 10: ops_queue_stats() counts the rows with
-- a future vt on the vt index.
--
-- Migration 9 filtered them with `vt > clock_timestamp()`: clock_timestamp()
-- is volatile, so PostgreSQL cannot use it as an index condition and every
-- call (every /metrics scrape, every dashboard refresh) read each live queue
-- table in full. The time is now taken once and passed as a parameter, so the
-- count is an index range scan whose cost grows with the messages that are
-- not visible (in flight, delayed, retrying), never with the backlog.
-- Otherwise unchanged (CREATE OR REPLACE keeps grants).

CREATE OR REPLACE FUNCTION @schema@.ops_queue_stats(queue_names text[] DEFAULT NULL, exact_up_to integer DEFAULT 10000)
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
         FROM %1$s WHERE vt > $3',
      r.q,
      CASE WHEN seq IS NULL THEN 'NULL::bigint'
           ELSE format('(SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s)', seq) END)
      INTO oldest_age_sec, in_flight, delayed, retrying, capped, sent_total
      USING fast_metrics, exact_up_to::bigint + 1, clock_timestamp();
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
