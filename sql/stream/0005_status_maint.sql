-- Stream engine migration 5: status, maintenance (retries, rotation),
-- dead-letter functions, schedulers, trigger functions, and pgferry's
-- additions for ticking without pg_cron (request_tick, tick_pending).

-- Status ------------------------------------------------------------------------

CREATE FUNCTION @schema@.version() RETURNS text
LANGUAGE sql IMMUTABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ SELECT '0.2.0'::text $$;

CREATE FUNCTION @schema@.get_queue_info(i_queue_name text,
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
    LEFT JOIN LATERAL (SELECT * FROM (SELECT * FROM @schema@.tick t WHERE t.tick_queue = q.queue_id
                                       ORDER BY t.tick_id DESC LIMIT 20) x
                        ORDER BY x.tick_id LIMIT 1) ft ON true
   WHERE i_queue_name IS NULL OR q.queue_name = i_queue_name
   ORDER BY q.queue_name
$$;

CREATE FUNCTION @schema@.get_queue_info(
  OUT queue_name text, OUT queue_ntables integer, OUT queue_cur_table integer,
  OUT queue_rotation_period interval, OUT queue_switch_time timestamptz, OUT queue_external_ticker boolean,
  OUT queue_ticker_paused boolean, OUT queue_ticker_max_count integer, OUT queue_ticker_max_lag interval,
  OUT queue_ticker_idle_period interval, OUT ticker_lag interval, OUT ev_per_sec double precision,
  OUT ev_new bigint, OUT last_tick_id bigint)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM @schema@.get_queue_info(NULL::text)
$$;

CREATE FUNCTION @schema@.get_consumer_info(i_queue_name text, i_consumer_name text,
  OUT queue_name text, OUT consumer_name text, OUT lag interval, OUT last_seen interval, OUT last_tick bigint,
  OUT current_batch bigint, OUT next_tick bigint, OUT pending_events bigint)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT q.queue_name, c.co_name, now() - t.tick_time, now() - s.sub_active, s.sub_last_tick, s.sub_batch,
         s.sub_next_tick, lt.tick_event_seq - t.tick_event_seq
    FROM @schema@.subscription s
    JOIN @schema@.queue q ON q.queue_id = s.sub_queue
    JOIN @schema@.consumer c ON c.co_id = s.sub_consumer
    LEFT JOIN @schema@.tick t ON t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick
    LEFT JOIN LATERAL (SELECT * FROM @schema@.tick x WHERE x.tick_queue = q.queue_id
                        ORDER BY x.tick_id DESC LIMIT 1) lt ON true
   WHERE (i_queue_name IS NULL OR q.queue_name = i_queue_name)
     AND (i_consumer_name IS NULL OR c.co_name = i_consumer_name)
   ORDER BY q.queue_name, c.co_name
$$;

CREATE FUNCTION @schema@.get_consumer_info(i_queue_name text,
  OUT queue_name text, OUT consumer_name text, OUT lag interval, OUT last_seen interval, OUT last_tick bigint,
  OUT current_batch bigint, OUT next_tick bigint, OUT pending_events bigint)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM @schema@.get_consumer_info(i_queue_name, NULL)
$$;

CREATE FUNCTION @schema@.get_consumer_info(
  OUT queue_name text, OUT consumer_name text, OUT lag interval, OUT last_seen interval, OUT last_tick bigint,
  OUT current_batch bigint, OUT next_tick bigint, OUT pending_events bigint)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM @schema@.get_consumer_info(NULL, NULL)
$$;

CREATE FUNCTION @schema@.get_batch_info(x_batch_id bigint,
  OUT queue_name text, OUT consumer_name text, OUT batch_start timestamptz, OUT batch_end timestamptz,
  OUT prev_tick_id bigint, OUT tick_id bigint, OUT lag interval, OUT seq_start bigint, OUT seq_end bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
BEGIN
  b := @schema@._batch(x_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RETURN;
  END IF;
  queue_name := (b.q).queue_name;
  SELECT co_name INTO consumer_name FROM @schema@.consumer WHERE co_id = (b.sub).sub_consumer;
  batch_start := (b.t1).tick_time;
  batch_end := (b.t2).tick_time;
  prev_tick_id := (b.t1).tick_id;
  tick_id := (b.t2).tick_id;
  lag := now() - (b.t2).tick_time;
  seq_start := (b.t1).tick_event_seq;
  seq_end := (b.t2).tick_event_seq;
END
$$;

-- Maintenance -----------------------------------------------------------------------

CREATE FUNCTION @schema@.maint_retry_events() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r @schema@.retry_queue;
  q @schema@.queue;
  n integer := 0;
BEGIN
  FOR r IN SELECT * FROM @schema@.retry_queue WHERE ev_retry_after <= now()
            ORDER BY ev_retry_after LIMIT 10 FOR UPDATE SKIP LOCKED LOOP
    SELECT * INTO q FROM @schema@.queue WHERE queue_id = r.ev_queue;
    -- Re-inserted under this transaction's id: delivered in the first window
    -- ticked after this commits, to the owning subscription only.
    EXECUTE format('INSERT INTO %s (ev_id, ev_time, ev_owner, ev_retry, ev_type, ev_data,
                                    ev_extra1, ev_extra2, ev_extra3, ev_extra4)
                    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
                   @schema@._event_table(q.queue_id, q.queue_cur_table))
      USING r.ev_id, r.ev_time, r.ev_owner, r.ev_retry, r.ev_type, r.ev_data,
            r.ev_extra1, r.ev_extra2, r.ev_extra3, r.ev_extra4;
    DELETE FROM @schema@.retry_queue WHERE ev_owner = r.ev_owner AND ev_id = r.ev_id;
    -- The event keeps its id; advancing the sequence (ids have gaps anyway)
    -- shows the ticker that something new is waiting, so it ticks at once.
    PERFORM nextval(format('%I.%I', '@schema_name@', 'event_' || q.queue_id || '_id_seq')::regclass);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;

-- Rotation step 1: switch inserts to the next table after emptying it with
-- TRUNCATE (no dead tuples), once every subscription has moved past the last
-- switch. Also drops ticks no subscription needs any more.
CREATE FUNCTION @schema@.maint_rotate_tables_step1(i_queue_name text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q        @schema@.queue;
  nr       int4;
  min_tick bigint;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = i_queue_name FOR NO KEY UPDATE;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  SELECT min(sub_last_tick) INTO min_tick FROM @schema@.subscription WHERE sub_queue = q.queue_id;
  DELETE FROM @schema@.tick
   WHERE tick_queue = q.queue_id
     AND tick_id < coalesce(min_tick, (SELECT max(tick_id) FROM @schema@.tick WHERE tick_queue = q.queue_id));
  IF q.queue_switch_step2 IS NULL OR q.queue_switch_time + q.queue_rotation_period > now() THEN
    RETURN 0;
  END IF;
  -- A subscription still needs the old tables while its cursor (start of its
  -- next or active window) does not yet see every transaction before step2.
  IF EXISTS (SELECT 1 FROM @schema@.subscription s JOIN @schema@.tick t
                       ON t.tick_queue = s.sub_queue AND t.tick_id = s.sub_last_tick
              WHERE s.sub_queue = q.queue_id
                AND pg_snapshot_xmin(t.tick_snapshot)::text::bigint < q.queue_switch_step2) THEN
    RETURN 0;
  END IF;
  nr := (q.queue_cur_table + 1) % q.queue_ntables;
  BEGIN
    -- A long reader (pg_dump) may hold the table: skip this round, never wait.
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', @schema@._event_table(q.queue_id, nr));
    EXECUTE format('TRUNCATE %s', @schema@._event_table(q.queue_id, nr));
  EXCEPTION WHEN lock_not_available THEN
    RETURN 0;
  END;
  UPDATE @schema@.queue
     SET queue_cur_table = nr, queue_switch_time = now(),
         queue_switch_step1 = pg_current_xact_id()::text::bigint, queue_switch_step2 = NULL
   WHERE queue_id = q.queue_id;
  RETURN 1;
END
$$;

-- Rotation step 2: must run in a later transaction than step 1, so the xmax
-- it records is past every transaction that could still insert into the old
-- table.
CREATE FUNCTION @schema@.maint_rotate_tables_step2() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  UPDATE @schema@.queue
     SET queue_switch_step2 = pg_snapshot_xmax(pg_current_snapshot())::text::bigint
   WHERE queue_switch_step2 IS NULL
     AND queue_switch_step1 <> coalesce(pg_current_xact_id_if_assigned()::text::bigint, -1)
     AND pg_visible_in_snapshot(queue_switch_step1::text::xid8, pg_current_snapshot());
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- Unlike the reference, maint() also completes rotation step 2 of switches
-- committed earlier, so rotation keeps going in manual mode too.
CREATE FUNCTION @schema@.maint() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q     @schema@.queue;
  n     integer := 0;
  fn    text;
BEGIN
  n := n + @schema@.maint_rotate_tables_step2();
  FOR q IN SELECT * FROM @schema@.queue ORDER BY queue_name LOOP
    n := n + @schema@.maint_rotate_tables_step1(q.queue_name);
    -- Extra maintenance hooks run only when the function belongs to this schema's owner.
    IF q.queue_extra_maint IS NOT NULL THEN
      FOREACH fn IN ARRAY q.queue_extra_maint LOOP
        IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = to_regproc(fn)
                      AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = '@schema_name@')) THEN
          EXECUTE format('SELECT %s($1)', to_regproc(fn)) USING q.queue_name;
          n := n + 1;
        END IF;
      END LOOP;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

-- Dead letters -------------------------------------------------------------------

CREATE FUNCTION @schema@.dlq_inspect(i_queue_name text, i_limit_count integer DEFAULT 100)
RETURNS SETOF @schema@.dead_letter
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT d.* FROM @schema@.dead_letter d JOIN @schema@.queue q ON q.queue_id = d.dl_queue_id
   WHERE q.queue_name = i_queue_name
   ORDER BY d.dl_time DESC, d.dl_id DESC
   LIMIT i_limit_count
$$;

CREATE FUNCTION @schema@.dlq_replay(i_dead_letter_id bigint) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  d  @schema@.dead_letter;
  id bigint;
BEGIN
  DELETE FROM @schema@.dead_letter WHERE dl_id = i_dead_letter_id RETURNING * INTO d;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'dead letter entry not found: %', i_dead_letter_id;
  END IF;
  SELECT @schema@.insert_event(q.queue_name, d.ev_type, d.ev_data, d.ev_extra1, d.ev_extra2, d.ev_extra3, d.ev_extra4)
    INTO id FROM @schema@.queue q WHERE q.queue_id = d.dl_queue_id;
  RETURN id;
END
$$;

CREATE FUNCTION @schema@.dlq_replay_all(i_queue_name text, OUT replayed bigint, OUT failed bigint,
                                        OUT first_error text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
BEGIN
  replayed := 0;
  failed := 0;
  FOR r IN SELECT d.dl_id FROM @schema@.dead_letter d JOIN @schema@.queue q ON q.queue_id = d.dl_queue_id
            WHERE q.queue_name = i_queue_name ORDER BY d.dl_id LOOP
    BEGIN
      PERFORM @schema@.dlq_replay(r.dl_id);
      replayed := replayed + 1;
    EXCEPTION WHEN OTHERS THEN
      failed := failed + 1;
      RAISE WARNING 'dlq_replay_all: dl_id=%: %', r.dl_id, SQLERRM;
      IF first_error IS NULL THEN
        first_error := format('dl_id=%s: %s', r.dl_id, SQLERRM);
      END IF;
    END;
  END LOOP;
END
$$;

CREATE FUNCTION @schema@.dlq_purge(i_queue_name text, i_older_than interval DEFAULT '30 days') RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  DELETE FROM @schema@.dead_letter d USING @schema@.queue q
   WHERE q.queue_id = d.dl_queue_id AND q.queue_name = i_queue_name AND d.dl_time < now() - i_older_than;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- pgferry additions: ticking without pg_cron ---------------------------------------

-- Called by a consumer that found nothing to do: marks the queue as watched
-- for a few seconds (sends then NOTIFY the ticker channel
-- `pgferry.<schema>.tick_request`), and asks for a tick at once if events are
-- already waiting. Returns true when it asked.
CREATE FUNCTION @schema@.request_tick(i_queue_name text, i_wait_seconds integer DEFAULT 5) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q     @schema@.queue;
  last  bigint;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = i_queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'queue not found: %', i_queue_name USING ERRCODE = 'PF401';
  END IF;
  INSERT INTO @schema@._waiter AS w (queue_id, until)
  VALUES (q.queue_id, now() + make_interval(secs => greatest(coalesce(i_wait_seconds, 5), 1)))
  ON CONFLICT (queue_id) DO UPDATE SET until = excluded.until
   WHERE w.until < excluded.until - interval '1 second';
  SELECT tick_event_seq INTO last FROM @schema@.tick WHERE tick_queue = q.queue_id ORDER BY tick_id DESC LIMIT 1;
  IF @schema@._seq_value(q.queue_id) > coalesce(last, 0) THEN
    PERFORM pg_notify('pgferry.@schema_name@.tick_request', q.queue_name);
    RETURN true;
  END IF;
  RETURN false;
END
$$;

-- The adaptive ticker's step: ticks every queue (or the one named) that is
-- neither paused nor external as soon as it has new events, and otherwise as
-- the reference's idle rule says. Returns how many queues got a tick.
CREATE FUNCTION @schema@.tick_pending(i_queue_name text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q @schema@.queue;
  n integer := 0;
BEGIN
  FOR q IN SELECT * FROM @schema@.queue
            WHERE NOT queue_ticker_paused AND NOT queue_external_ticker
              AND (i_queue_name IS NULL OR queue_name = i_queue_name)
            ORDER BY queue_name FOR NO KEY UPDATE SKIP LOCKED LOOP
    IF @schema@._maybe_tick(q, true) IS NOT NULL THEN
      n := n + 1;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

SELECT @schema@._apply_grants();
