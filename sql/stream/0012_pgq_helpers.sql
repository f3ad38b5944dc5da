-- Stream engine migration 12: PgQ's helper functions that PgQue 0.2.0 ships
-- and clients call by name, plus small alignments found by a compatibility
-- audit (test/stream/compat-audit-*.test.ts). Every new function is for
-- <schema>_admin only (PgQue grants them to pgque_admin through its
-- "execute on all functions").

-- PgQ's sequence and name helpers ----------------------------------------------
-- SECURITY INVOKER, as in PgQ: a name is read with the caller's own rights.

-- Quotes a qualified name for SQL; the first dot separates the schema, and a
-- name without one is taken to be in `public`.
CREATE FUNCTION @schema@.quote_fqname(i_name text) RETURNS text
LANGUAGE sql STRICT IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE WHEN strpos(i_name, '.') > 0
              THEN quote_ident(split_part(i_name, '.', 1)) || '.' || quote_ident(substr(i_name, strpos(i_name, '.') + 1))
              ELSE quote_ident('public') || '.' || quote_ident(i_name) END
$$;

-- The last value of a sequence (its start value before the first nextval),
-- without moving it. PgQue's own tests read a queue's event sequence with it:
-- pgque.seq_getval(queue_event_seq).
CREATE FUNCTION @schema@.seq_getval(i_seq_name text) RETURNS bigint
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  res bigint;
BEGIN
  EXECUTE 'SELECT last_value FROM ' || @schema@.quote_fqname(i_seq_name) INTO res;
  RETURN res;
END
$$;

-- setval that never goes back; returns the sequence's value afterwards.
CREATE FUNCTION @schema@.seq_setval(i_seq_name text, i_new_value bigint) RETURNS bigint
LANGUAGE plpgsql STRICT SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  res bigint := @schema@.seq_getval(i_seq_name);
BEGIN
  IF res < i_new_value THEN
    PERFORM setval(@schema@.quote_fqname(i_seq_name), i_new_value);
    RETURN i_new_value;
  END IF;
  RETURN res;
END
$$;

-- The event table a queue inserts into now (valid for the current
-- transaction), e.g. `pgque.event_3_0`. Clients read it to count or inspect a
-- queue's raw rows. A queue with inserts disabled raises unless the session
-- replicates (session_replication_role = replica), as in PgQ.
CREATE FUNCTION @schema@.current_event_table(x_queue_name text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q @schema@.queue;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = x_queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'Event queue not found';
  END IF;
  IF q.queue_disable_insert AND current_setting('session_replication_role') <> 'replica' THEN
    RAISE EXCEPTION 'Writing to queue disabled';
  END IF;
  RETURN q.queue_data_pfx || '_' || q.queue_cur_table;
END
$$;

-- Maintenance plan ---------------------------------------------------------------

-- Tables that need frequent vacuuming: none while autovacuum is on (PgQ's rule).
CREATE FUNCTION @schema@.maint_tables_to_vacuum() RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  t text;
BEGIN
  IF current_setting('autovacuum') = 'on' THEN
    RETURN;
  END IF;
  FOREACH t IN ARRAY ARRAY['subscription', 'consumer', 'queue', 'tick', 'retry_queue'] LOOP
    RETURN NEXT '@schema_name@.' || t;
  END LOOP;
END
$$;

-- PgQ's list of maintenance calls, as pgqd and PgQue's clients read it:
-- rotation step 1 for every queue whose rotation period has passed since its
-- last switch (func_arg = the queue), step 2 when a switch awaits it, each
-- queue's extra-maint hooks, then `vacuum` with a table name. Callers filter
-- it, e.g. `WHERE func_name = 'pgque.maint_rotate_tables_step1'`.
CREATE FUNCTION @schema@.maint_operations(OUT func_name text, OUT func_arg text) RETURNS SETOF record
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  nrot integer := 0;
  q    record;
  fn   text;
BEGIN
  func_name := '@schema_name@.maint_rotate_tables_step1';
  FOR func_arg IN SELECT x.queue_name FROM @schema@.queue x
                   WHERE x.queue_rotation_period IS NOT NULL AND x.queue_switch_step2 IS NOT NULL
                     AND x.queue_switch_time + x.queue_rotation_period < now()
                   ORDER BY 1 LOOP
    nrot := nrot + 1;
    RETURN NEXT;
  END LOOP;
  IF nrot = 0 THEN
    SELECT count(*) INTO nrot FROM @schema@.queue x
     WHERE x.queue_rotation_period IS NOT NULL AND x.queue_switch_step2 IS NULL;
  END IF;
  IF nrot > 0 THEN
    func_name := '@schema_name@.maint_rotate_tables_step2';
    func_arg := NULL;
    RETURN NEXT;
  END IF;
  FOR q IN SELECT x.queue_name, x.queue_extra_maint FROM @schema@.queue x
            WHERE x.queue_extra_maint IS NOT NULL ORDER BY 1 LOOP
    FOREACH fn IN ARRAY q.queue_extra_maint LOOP
      func_name := fn;
      func_arg := q.queue_name;
      RETURN NEXT;
    END LOOP;
  END LOOP;
  func_name := 'vacuum';
  FOR func_arg IN SELECT * FROM @schema@.maint_tables_to_vacuum() LOOP
    RETURN NEXT;
  END LOOP;
END
$$;

-- PgQ's raw event primitives --------------------------------------------------------

-- Inserts one event with every field given: ev_id (NULL = the next id),
-- ev_time, ev_owner (a subscription id: the event is for it only; NULL = for
-- every consumer), ev_retry. The queue's sequence always advances, so the
-- ticker sees a new event. Returns the event id.
CREATE FUNCTION @schema@.insert_event_raw(queue_name text, ev_id bigint, ev_time timestamptz, ev_owner integer,
  ev_retry integer, ev_type text, ev_data text, ev_extra1 text, ev_extra2 text, ev_extra3 text, ev_extra4 text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q    @schema@.queue;
  id   bigint;
  nid  bigint;
BEGIN
  SELECT * INTO q FROM @schema@.queue x WHERE x.queue_name = insert_event_raw.queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'queue not found: %', insert_event_raw.queue_name;
  END IF;
  nid := nextval(format('%I.%I', '@schema_name@', 'event_' || q.queue_id || '_id_seq')::regclass);
  id := coalesce(insert_event_raw.ev_id, nid);
  IF q.queue_disable_insert AND current_setting('session_replication_role') <> 'replica' THEN
    RAISE EXCEPTION 'Insert into queue disallowed';
  END IF;
  EXECUTE format('INSERT INTO %s (ev_id, ev_time, ev_owner, ev_retry, ev_type, ev_data,
                                  ev_extra1, ev_extra2, ev_extra3, ev_extra4)
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
                 @schema@._event_table(q.queue_id, q.queue_cur_table))
    USING id, insert_event_raw.ev_time, insert_event_raw.ev_owner, insert_event_raw.ev_retry,
          insert_event_raw.ev_type, insert_event_raw.ev_data, insert_event_raw.ev_extra1,
          insert_event_raw.ev_extra2, insert_event_raw.ev_extra3, insert_event_raw.ev_extra4;
  IF EXISTS (SELECT 1 FROM @schema@._waiter w WHERE w.queue_id = q.queue_id AND w.until > now()) THEN
    PERFORM pg_notify('pgferry.@schema_name@.tick_request', q.queue_name);
  END IF;
  RETURN id;
END
$$;

-- Puts an event of the caller's choosing into a subscription's retry queue
-- (x_ev_id NULL = a new id). Returns the event id.
CREATE FUNCTION @schema@.event_retry_raw(x_queue text, x_consumer text, x_retry_after timestamptz, x_ev_id bigint,
  x_ev_time timestamptz, x_ev_retry integer, x_ev_type text, x_ev_data text, x_ev_extra1 text, x_ev_extra2 text,
  x_ev_extra3 text, x_ev_extra4 text)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  sub @schema@.subscription;
  id  bigint := x_ev_id;
BEGIN
  SELECT s.* INTO sub FROM @schema@.subscription s
    JOIN @schema@.queue q ON q.queue_id = s.sub_queue
    JOIN @schema@.consumer c ON c.co_id = s.sub_consumer
   WHERE q.queue_name = x_queue AND c.co_name = x_consumer;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'consumer not registered';
  END IF;
  IF id IS NULL THEN
    id := nextval(format('%I.%I', '@schema_name@', 'event_' || sub.sub_queue || '_id_seq')::regclass);
  END IF;
  INSERT INTO @schema@.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_owner, ev_retry,
                                    ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
  VALUES (x_retry_after, sub.sub_queue, id, x_ev_time, sub.sub_id, x_ev_retry,
          x_ev_type, x_ev_data, x_ev_extra1, x_ev_extra2, x_ev_extra3, x_ev_extra4);
  RETURN id;
END
$$;

-- PgQ's batch SQL helpers ------------------------------------------------------------

-- The event tables a batch's events may be in (the current one, and the
-- previous one while the batch reaches back before the last switch).
CREATE FUNCTION @schema@.batch_event_tables(x_batch_id bigint) RETURNS SETOF text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b    record;
  prev boolean := true;
  cur  boolean := true;
BEGIN
  b := @schema@._batch(x_batch_id);
  IF (b.sub).sub_batch IS NULL OR (b.t1).tick_id IS NULL OR (b.t2).tick_id IS NULL THEN
    RAISE EXCEPTION 'Cannot find data for batch %', x_batch_id;
  END IF;
  IF pg_snapshot_xmax(b.s2)::text::bigint < (b.q).queue_switch_step1 THEN
    cur := false;
  ELSIF (b.q).queue_switch_step2 IS NOT NULL
        AND pg_snapshot_xmin(b.s1)::text::bigint > (b.q).queue_switch_step2 THEN
    prev := false;
  END IF;
  IF prev THEN
    RETURN NEXT (b.q).queue_data_pfx || '_' || ((b.q).queue_cur_table + (b.q).queue_ntables - 1) % (b.q).queue_ntables;
  END IF;
  IF cur THEN
    RETURN NEXT (b.q).queue_data_pfx || '_' || (b.q).queue_cur_table;
  END IF;
END
$$;

-- A SELECT returning a batch's events (ev_id, ev_time, ev_txid, ev_retry,
-- ev_type, ev_data, ev_extra1..4) ordered by ev_id, for the caller to run
-- (get_batch_events runs it). Raises 'batch not found' for an inactive batch.
CREATE FUNCTION @schema@.batch_event_sql(x_batch_id bigint) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM @schema@.subscription WHERE sub_batch = x_batch_id) THEN
    RAISE EXCEPTION 'batch not found';
  END IF;
  RETURN format('select ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, '
                || 'ev_extra4 from %s._batch_window_events(%s) order by 1', '@schema@', x_batch_id);
END
$$;

-- Alignments ------------------------------------------------------------------------

-- PgQ's message spells a NULL queue or consumer name as NULL, not <NULL>:
-- "Not subscriber to queue: NULL/c". Otherwise as in migration 3.
CREATE OR REPLACE FUNCTION @schema@._open_batch(i_queue_name text, i_consumer_name text,
  i_min_lag interval, i_min_count integer, i_min_interval interval,
  OUT batch_id bigint, OUT cur_tick_id bigint, OUT prev_tick_id bigint,
  OUT cur_tick_time timestamptz, OUT prev_tick_time timestamptz,
  OUT cur_tick_event_seq bigint, OUT prev_tick_event_seq bigint,
  OUT sub_id int4, OUT queue_id int4, OUT s1 pg_snapshot, OUT s2 pg_snapshot)
LANGUAGE plpgsql AS $$
DECLARE
  sub  @schema@.subscription;
  t1   @schema@.tick;
  t2   @schema@.tick;
BEGIN
  SELECT s.* INTO sub
    FROM @schema@.subscription s
    JOIN @schema@.queue q ON q.queue_id = s.sub_queue
    JOIN @schema@.consumer c ON c.co_id = s.sub_consumer
   WHERE q.queue_name = i_queue_name AND c.co_name = i_consumer_name
     FOR UPDATE OF s;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'Not subscriber to queue: %/%', coalesce(i_queue_name, 'NULL'), coalesce(i_consumer_name, 'NULL');
  END IF;
  IF sub.sub_role = 'coop_member' THEN
    RAISE EXCEPTION 'consumer % on queue % is a cooperative subconsumer; use receive_coop / next_batch (cooperative form) instead of the legacy 5-arg next_batch_custom',
      i_consumer_name, i_queue_name;
  END IF;
  IF sub.sub_role = 'coop_main' AND EXISTS (
       SELECT 1 FROM @schema@.subscription m
        WHERE m.sub_queue = sub.sub_queue AND m.sub_id = sub.sub_id AND m.sub_role = 'coop_member') THEN
    RAISE EXCEPTION 'consumer % on queue % is a cooperative main consumer; use cooperative receive/next_batch with a subconsumer',
      i_consumer_name, i_queue_name;
  END IF;
  sub_id := sub.sub_id;
  queue_id := sub.sub_queue;
  SELECT * INTO t1 FROM @schema@.tick t WHERE t.tick_queue = sub.sub_queue AND t.tick_id = sub.sub_last_tick;
  IF sub.sub_batch IS NOT NULL THEN
    SELECT * INTO t2 FROM @schema@.tick t WHERE t.tick_queue = sub.sub_queue AND t.tick_id = sub.sub_next_tick;
    batch_id := sub.sub_batch;
  ELSE
    SELECT * INTO t2 FROM @schema@._pick_tick(sub.sub_queue, t1, i_min_lag, i_min_count, i_min_interval);
    IF t2.tick_id IS NULL THEN
      RETURN;
    END IF;
    batch_id := nextval('@schema@.batch_id_seq');
    UPDATE @schema@.subscription s SET sub_batch = batch_id, sub_next_tick = t2.tick_id, sub_active = now()
     WHERE s.sub_queue = sub.sub_queue AND s.sub_consumer = sub.sub_consumer;
  END IF;
  cur_tick_id := t2.tick_id;
  prev_tick_id := t1.tick_id;
  cur_tick_time := t2.tick_time;
  prev_tick_time := t1.tick_time;
  cur_tick_event_seq := t2.tick_event_seq;
  prev_tick_event_seq := t1.tick_event_seq;
  s1 := t1.tick_snapshot;
  s2 := t2.tick_snapshot;
END
$$;

-- ev_per_sec spans PgQ's window: from the oldest tick with an id at least the
-- last tick's id minus 20 (21 ticks when none was deleted), not the last 20.
CREATE OR REPLACE FUNCTION @schema@.get_queue_info(i_queue_name text,
  OUT queue_name text, OUT queue_ntables integer, OUT queue_cur_table integer,
  OUT queue_rotation_period interval, OUT queue_switch_time timestamptz, OUT queue_external_ticker boolean,
  OUT queue_ticker_paused boolean, OUT queue_ticker_max_count integer, OUT queue_ticker_max_lag interval,
  OUT queue_ticker_idle_period interval, OUT ticker_lag interval, OUT ev_per_sec double precision,
  OUT ev_new bigint, OUT last_tick_id bigint)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT q.queue_name, q.queue_ntables, q.queue_cur_table, q.queue_rotation_period, q.queue_switch_time,
         q.queue_external_ticker, q.queue_ticker_paused, q.queue_ticker_max_count, q.queue_ticker_max_lag,
         q.queue_ticker_idle_period, now() - lt.tick_time,
         CASE WHEN ft.tick_id IS NOT NULL AND lt.tick_time > ft.tick_time
              THEN (lt.tick_event_seq - ft.tick_event_seq)::double precision
                   / extract(epoch FROM lt.tick_time - ft.tick_time)::double precision END,
         @schema@._seq_value(q.queue_id) - lt.tick_event_seq,
         lt.tick_id
    FROM @schema@.queue q
    LEFT JOIN LATERAL (SELECT * FROM @schema@.tick t WHERE t.tick_queue = q.queue_id
                        ORDER BY t.tick_id DESC LIMIT 1) lt ON true
    LEFT JOIN LATERAL (SELECT * FROM @schema@.tick t WHERE t.tick_queue = q.queue_id
                          AND t.tick_id >= lt.tick_id - 20
                        ORDER BY t.tick_id LIMIT 1) ft ON true
   WHERE i_queue_name IS NULL OR q.queue_name = i_queue_name
   ORDER BY q.queue_name
$$;

-- get_batch_cursor with a NULL batch id, cursor name or quick limit returns no
-- rows and opens no cursor (PgQ's rule). Otherwise as in migration 8.
CREATE OR REPLACE FUNCTION @schema@.get_batch_cursor(i_batch_id bigint, i_cursor_name text, i_quick_limit integer,
  i_extra_where text,
  OUT ev_id bigint, OUT ev_time timestamptz, OUT ev_txid bigint, OUT ev_retry integer, OUT ev_type text,
  OUT ev_data text, OUT ev_extra1 text, OUT ev_extra2 text, OUT ev_extra3 text, OUT ev_extra4 text)
RETURNS SETOF record
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cur refcursor := i_cursor_name;
  n   integer := 0;
BEGIN
  IF i_batch_id IS NULL OR i_cursor_name IS NULL OR i_quick_limit IS NULL THEN
    RETURN;
  END IF;
  -- The cursor stays open for the rest of the transaction: FETCH the remainder from it.
  OPEN cur FOR EXECUTE format(
    'SELECT e.ev_id, e.ev_time, e.ev_txid::text::bigint, e.ev_retry, e.ev_type, e.ev_data,
            e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4
       FROM @schema@._batch_window_events($1) e %s ORDER BY e.ev_id',
    CASE WHEN coalesce(i_extra_where, '') <> '' THEN 'WHERE ' || i_extra_where ELSE '' END)
    USING i_batch_id;
  LOOP
    EXIT WHEN n >= i_quick_limit;
    FETCH cur INTO ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4;
    EXIT WHEN NOT FOUND;
    n := n + 1;
    RETURN NEXT;
  END LOOP;
END
$$;

-- sub_id draws from its sequence by default, as PgQ's serial column does.
ALTER TABLE @schema@.subscription ALTER COLUMN sub_id SET DEFAULT nextval('@schema@.subscription_sub_id_seq');

SELECT @schema@._apply_grants();
