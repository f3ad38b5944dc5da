-- Stream engine migration 2: queue management, producing and ticking.
-- Every API function is SECURITY DEFINER with a pinned search_path: the API
-- roles hold no write privilege on the tables (as in the reference).

-- Internal: the queue row by name (NULL when unknown).
CREATE FUNCTION @schema@._queue(i_queue_name text) RETURNS @schema@.queue
LANGUAGE sql STABLE AS $$
  SELECT q FROM @schema@.queue q WHERE q.queue_name = i_queue_name
$$;

CREATE FUNCTION @schema@.create_queue(i_queue_name text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  qid  int4;
  base text;
  n    int4;
BEGIN
  IF i_queue_name IS NULL THEN
    RAISE EXCEPTION 'Invalid NULL value';
  END IF;
  IF octet_length(i_queue_name) > 57 THEN
    RAISE EXCEPTION 'queue name too long: % bytes (max 57). pg_notify channel ''pgque_<queue_name>'' must fit in 63 bytes.',
      octet_length(i_queue_name);
  END IF;
  qid := nextval(pg_get_serial_sequence('@schema@.queue', 'queue_id'));
  base := 'event_' || qid;
  INSERT INTO @schema@.queue (queue_id, queue_name, queue_data_pfx, queue_event_seq, queue_tick_seq)
  VALUES (qid, i_queue_name, '@schema_name@.' || base, '@schema_name@.' || base || '_id_seq',
          '@schema_name@.' || base || '_tick_seq')
  ON CONFLICT (queue_name) DO NOTHING;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  EXECUTE format('CREATE SEQUENCE %I.%I', '@schema_name@', base || '_id_seq');
  EXECUTE format('CREATE SEQUENCE %I.%I', '@schema_name@', base || '_tick_seq');
  EXECUTE format('CREATE TABLE %I.%I () INHERITS (@schema@.event_template)', '@schema_name@', base);
  FOR n IN 0..2 LOOP
    EXECUTE format('CREATE TABLE %I.%I () INHERITS (%I.%I)', '@schema_name@', base || '_' || n, '@schema_name@', base);
    -- Batches are cut by transaction id; the index serves the xid range scan.
    EXECUTE format('CREATE INDEX ON %I.%I (ev_txid)', '@schema_name@', base || '_' || n);
    EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', '@schema_name@', base || '_' || n);
    EXECUTE format('GRANT ALL ON %I.%I TO %I', '@schema_name@', base || '_' || n, '@schema_name@_admin');
  END LOOP;
  EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', '@schema_name@', base);
  EXECUTE format('GRANT ALL ON %I.%I TO %I', '@schema_name@', base, '@schema_name@_admin');
  EXECUTE format('GRANT ALL ON SEQUENCE %I.%I, %I.%I TO %I', '@schema_name@', base || '_id_seq',
                 '@schema_name@', base || '_tick_seq', '@schema_name@_admin');
  PERFORM @schema@._insert_tick(q, NULL) FROM @schema@.queue q WHERE q.queue_id = qid;
  RETURN 1;
END
$$;

-- Internal: inserts the next tick of a queue (caller holds the queue row lock)
-- and NOTIFYs `pgque_<queue>` with the tick id. Returns the tick id.
CREATE FUNCTION @schema@._insert_tick(q @schema@.queue, i_tick_id bigint, i_time timestamptz DEFAULT now(),
                                      i_event_seq bigint DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  tid bigint := i_tick_id;
BEGIN
  IF tid IS NULL THEN
    tid := nextval(format('%I.%I', '@schema_name@', 'event_' || q.queue_id || '_tick_seq')::regclass);
  ELSE
    PERFORM setval(format('%I.%I', '@schema_name@', 'event_' || q.queue_id || '_tick_seq')::regclass, tid);
  END IF;
  INSERT INTO @schema@.tick (tick_queue, tick_id, tick_time, tick_snapshot, tick_event_seq)
  VALUES (q.queue_id, tid, i_time, @schema@._tick_snapshot(),
          coalesce(i_event_seq, @schema@._seq_value(q.queue_id)));
  PERFORM pg_notify('pgque_' || q.queue_name, tid::text);
  DELETE FROM @schema@._waiter w WHERE w.queue_id = q.queue_id AND w.until < now();
  RETURN tid;
END
$$;

-- With force, unsubscribes every consumer first (cooperative members before their main).
CREATE FUNCTION @schema@.drop_queue(x_queue_name text, x_force boolean) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q @schema@.queue;
  c record;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = x_queue_name FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'No such event queue';
  END IF;
  IF EXISTS (SELECT 1 FROM @schema@.subscription WHERE sub_queue = q.queue_id) THEN
    IF NOT coalesce(x_force, false) THEN
      RAISE EXCEPTION 'cannot drop queue, consumers still attached';
    END IF;
    -- Cooperative members go before their main (the reference refuses here;
    -- see docs/stream.md "compatibility").
    FOR c IN SELECT co.co_name FROM @schema@.subscription s JOIN @schema@.consumer co ON co.co_id = s.sub_consumer
              WHERE s.sub_queue = q.queue_id
              ORDER BY s.sub_role <> 'coop_member', co.co_name LOOP
      PERFORM @schema@._unsubscribe(q, c.co_name, true);
    END LOOP;
  END IF;
  EXECUTE format('DROP TABLE %s CASCADE', @schema@._event_table(q.queue_id));
  EXECUTE format('DROP SEQUENCE %I.%I, %I.%I', '@schema_name@', 'event_' || q.queue_id || '_id_seq',
                 '@schema_name@', 'event_' || q.queue_id || '_tick_seq');
  DELETE FROM @schema@.tick WHERE tick_queue = q.queue_id;
  DELETE FROM @schema@.retry_queue WHERE ev_queue = q.queue_id;
  DELETE FROM @schema@._waiter WHERE queue_id = q.queue_id;
  DELETE FROM @schema@.queue WHERE queue_id = q.queue_id;
  RETURN 1;
END
$$;

CREATE FUNCTION @schema@.drop_queue(x_queue_name text) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.drop_queue(x_queue_name, false)
$$;

CREATE FUNCTION @schema@.set_queue_config(x_queue_name text, x_param_name text, x_param_value text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  qid int4;
  i   bigint;
  iv  interval;
BEGIN
  IF x_queue_name IS NULL OR x_param_name IS NULL THEN
    RAISE EXCEPTION 'Invalid NULL value';
  END IF;
  SELECT queue_id INTO qid FROM @schema@.queue WHERE queue_name = x_queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'No such event queue';
  END IF;
  CASE x_param_name
    WHEN 'ticker_max_count' THEN
      i := coalesce(x_param_value::bigint, 500);
      IF i <= 0 THEN RAISE EXCEPTION 'set_queue_config: ticker_max_count must be > 0, got %', i; END IF;
      UPDATE @schema@.queue SET queue_ticker_max_count = i WHERE queue_id = qid;
    WHEN 'ticker_max_lag' THEN
      iv := coalesce(x_param_value::interval, '3 seconds');
      IF iv <= '0'::interval THEN RAISE EXCEPTION 'set_queue_config: ticker_max_lag must be > 0, got %', iv; END IF;
      UPDATE @schema@.queue SET queue_ticker_max_lag = iv WHERE queue_id = qid;
    WHEN 'ticker_idle_period' THEN
      iv := coalesce(x_param_value::interval, '1 minute');
      IF iv <= '0'::interval THEN RAISE EXCEPTION 'set_queue_config: ticker_idle_period must be > 0, got %', iv; END IF;
      UPDATE @schema@.queue SET queue_ticker_idle_period = iv WHERE queue_id = qid;
    WHEN 'rotation_period' THEN
      iv := coalesce(x_param_value::interval, '2 hours');
      IF iv <= '0'::interval THEN RAISE EXCEPTION 'set_queue_config: rotation_period must be > 0, got %', iv; END IF;
      UPDATE @schema@.queue SET queue_rotation_period = iv WHERE queue_id = qid;
    WHEN 'ticker_paused' THEN
      UPDATE @schema@.queue SET queue_ticker_paused = coalesce(x_param_value::boolean, false) WHERE queue_id = qid;
    WHEN 'external_ticker' THEN
      UPDATE @schema@.queue SET queue_external_ticker = coalesce(x_param_value::boolean, false) WHERE queue_id = qid;
    WHEN 'disable_insert' THEN
      UPDATE @schema@.queue SET queue_disable_insert = coalesce(x_param_value::boolean, false) WHERE queue_id = qid;
    WHEN 'max_retries' THEN
      i := x_param_value::bigint;
      IF i < 0 THEN RAISE EXCEPTION 'set_queue_config: max_retries must be >= 0, got %', i; END IF;
      UPDATE @schema@.queue SET queue_max_retries = i WHERE queue_id = qid;
    ELSE
      -- The stray "s" is the reference's wording (a PgQ format quirk), kept for compatibility.
      RAISE EXCEPTION 'cannot change parameter "%s"', x_param_name;
  END CASE;
  RETURN 1;
END
$$;

-- Producing -----------------------------------------------------------------

-- Internal: the queue for an insert, checked, plus the "a consumer waits" hint.
CREATE FUNCTION @schema@._producer_queue(i_queue_name text, OUT q @schema@.queue, OUT wake boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  SELECT * INTO q FROM @schema@.queue x WHERE x.queue_name = i_queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'queue not found: %', i_queue_name;
  END IF;
  IF q.queue_disable_insert THEN
    RAISE EXCEPTION 'Insert into queue disallowed';
  END IF;
  wake := EXISTS (SELECT 1 FROM @schema@._waiter w WHERE w.queue_id = q.queue_id AND w.until > now());
END
$$;

CREATE FUNCTION @schema@.insert_event(queue_name text, ev_type text, ev_data text, ev_extra1 text, ev_extra2 text,
                                      ev_extra3 text, ev_extra4 text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p   record;
  id  bigint;
BEGIN
  p := @schema@._producer_queue(queue_name);
  EXECUTE format('INSERT INTO %s (ev_id, ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
                  VALUES (nextval(%L), now(), $1, $2, $3, $4, $5, $6) RETURNING ev_id',
                 @schema@._event_table((p.q).queue_id, (p.q).queue_cur_table),
                 format('%I.%I', '@schema_name@', 'event_' || (p.q).queue_id || '_id_seq'))
    INTO id USING ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4;
  IF p.wake THEN
    PERFORM pg_notify('pgferry.@schema_name@.tick_request', (p.q).queue_name);
  END IF;
  RETURN id;
END
$$;

CREATE FUNCTION @schema@.insert_event(queue_name text, ev_type text, ev_data text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.insert_event(queue_name, ev_type, ev_data, NULL, NULL, NULL, NULL)
$$;

CREATE FUNCTION @schema@.send(queue_name text, type_name text, payload text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.insert_event(queue_name, type_name, payload, NULL, NULL, NULL, NULL)
$$;

CREATE FUNCTION @schema@.send(queue_name text, type_name text, payload jsonb) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.insert_event(queue_name, type_name, payload::text, NULL, NULL, NULL, NULL)
$$;

CREATE FUNCTION @schema@.send(queue_name text, payload text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.insert_event(queue_name, 'default', payload, NULL, NULL, NULL, NULL)
$$;

CREATE FUNCTION @schema@.send(queue_name text, payload jsonb) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.insert_event(queue_name, 'default', payload::text, NULL, NULL, NULL, NULL)
$$;

-- Internal bulk insert behind send_batch (not granted to any role).
CREATE FUNCTION @schema@._send_batch_rows(i_queue_name text, i_type text, i_payloads text[]) RETURNS bigint[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p   record;
  ids bigint[];
  seq regclass;
BEGIN
  IF i_payloads IS NULL THEN
    RAISE EXCEPTION 'payloads must not be null';
  END IF;
  IF cardinality(i_payloads) = 0 THEN
    RETURN '{}';
  END IF;
  p := @schema@._producer_queue(i_queue_name);
  seq := format('%I.%I', '@schema_name@', 'event_' || (p.q).queue_id || '_id_seq')::regclass;
  -- Ids first, so they line up with input positions whatever order the insert takes.
  ids := ARRAY(SELECT nextval(seq) FROM generate_series(1, cardinality(i_payloads)));
  EXECUTE format('INSERT INTO %s (ev_id, ev_time, ev_type, ev_data)
                  SELECT i, now(), $1, d FROM unnest($2::bigint[], $3::text[]) AS u(i, d)',
                 @schema@._event_table((p.q).queue_id, (p.q).queue_cur_table))
    USING i_type, ids, i_payloads;
  IF p.wake THEN
    PERFORM pg_notify('pgferry.@schema_name@.tick_request', (p.q).queue_name);
  END IF;
  RETURN ids;
END
$$;

CREATE FUNCTION @schema@.send_batch(queue_name text, type_name text, payloads text[]) RETURNS bigint[]
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@._send_batch_rows(queue_name, type_name, payloads)
$$;

CREATE FUNCTION @schema@.send_batch(queue_name text, type_name text, payloads jsonb[]) RETURNS bigint[]
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@._send_batch_rows(queue_name, type_name, payloads::text[])
$$;

CREATE FUNCTION @schema@.send_batch(queue_name text, payloads text[]) RETURNS bigint[]
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@._send_batch_rows(queue_name, 'default', payloads)
$$;

CREATE FUNCTION @schema@.send_batch(queue_name text, payloads jsonb[]) RETURNS bigint[]
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@._send_batch_rows(queue_name, 'default', payloads::text[])
$$;

-- Ticking ---------------------------------------------------------------------

-- Internal: is a tick due for this (locked) queue under the reference's rule?
-- `i_any_new` (pgferry's adaptive ticker) also ticks as soon as one event waits.
CREATE FUNCTION @schema@._tick_due(q @schema@.queue, i_any_new boolean) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  last  @schema@.tick;
  prev  timestamptz;
  n_new bigint;
  lag   interval;
  gap   interval;
  late  boolean;
BEGIN
  SELECT * INTO last FROM @schema@.tick WHERE tick_queue = q.queue_id ORDER BY tick_id DESC LIMIT 1;
  IF NOT FOUND THEN
    RETURN true;
  END IF;
  n_new := @schema@._seq_value(q.queue_id) - last.tick_event_seq;
  lag := now() - last.tick_time;
  IF n_new > 0 THEN
    RETURN i_any_new OR n_new >= q.queue_ticker_max_count OR lag >= q.queue_ticker_max_lag;
  END IF;
  -- Adaptive ticking: an event whose id was drawn before the last tick read
  -- the sequence, but whose transaction was in progress (or had not yet
  -- taken its xid) when the tick took its snapshot, is counted in
  -- tick_event_seq yet is not in that tick's batch. Nothing would tick for it
  -- until the idle tick, so tick as soon as such an event is visible. (With
  -- n_new = 0 no event was drawn after the tick, so any event outside the
  -- tick's snapshot is one of these; the ev_txid index finds them.)
  IF i_any_new THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE ev_txid >= $1 OR ev_txid = ANY ($2))',
                   @schema@._event_table(q.queue_id))
      INTO late USING pg_snapshot_xmax(last.tick_snapshot), ARRAY(SELECT pg_snapshot_xip(last.tick_snapshot));
    IF late THEN
      RETURN true;
    END IF;
  END IF;
  SELECT tick_time INTO prev FROM @schema@.tick
   WHERE tick_queue = q.queue_id AND tick_id < last.tick_id ORDER BY tick_id DESC LIMIT 1;
  IF NOT FOUND THEN
    RETURN true;
  END IF;
  gap := last.tick_time - prev;
  IF lag < q.queue_ticker_max_lag / 2 OR (lag < 2 * gap AND lag < q.queue_ticker_idle_period) THEN
    RETURN false;
  END IF;
  RETURN true;
END
$$;

-- Internal: ticks a locked queue if due and the new snapshot does not go back
-- in time (a caller in REPEATABLE READ may hold a snapshot older than the
-- last tick; ticking from it would replay or skip events).
CREATE FUNCTION @schema@._maybe_tick(q @schema@.queue, i_any_new boolean) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  last pg_snapshot;
  cur  pg_snapshot;
BEGIN
  IF NOT @schema@._tick_due(q, i_any_new) THEN
    RETURN NULL;
  END IF;
  SELECT tick_snapshot INTO last FROM @schema@.tick WHERE tick_queue = q.queue_id ORDER BY tick_id DESC LIMIT 1;
  IF FOUND THEN
    cur := @schema@._tick_snapshot();
    IF pg_snapshot_xmax(cur) < pg_snapshot_xmax(last)
       OR EXISTS (SELECT 1 FROM pg_snapshot_xip(cur) x WHERE pg_visible_in_snapshot(x, last)) THEN
      RETURN NULL;
    END IF;
  END IF;
  RETURN @schema@._insert_tick(q, NULL);
END
$$;

CREATE FUNCTION @schema@.ticker(i_queue_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q @schema@.queue;
BEGIN
  -- NO KEY UPDATE serializes tickers of one queue without blocking the
  -- KEY SHARE locks that dead-letter inserts take through their foreign key.
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = i_queue_name FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no such queue';
  END IF;
  IF q.queue_ticker_paused THEN
    RAISE EXCEPTION 'Ticker has been paused for this queue';
  END IF;
  IF q.queue_external_ticker THEN
    RAISE EXCEPTION 'This queue has external tick source.';
  END IF;
  RETURN @schema@._maybe_tick(q, false);
END
$$;

CREATE FUNCTION @schema@.ticker() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q @schema@.queue;
  n bigint := 0;
BEGIN
  FOR q IN SELECT * FROM @schema@.queue
            WHERE NOT queue_ticker_paused AND NOT queue_external_ticker
            ORDER BY queue_name FOR NO KEY UPDATE LOOP
    IF @schema@._maybe_tick(q, false) IS NOT NULL THEN
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

CREATE FUNCTION @schema@.ticker(i_queue_name text, i_tick_id bigint, i_orig_timestamp timestamptz, i_event_seq bigint)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q    @schema@.queue;
  last @schema@.tick;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = i_queue_name FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'queue not found: %', i_queue_name;
  END IF;
  IF q.queue_ticker_paused THEN
    RAISE EXCEPTION 'queue % is paused (queue_ticker_paused = true)', i_queue_name;
  END IF;
  IF NOT q.queue_external_ticker THEN
    RAISE EXCEPTION 'queue % is not configured for external ticker (queue_external_ticker = false); use pgque.ticker(queue) instead', i_queue_name;
  END IF;
  SELECT * INTO last FROM @schema@.tick WHERE tick_queue = q.queue_id ORDER BY tick_id DESC LIMIT 1;
  IF FOUND AND i_tick_id <= last.tick_id THEN
    RAISE EXCEPTION 'external ticker tick_id must be strictly greater than current max (% <= %)', i_tick_id, last.tick_id;
  END IF;
  IF FOUND AND i_event_seq < last.tick_event_seq THEN
    RAISE EXCEPTION 'external ticker event_seq must be >= previous tick (% < %)', i_event_seq, last.tick_event_seq;
  END IF;
  RETURN @schema@._insert_tick(q, i_tick_id, i_orig_timestamp, i_event_seq);
END
$$;

CREATE FUNCTION @schema@.force_next_tick(i_queue_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q @schema@.queue;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = i_queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'queue not found: %', i_queue_name;
  END IF;
  IF q.queue_ticker_paused THEN
    RAISE EXCEPTION 'queue % is paused (queue_ticker_paused = true)', i_queue_name;
  END IF;
  IF q.queue_external_ticker THEN
    RAISE EXCEPTION 'queue % is configured for external ticker; force_tick is meaningless — push ticks via pgque.ticker(queue, tick_id, ts, event_seq)', i_queue_name;
  END IF;
  PERFORM setval(format('%I.%I', '@schema_name@', 'event_' || q.queue_id || '_id_seq')::regclass,
                 @schema@._seq_value(q.queue_id) + 2 * q.queue_ticker_max_count + 1000);
  RETURN (SELECT max(tick_id) FROM @schema@.tick WHERE tick_queue = q.queue_id);
END
$$;

CREATE FUNCTION @schema@.force_tick(i_queue_name text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.force_next_tick(i_queue_name)
$$;
