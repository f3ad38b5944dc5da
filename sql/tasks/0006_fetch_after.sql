-- pgferry tasks engine: fetch_after, the worker's fetch while it
-- works through a backlog of a plain FIFO task (no lifo, groups, priorities
-- or concurrency limit).
--
-- fetch() scans the queue's primary key from its start. Every lease is an
-- UPDATE that is not HOT (vt is indexed) and every completion a DELETE, so
-- while a large backlog is worked off, the head of that index is a growing
-- run of dead entries (until vacuum), and every fetch walks it: measured at
-- 40 % of 100,000 jobs, 30 ms and 81,523 buffers for a scan that took
-- 0.26 ms and 11 buffers at the start (bench/README.md).
--
-- fetch_after leases like fetch() but only jobs with msg_id > after_id: the
-- worker passes the highest id of its previous full fetch, below which it
-- has just taken every runnable job. If that leaves the batch short, the rest
-- comes from fetch() over the whole queue, so a short fetch is exactly
-- fetch(). Jobs below after_id that become runnable again (a retry, an
-- expired lease, a hand-back) are taken by the next fetch() over the whole
-- queue: the worker runs one at least every second, and whenever a fetch
-- comes back short. The controls of migration 3 hold as in fetch(): a
-- paused task leases nothing, and a rate-limited one is fetched by fetch().
CREATE FUNCTION @schema@.fetch_after(queue_name text, qty integer, lease_ms integer, after_id bigint)
RETURNS SETOF @queue_schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  got integer;
  ctl record;
BEGIN
  IF qty IS NULL OR qty < 0 OR lease_ms IS NULL OR lease_ms < 0 OR after_id IS NULL THEN
    RAISE EXCEPTION 'fetch_after: qty and lease_ms must be non-negative, after_id given' USING ERRCODE = 'PF301';
  END IF;
  SELECT q.paused, q.rate_limit INTO ctl FROM @schema@.queues q WHERE q.queue_name = $1;
  IF ctl.rate_limit IS NOT NULL THEN
    RETURN QUERY SELECT * FROM @schema@.fetch(queue_name, qty, lease_ms);
    RETURN;
  END IF;
  IF ctl.paused OR qty = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE format(
    'UPDATE %1$s m
        SET vt = clock_timestamp() + make_interval(secs => $2 / 1000.0),
            read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
      WHERE m.msg_id = ANY(ARRAY(
              SELECT msg_id FROM %1$s WHERE msg_id > $3 AND vt <= clock_timestamp()
               ORDER BY msg_id LIMIT $1 FOR UPDATE SKIP LOCKED))
     RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers',
    rel)
    USING qty, lease_ms, after_id;
  GET DIAGNOSTICS got = ROW_COUNT;
  IF got < qty THEN
    RETURN QUERY SELECT * FROM @schema@.fetch(queue_name, qty - got, lease_ms);
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.fetch_after(text, integer, integer, bigint) FROM PUBLIC;
