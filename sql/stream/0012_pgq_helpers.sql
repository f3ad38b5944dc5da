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
  -- A transaction id before the current table is read, so rotation waits
  -- for this insert (as migration 13 does for insert_event).
  PERFORM pg_current_xact_id();
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

-- A queue with inserts disabled still takes events from a session that
-- replicates (session_replication_role = replica), as PgQ's insert_event_raw
-- allows: send, send_batch and insert_event follow. (pgferry's prepared send
-- path skips a disabled queue and falls back to these functions.)
CREATE OR REPLACE FUNCTION @schema@._producer_queue(i_queue_name text, OUT q @schema@.queue, OUT wake boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  SELECT * INTO q FROM @schema@.queue x WHERE x.queue_name = i_queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'queue not found: %', i_queue_name;
  END IF;
  IF q.queue_disable_insert AND current_setting('session_replication_role') <> 'replica' THEN
    RAISE EXCEPTION 'Insert into queue disallowed';
  END IF;
  wake := EXISTS (SELECT 1 FROM @schema@._waiter w WHERE w.queue_id = q.queue_id AND w.until > now());
END
$$;

-- event_dead stores the reason it is given, NULL included (PgQue inserts
-- i_reason as is; nack passes 'max retries exceeded' for a NULL reason).
CREATE OR REPLACE FUNCTION @schema@.event_dead(i_batch_id bigint, i_event_id bigint, i_reason text,
  i_ev_time timestamptz, i_ev_txid xid8, i_ev_retry integer, i_ev_type text, i_ev_data text,
  i_ev_extra1 text DEFAULT NULL, i_ev_extra2 text DEFAULT NULL, i_ev_extra3 text DEFAULT NULL,
  i_ev_extra4 text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  sub @schema@.subscription;
BEGIN
  SELECT * INTO sub FROM @schema@.subscription WHERE sub_batch = i_batch_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'batch not found: %', i_batch_id;
  END IF;
  INSERT INTO @schema@.dead_letter (dl_queue_id, dl_consumer_id, dl_reason, ev_id, ev_time, ev_txid, ev_retry,
                                    ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
  VALUES (sub.sub_queue, @schema@._dl_owner(sub), i_reason, i_event_id, i_ev_time, i_ev_txid, i_ev_retry,
          i_ev_type, i_ev_data, i_ev_extra1, i_ev_extra2, i_ev_extra3, i_ev_extra4)
  ON CONFLICT (dl_queue_id, dl_consumer_id, ev_id) DO NOTHING;
  RETURN 1;
END
$$;

-- drop_queue drops the event tables with CASCADE: no "drop cascades to 3
-- other objects" NOTICE to the client (PgQ drops them one by one, silently).
ALTER FUNCTION @schema@.drop_queue(text, boolean) SET client_min_messages = warning;

-- config.tick_period_ms is checked by the table too, as in PgQue: an exact
-- divisor of 1000 between 1 and 1000 (set_tick_period_ms's rule).
UPDATE @schema@.config SET tick_period_ms = 100
 WHERE NOT (tick_period_ms BETWEEN 1 AND 1000 AND 1000 % tick_period_ms = 0);
ALTER TABLE @schema@.config ADD CONSTRAINT config_tick_period_ms_check
  CHECK (tick_period_ms BETWEEN 1 AND 1000
         AND CASE WHEN tick_period_ms BETWEEN 1 AND 1000 THEN 1000 % tick_period_ms = 0 ELSE false END);

-- sub_id draws from its sequence by default, as PgQ's serial column does.
ALTER TABLE @schema@.subscription ALTER COLUMN sub_id SET DEFAULT nextval('@schema@.subscription_sub_id_seq');

-- Trigger functions in PgQ's formats ---------------------------------------------
-- jsontriga, logutriga and sqltriga now write what PgQ's (and PgQue's) do, so
-- consumers written for them parse pgferry's events:
--   ev_type   jsontriga: {"op":"INSERT","table":["public","t"],"pkey":["id"]}
--             logutriga: I:id / U:id / D:id (operation : key columns), R = TRUNCATE
--             sqltriga:  I / U / D, R = TRUNCATE
--   ev_data   jsontriga: {"id":1,"name":"x","note":null} (integers, booleans,
--             dates and timestamps as JSON values, everything else as strings)
--             logutriga: id=1&name=a+b%26c&note (PgQ's urlencoding, NULL = bare name)
--             sqltriga:  INSERT (id,name) values ('1','x'); UPDATE name='y' where id='1'
--             (the changed non-key columns, or the first key column when none
--             changed); DELETE id='1' (key columns, `and` between them)
--   ev_extra1 schema.table; ev_extra2 the old row in the same format with `backup`
-- Columns come in table order; text values are the columns' text output (a
-- boolean is t/f). Options: `SKIP` (BEFORE: record the event, skip the
-- change), `pkey=a,b`, `ignore=c,d` (left out; an UPDATE changing only them is
-- no event), `backup`, `deny` (refuse the change); columns named
-- _pgq_ev_type / _pgq_ev_extra1..4 set that event field instead of being
-- data. An UPDATE of a key column and an UPDATE or DELETE on a table without
-- a key raise, as in PgQ; TRUNCATE (a statement trigger) is an event with
-- empty data. session_replication_role = local writes no event. Not
-- implemented: the expression options `when=` and `ev_type=` / `ev_extraN=`
-- (they would run SQL from the trigger definition as the engine owner); they
-- raise, as any unknown option does ('bad argument: …').

-- Internal: one text per column of `i_cols` read from row `i_row` (a table
-- row): PgQ's text form (json = false) or its JSON value (json = true).
CREATE FUNCTION @schema@._triga_values(i_row record, i_relid oid, i_cols text[], i_json boolean) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
  exprs text;
  res   text[];
BEGIN
  IF cardinality(i_cols) = 0 THEN
    RETURN '{}';
  END IF;
  SELECT string_agg(CASE
           WHEN i_json AND a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'bool'::regtype,
                                          'date'::regtype, 'timestamp'::regtype, 'timestamptz'::regtype)
             THEN format('to_json(r.%I)::text', a.attname)
           WHEN i_json THEN format('to_json(r.%I::text)::text', a.attname)
           WHEN a.atttypid = 'bool'::regtype THEN format('CASE r.%I WHEN true THEN %L WHEN false THEN %L END',
                                                         a.attname, 't', 'f')
           ELSE format('r.%I::text', a.attname) END, ', ' ORDER BY c.n)
    INTO exprs
    FROM unnest(i_cols) WITH ORDINALITY AS c(name, n)
    JOIN pg_attribute a ON a.attrelid = i_relid AND a.attname = c.name;
  EXECUTE 'SELECT ARRAY[' || exprs || ']::text[] FROM (SELECT $1.*) r' INTO res USING i_row;
  RETURN res;
END
$$;

-- Internal: PgQ's urlencoding: [A-Za-z0-9_.-] as is, a space as +, every
-- other byte as %xx (lower-case hex). '' stays '' (a key=value pair with an
-- empty value), NULL stays NULL (a bare key).
CREATE OR REPLACE FUNCTION @schema@._urlencode(t text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN t = '' THEN '' ELSE (
    SELECT string_agg(CASE WHEN c ~ '^[A-Za-z0-9_.-]$' THEN c
                           WHEN c = ' ' THEN '+'
                           ELSE (SELECT string_agg('%' || lpad(to_hex(get_byte(b, i)), 2, '0'), '' ORDER BY i)
                                   FROM (SELECT convert_to(c, 'UTF8') AS b) x,
                                        generate_series(0, octet_length(convert_to(c, 'UTF8')) - 1) i) END,
                      '' ORDER BY n)
      FROM regexp_split_to_table(t, '') WITH ORDINALITY AS s(c, n)) END
$$;

-- Internal: one row change as an event in `i_format` ('json', 'urlenc',
-- 'sql'); returns whether a BEFORE trigger skips the change.
CREATE FUNCTION @schema@._triga(i_format text, i_op text, i_relid oid, i_schema text, i_table text, i_args text[],
                                i_new record, i_old record) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
  args     text[] := i_args[array_lower(i_args, 1):array_upper(i_args, 1)];
  stream   text := args[1];
  pkey     text[];
  ignore   text[] := '{}';
  skip     boolean := false;
  backup   boolean := false;
  deny     boolean := false;
  a        text;
  magic    text[];
  cols     text[];
  ev_type  text;
  extras   text[] := ARRAY[i_schema || '.' || i_table, NULL, NULL, NULL];
  data     text;
  old_data text;
  nv       text[];
  ov       text[];
  setc     boolean[];
  ign_chg  integer := 0;
  k        text;
  mv       text[];
  i        integer;
BEGIN
  IF stream IS NULL THEN
    RAISE EXCEPTION 'Trigger needs queue name';
  END IF;
  FOREACH a IN ARRAY coalesce(args[2:], '{}') LOOP
    IF a IN ('skip', 'SKIP') THEN
      skip := true;
    ELSIF a = 'backup' THEN
      backup := true;
    ELSIF a = 'deny' THEN
      deny := true;
    ELSIF a LIKE 'pkey=%' THEN
      pkey := string_to_array(substr(a, 6), ',');
    ELSIF a LIKE 'ignore=%' THEN
      ignore := string_to_array(substr(a, 8), ',');
    ELSIF a ~ '^(when|ev_type|ev_extra[1-4])=' THEN
      RAISE EXCEPTION 'bad argument: %', a
        USING HINT = 'pgferry does not evaluate expression arguments (they would run as the engine owner)';
    ELSE
      RAISE EXCEPTION 'bad argument: %', a;
    END IF;
  END LOOP;
  IF pkey IS NULL THEN
    SELECT array_agg(att.attname::text ORDER BY k.ord) INTO pkey
      FROM pg_index x
      CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, ord)
      JOIN pg_attribute att ON att.attrelid = x.indrelid AND att.attnum = k.attnum
     WHERE x.indrelid = i_relid AND x.indisprimary;
  END IF;
  pkey := coalesce(pkey, '{}');
  IF cardinality(pkey) = 0 AND i_op IN ('UPDATE', 'DELETE') THEN
    RAISE EXCEPTION 'Update/Delete on table without pkey';
  END IF;
  IF i_format = 'json' THEN
    SELECT row_to_json(t)::text INTO ev_type
      FROM (SELECT i_op AS op, ARRAY[i_schema, i_table] AS "table", pkey AS pkey) t;
  ELSIF i_op = 'TRUNCATE' THEN
    ev_type := 'R';
  ELSE
    ev_type := left(i_op, 1) || CASE WHEN i_format = 'urlenc' THEN ':' || array_to_string(pkey, ',') ELSE '' END;
  END IF;
  IF current_setting('session_replication_role') = 'local' THEN
    RETURN false;
  END IF;
  IF deny THEN
    RAISE EXCEPTION 'Table ''%.%'' to queue ''%'': change not allowed (%)', i_schema, i_table, stream, i_op;
  END IF;
  IF i_op = 'TRUNCATE' THEN
    PERFORM @schema@.insert_event(stream, ev_type, CASE WHEN i_format = 'json' THEN '{}' ELSE '' END,
                                  extras[1], NULL, NULL, NULL);
    RETURN false;
  END IF;
  SELECT array_agg(att.attname::text ORDER BY att.attnum) FILTER (WHERE att.attname::text <> ALL (ignore)
                                                                     AND att.attname !~ '^_pgq_ev_'),
         array_agg(att.attname::text ORDER BY att.attnum) FILTER (WHERE att.attname ~ '^_pgq_ev_(type|extra[1-4])$')
    INTO cols, magic
    FROM pg_attribute att
   WHERE att.attrelid = i_relid AND att.attnum > 0 AND NOT att.attisdropped;
  cols := coalesce(cols, '{}');
  nv := @schema@._triga_values(CASE WHEN i_op = 'DELETE' THEN i_old ELSE i_new END, i_relid, cols, false);
  IF i_op = 'UPDATE' THEN
    ov := @schema@._triga_values(i_old, i_relid, cols, false);
    IF EXISTS (SELECT 1 FROM unnest(cols, nv, ov) AS u(c, n, o) WHERE c = ANY (pkey) AND n IS DISTINCT FROM o) THEN
      RAISE EXCEPTION 'primary key update not allowed';
    END IF;
    IF cardinality(ignore) > 0 THEN
      SELECT count(*) INTO ign_chg
        FROM unnest(ignore) g(c)
        JOIN pg_attribute att ON att.attrelid = i_relid AND att.attname = g.c AND att.attnum > 0
       WHERE (@schema@._triga_values(i_old, i_relid, ARRAY[g.c], false))[1]
             IS DISTINCT FROM (@schema@._triga_values(i_new, i_relid, ARRAY[g.c], false))[1];
    END IF;
    -- sqltriga's SET list: the non-key columns whose value changed.
    setc := ARRAY(SELECT NOT (u.c = ANY (pkey)) AND u.n IS DISTINCT FROM u.o
                    FROM unnest(cols, nv, ov) WITH ORDINALITY AS u(c, n, o, ord) ORDER BY u.ord);
  END IF;
  data := @schema@._triga_render(i_format, i_op, i_relid, cols, pkey, setc,
                                 CASE WHEN i_op = 'DELETE' THEN i_old ELSE i_new END, nv);
  IF i_op = 'UPDATE' AND (backup OR cardinality(ignore) > 0) THEN
    old_data := @schema@._triga_render(i_format, i_op, i_relid, cols, pkey, setc, i_old, ov);
    IF old_data = data AND ign_chg > 0 THEN
      RETURN skip;
    END IF;
    IF backup THEN
      extras[2] := old_data;
    END IF;
  END IF;
  IF magic IS NOT NULL THEN
    mv := @schema@._triga_values(CASE WHEN i_op = 'DELETE' THEN i_old ELSE i_new END, i_relid, magic, false);
    FOR i IN 1 .. cardinality(magic) LOOP
      k := substr(magic[i], 9);
      IF k = 'type' THEN
        ev_type := mv[i];
      ELSE
        extras[substr(k, 6)::int] := mv[i];
      END IF;
    END LOOP;
  END IF;
  PERFORM @schema@.insert_event(stream, ev_type, data, extras[1], extras[2], extras[3], extras[4]);
  RETURN skip;
END
$$;

-- Internal: ev_data of one row in `i_format`; `i_vals` are the row's text
-- values of `i_cols` (the JSON values are read here), `i_set` marks
-- sqltriga's changed columns of an UPDATE.
CREATE FUNCTION @schema@._triga_render(i_format text, i_op text, i_relid oid, i_cols text[], i_pkey text[],
                                       i_set boolean[], i_row record, i_vals text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  jv    text[];
  setl  text;
  keyl  text;
BEGIN
  IF i_format = 'json' THEN
    jv := @schema@._triga_values(i_row, i_relid, i_cols, true);
    RETURN '{' || (SELECT string_agg(to_json(c)::text || ':' || coalesce(j, 'null'), ',' ORDER BY ord)
                     FROM unnest(i_cols, jv) WITH ORDINALITY AS u(c, j, ord)) || '}';
  ELSIF i_format = 'urlenc' THEN
    RETURN (SELECT string_agg(@schema@._urlencode(c) || coalesce('=' || @schema@._urlencode(v), ''), '&' ORDER BY ord)
              FROM unnest(i_cols, i_vals) WITH ORDINALITY AS u(c, v, ord));
  END IF;
  IF i_op = 'INSERT' THEN
    RETURN (SELECT '(' || string_agg(quote_ident(c), ',' ORDER BY ord) || ') values ('
                   || string_agg(coalesce(quote_literal(v), 'null'), ',' ORDER BY ord) || ')'
              FROM unnest(i_cols, i_vals) WITH ORDINALITY AS u(c, v, ord));
  END IF;
  SELECT string_agg(quote_ident(c) || coalesce('=' || quote_literal(v), ' is null'), ' and ' ORDER BY ord)
    INTO keyl FROM unnest(i_cols, i_vals) WITH ORDINALITY AS u(c, v, ord) WHERE c = ANY (i_pkey);
  IF i_op = 'DELETE' THEN
    RETURN keyl;
  END IF;
  SELECT string_agg(quote_ident(c) || '=' || quote_nullable(v), ',' ORDER BY ord)
    INTO setl FROM unnest(i_cols, i_vals, i_set) WITH ORDINALITY AS u(c, v, s, ord) WHERE s;
  IF setl IS NULL THEN
    SELECT quote_ident(c) || '=' || quote_nullable(v) INTO setl
      FROM unnest(i_cols, i_vals) WITH ORDINALITY AS u(c, v, ord) WHERE c = ANY (i_pkey) ORDER BY ord LIMIT 1;
  END IF;
  RETURN setl || ' where ' || keyl;
END
$$;

CREATE OR REPLACE FUNCTION @schema@.jsontriga() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF @schema@._triga('json', TG_OP, TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV, NEW, OLD)
     OR TG_WHEN = 'AFTER' OR TG_LEVEL = 'STATEMENT' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION @schema@.logutriga() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF @schema@._triga('urlenc', TG_OP, TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV, NEW, OLD)
     OR TG_WHEN = 'AFTER' OR TG_LEVEL = 'STATEMENT' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION @schema@.sqltriga() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF @schema@._triga('sql', TG_OP, TG_RELID, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV, NEW, OLD)
     OR TG_WHEN = 'AFTER' OR TG_LEVEL = 'STATEMENT' THEN
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
  RETURN NEW;
END
$$;

DROP FUNCTION @schema@._trigger_event(text, text, oid, text[], jsonb, jsonb);

-- PgQue's internal bulk insert, under its name: send_batch delegates to it,
-- no API role may call it (not even admin; only the owner), as in PgQue.
-- PgQue's own tests call it as a superuser and read send_batch's definition
-- for the call. Set-based (the work is _send_batch_rows').
CREATE FUNCTION @schema@.insert_event_bulk(queue_name text, ev_type text, ev_data_list text[]) RETURNS bigint[]
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@._send_batch_rows(queue_name, ev_type, ev_data_list)
$$;

-- The four send_batch forms call it. Written through quote_ident so the
-- stored body reads `pgque.insert_event_bulk(` (PgQue's tests match that)
-- and stays valid for any schema name.
DO $sb$
DECLARE
  sch text := quote_ident('@schema_name@');
  f   record;
BEGIN
  FOR f IN SELECT * FROM (VALUES
             ('queue_name text, type_name text, payloads text[]', 'type_name', 'payloads'),
             ('queue_name text, type_name text, payloads jsonb[]', 'type_name', 'payloads::text[]'),
             ('queue_name text, payloads text[]', '''default''', 'payloads'),
             ('queue_name text, payloads jsonb[]', '''default''', 'payloads::text[]')) v(args, typ, arr) LOOP
    EXECUTE format('CREATE OR REPLACE FUNCTION %1$s.send_batch(%2$s) RETURNS bigint[]
                    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $f$
                      SELECT %1$s.insert_event_bulk(queue_name, %3$s, %4$s)
                    $f$', sch, f.args, f.typ, f.arr);
  END LOOP;
END
$sb$;

-- The role model as in migration 8, plus insert_event_bulk among the
-- functions no API role gets.
CREATE OR REPLACE FUNCTION @schema@._apply_grants() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  reader text := '@schema_name@_reader';
  writer text := '@schema_name@_writer';
  admin  text := '@schema_name@_admin';
  f      record;
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC, %I, %I, %I', '@schema_name@', reader, writer, admin);
  EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', '@schema_name@', admin);
  EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', '@schema_name@');
  EXECUTE format('REVOKE ALL ON ALL PROCEDURES IN SCHEMA %I FROM PUBLIC', '@schema_name@');
  EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', '@schema_name@', reader);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA %I TO %I',
                 '@schema_name@', admin);
  EXECUTE format('REVOKE TRIGGER, REFERENCES ON ALL TABLES IN SCHEMA %I FROM %I', '@schema_name@', admin);
  EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO %I', '@schema_name@', admin);
  PERFORM @schema@._apply_read_policy();
  FOR f IN SELECT p.oid::regprocedure AS sig, p.proname, p.prokind FROM pg_proc p
            WHERE p.pronamespace = '@schema_name@'::regnamespace LOOP
    IF f.proname IN ('uninstall', '_send_batch_rows', 'insert_event_bulk') THEN
      CONTINUE;
    END IF;
    EXECUTE format('GRANT EXECUTE ON %s %s TO %I',
                   CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig, admin);
    IF f.proname IN ('subscribe', 'unsubscribe', 'receive', 'ack', 'nack', 'register_consumer',
                     'register_consumer_at', 'unregister_consumer', 'next_batch', 'next_batch_info',
                     'next_batch_custom', 'get_batch_events', 'finish_batch', 'event_retry',
                     'register_subconsumer', 'subscribe_subconsumer', 'unregister_subconsumer',
                     'unsubscribe_subconsumer', 'receive_coop', 'touch_subconsumer', 'get_queue_info',
                     'get_consumer_info', 'get_batch_info', 'dlq_inspect', 'version', 'request_tick') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.sig, reader);
    ELSIF f.proname IN ('send', 'send_batch', 'insert_event', 'dlq_replay', 'dlq_replay_all') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.sig, writer);
    END IF;
  END LOOP;
END
$$;


SELECT @schema@._apply_grants();
