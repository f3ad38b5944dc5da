-- pgferry queue engine, migration 8: metrics that never scan a large queue.
--
-- PGMQ's metrics(q) is exact by contract (queue_length is the row count of
-- the queue table) and stays so: it scans, unless fast metrics are enabled
-- for the queue (0003). metrics_fast(q) is what the TypeScript client calls
-- by default. It answers exactly when that is cheap, and with an estimate
-- otherwise, and says which in its `exact` column:
--   * fast metrics enabled: metrics(q), exact, no scan;
--   * the planner's row estimate for the table (pg_class.reltuples scaled to
--     its current size, as the planner does) is at most exact_below (default 10,000):
--     metrics(q), an exact scan of a small table;
--   * else an estimate: queue_length = that row estimate; queue_visible_length
--     = queue_length minus the rows with vt > now(), counted on the vt index
--     when there are at most 10,000 of them, else the planner's estimate of
--     them; newest/oldest_msg_age_sec from the enqueued_at of the highest and
--     lowest msg_id (primary key, first and last entry: exact unless
--     concurrent senders committed out of order); total_messages and
--     default_partition_length exact, as in metrics(q).
CREATE FUNCTION @schema@.metrics_fast(queue text, exact_below bigint DEFAULT 10000)
RETURNS TABLE (
  queue_name text, queue_length bigint, newest_msg_age_sec integer, oldest_msg_age_sec integer,
  total_messages bigint, scrape_time timestamp with time zone, queue_visible_length bigint,
  default_partition_length bigint, exact boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  qname text := queue;
  rel regclass := @schema@._queue_table(qname);
  def regclass := @schema@._default_partition(rel);
  est bigint;
  live bigint;
  is_exact boolean := false;
  invisible bigint;
  plan jsonb;
  m @schema@.metrics_result;
BEGIN
  IF EXISTS (SELECT 1 FROM @schema@._fast_metrics f WHERE f.relid = rel) THEN
    m := @schema@.metrics(qname);
    RETURN QUERY SELECT m.*, true;
    RETURN;
  END IF;
  -- The planner's row estimate: reltuples per page times the current pages,
  -- summed over partitions. Never analyzed or empty: reltuples < 0 or 0 pages.
  SELECT sum(CASE WHEN c.reltuples < 0 OR c.relpages = 0 THEN NULL
                  ELSE c.reltuples / c.relpages
                       * (pg_relation_size(c.oid) / current_setting('block_size')::bigint) END)::bigint
    INTO est
    FROM pg_catalog.pg_class c
   WHERE c.oid = rel OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = rel);
  IF est IS NULL THEN
    -- No statistics: size the table by pages instead (8 kB hold ~30 messages at most).
    SELECT sum(pg_relation_size(c.oid) / current_setting('block_size')::bigint * 30)::bigint INTO est
      FROM pg_catalog.pg_class c
     WHERE c.oid = rel OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = rel);
  END IF;
  IF coalesce(est, 0) <= exact_below THEN
    m := @schema@.metrics(qname);
    RETURN QUERY SELECT m.*, true;
    RETURN;
  END IF;
  -- The statistics can be stale (a queue drained since the last ANALYZE):
  -- count the live rows along the primary key, at most exact_below + 1 of
  -- them. At or under the bar that count is exact, and so is every figure
  -- below (each is exact while the counts stay under their caps).
  EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s ORDER BY msg_id LIMIT $1) x', rel)
    INTO live USING exact_below + 1;
  IF live <= exact_below THEN
    est := live;
    is_exact := true;
  END IF;
  EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s WHERE vt > now() LIMIT 10001) x', rel)
    INTO invisible;
  IF invisible > 10000 THEN
    EXECUTE format('EXPLAIN (FORMAT JSON) SELECT 1 FROM %s WHERE vt > now()', rel) INTO plan;
    invisible := (plan -> 0 -> 'Plan' ->> 'Plan Rows')::bigint;
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT $1, $2::bigint,
            round(extract(epoch FROM now() - (SELECT enqueued_at FROM %1$s ORDER BY msg_id DESC LIMIT 1)))::integer,
            round(extract(epoch FROM now() - (SELECT enqueued_at FROM %1$s ORDER BY msg_id LIMIT 1)))::integer,
            (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %2$s),
            now(), greatest($2 - $3, 0)::bigint, %3$s, $4',
    rel, pg_get_serial_sequence(rel::text, 'msg_id'),
    CASE WHEN def IS NULL THEN 'NULL::bigint' ELSE format('(SELECT count(*) FROM %s)', def) END)
    USING qname, est, invisible, is_exact;
END;
$$;

CREATE FUNCTION @schema@.metrics_fast_all(exact_below bigint DEFAULT 10000)
RETURNS TABLE (
  queue_name text, queue_length bigint, newest_msg_age_sec integer, oldest_msg_age_sec integer,
  total_messages bigint, scrape_time timestamp with time zone, queue_visible_length bigint,
  default_partition_length bigint, exact boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  q record;
BEGIN
  -- As metrics_all: a queue whose metrics fail is skipped with a warning.
  FOR q IN SELECT m.queue_name FROM @schema@.meta m LOOP
    BEGIN
      RETURN QUERY SELECT * FROM @schema@.metrics_fast(q.queue_name, exact_below);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'pgmq metrics for queue "%" failed, skipped: % (SQLSTATE %)', q.queue_name, SQLERRM, SQLSTATE;
    END;
  END LOOP;
END;
$$;
