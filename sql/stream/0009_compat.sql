-- Stream engine migration 9: the PgQ lower layer and the cooperative/batch
-- state machine brought in line with PgQue 0.2.0 where they differed. Each
-- change below is pinned by a test named after the reference behaviour
-- (test/stream/compat-lower-layer.test.ts).

-- Ticking ---------------------------------------------------------------------

-- The reference reads a sequence's last_value, which is its start value (1)
-- before the first nextval. So create_queue's tick records event_seq 1 and the
-- first event of a new queue does not count as "new" (1 - 1 = 0): the idle
-- rule then ticks it at once ("only one tick so far"), instead of waiting for
-- ticker_max_lag. get_queue_info's ev_new follows the same arithmetic.
CREATE OR REPLACE FUNCTION @schema@._seq_value(i_queue_id int4) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT coalesce(pg_sequence_last_value(s.oid), (SELECT seqstart FROM pg_catalog.pg_sequence WHERE seqrelid = s.oid))
    FROM (SELECT format('%I.%I', '@schema_name@', 'event_' || i_queue_id || '_id_seq')::regclass::oid AS oid) s
$$;

-- Internal: events that no tick has covered although the sequence did not move
-- since the last tick: drawn before that tick read the sequence but committed
-- (or took their xid) after its snapshot, or the first events of a new queue
-- (see _seq_value). The ev_txid index finds them.
CREATE OR REPLACE FUNCTION @schema@._late_events(q @schema@.queue, last @schema@.tick) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  late boolean;
BEGIN
  EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE ev_txid >= $1 OR ev_txid = ANY ($2))',
                 @schema@._event_table(q.queue_id))
    INTO late USING pg_snapshot_xmax(last.tick_snapshot), ARRAY(SELECT pg_snapshot_xip(last.tick_snapshot));
  RETURN late;
END
$$;

CREATE OR REPLACE FUNCTION @schema@._tick_due(q @schema@.queue, i_any_new boolean) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
DECLARE
  last  @schema@.tick;
  prev  timestamptz;
  n_new bigint;
  lag   interval;
  gap   interval;
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
  -- Adaptive ticking (pgferry): tick as soon as an uncovered event is visible.
  IF i_any_new AND @schema@._late_events(q, last) THEN
    RETURN true;
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

-- request_tick also asks for the events _seq_value no longer counts as new.
CREATE OR REPLACE FUNCTION @schema@.request_tick(i_queue_name text, i_wait_seconds integer DEFAULT 5) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q    @schema@.queue;
  last @schema@.tick;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = i_queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'queue not found: %', i_queue_name USING ERRCODE = 'PF401';
  END IF;
  INSERT INTO @schema@._waiter AS w (queue_id, until)
  VALUES (q.queue_id, now() + make_interval(secs => greatest(coalesce(i_wait_seconds, 5), 1)))
  ON CONFLICT (queue_id) DO UPDATE SET until = excluded.until
   WHERE w.until < excluded.until - interval '1 second';
  SELECT * INTO last FROM @schema@.tick WHERE tick_queue = q.queue_id ORDER BY tick_id DESC LIMIT 1;
  IF @schema@._seq_value(q.queue_id) > coalesce(last.tick_event_seq, 0) OR @schema@._late_events(q, last) THEN
    PERFORM pg_notify('pgferry.@schema_name@.tick_request', q.queue_name);
    RETURN true;
  END IF;
  RETURN false;
END
$$;

-- The reference checks the external flag before the paused flag.
CREATE OR REPLACE FUNCTION @schema@.ticker(i_queue_name text) RETURNS bigint
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
  IF q.queue_external_ticker THEN
    RAISE EXCEPTION 'This queue has external tick source.';
  END IF;
  IF q.queue_ticker_paused THEN
    RAISE EXCEPTION 'Ticker has been paused for this queue';
  END IF;
  RETURN @schema@._maybe_tick(q, false);
END
$$;

-- The external ticker also moves the queue's event-id sequence up to the
-- pushed event_seq (never back), as the reference does, so later events get
-- ids above it.
CREATE OR REPLACE FUNCTION @schema@.ticker(i_queue_name text, i_tick_id bigint, i_orig_timestamp timestamptz,
                                           i_event_seq bigint)
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
  IF i_event_seq > @schema@._seq_value(q.queue_id) THEN
    PERFORM setval(format('%I.%I', '@schema_name@', 'event_' || q.queue_id || '_id_seq')::regclass, i_event_seq);
  END IF;
  RETURN @schema@._insert_tick(q, i_tick_id, i_orig_timestamp, i_event_seq);
END
$$;

-- The reference bumps from nextval (so one more id is skipped).
CREATE OR REPLACE FUNCTION @schema@.force_next_tick(i_queue_name text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q   @schema@.queue;
  seq regclass;
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
  seq := format('%I.%I', '@schema_name@', 'event_' || q.queue_id || '_id_seq')::regclass;
  PERFORM setval(seq, nextval(seq) + 2 * q.queue_ticker_max_count + 1000);
  RETURN (SELECT max(tick_id) FROM @schema@.tick WHERE tick_queue = q.queue_id);
END
$$;

-- drop_queue(queue) is STRICT in the reference: a NULL name returns NULL.
CREATE OR REPLACE FUNCTION @schema@.drop_queue(x_queue_name text) RETURNS integer
LANGUAGE sql STRICT SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.drop_queue(x_queue_name, false)
$$;

-- Batches -----------------------------------------------------------------------

-- Internal: releases a cooperative member's batch. The member never owns a
-- cursor (the group's main row does), so its window ticks go back to NULL.
CREATE OR REPLACE FUNCTION @schema@._release_member(i_queue_id int4, i_consumer_id int4) RETURNS void
LANGUAGE sql AS $$
  UPDATE @schema@.subscription
     SET sub_last_tick = NULL, sub_next_tick = NULL, sub_batch = NULL, sub_active = now()
   WHERE sub_queue = i_queue_id AND sub_consumer = i_consumer_id
$$;

-- ack / finish_batch: a member's batch releases the member (the group cursor
-- moved at allocation); the group's main row never finishes a batch.
CREATE OR REPLACE FUNCTION @schema@._finish_batch(i_batch_id bigint) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  sub @schema@.subscription;
BEGIN
  SELECT * INTO sub FROM @schema@.subscription WHERE sub_batch = i_batch_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE WARNING 'finish_batch: batch % not found', i_batch_id;
    RETURN 0;
  END IF;
  IF sub.sub_role = 'coop_main' THEN
    RAISE EXCEPTION 'cannot finish cooperative main consumer batch % as normal active consumer', i_batch_id;
  ELSIF sub.sub_role = 'coop_member' THEN
    PERFORM @schema@._release_member(sub.sub_queue, sub.sub_consumer);
  ELSE
    UPDATE @schema@.subscription
       SET sub_last_tick = sub_next_tick, sub_next_tick = NULL, sub_batch = NULL, sub_active = now()
     WHERE sub_queue = sub.sub_queue AND sub_consumer = sub.sub_consumer;
  END IF;
  RETURN 1;
END
$$;

-- An empty window is finished at once; a cooperative member is released
-- (its ticks back to NULL) as finish_batch does.
CREATE OR REPLACE FUNCTION @schema@._deliver(i_batch_id bigint, i_queue_id int4, i_sub_id int4, s1 pg_snapshot,
                                             s2 pg_snapshot, i_max_return integer) RETURNS SETOF @schema@.message
LANGUAGE plpgsql AS $$
BEGIN
  IF i_batch_id IS NULL THEN
    RETURN;
  END IF;
  RETURN QUERY
    SELECT e.ev_id, i_batch_id, e.ev_type, e.ev_data, e.ev_retry, e.ev_time,
           e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4
      FROM @schema@._window_events(i_queue_id, i_sub_id, s1, s2, i_max_return) e;
  IF NOT FOUND THEN
    UPDATE @schema@.subscription
       SET sub_last_tick = CASE WHEN sub_role = 'coop_member' THEN NULL ELSE sub_next_tick END,
           sub_batch = NULL, sub_next_tick = NULL, sub_active = now()
     WHERE sub_batch = i_batch_id;
  END IF;
END
$$;

-- Internal: schedules one event of a batch for redelivery to its subscription
-- (a cooperative group as a whole). 1 = scheduled, 0 = already scheduled.
-- ev_txid stays NULL in retry_queue, as in the reference (the event gets the
-- moving transaction's id when it goes back into the queue).
CREATE OR REPLACE FUNCTION @schema@._schedule_retry(sub @schema@.subscription, e @schema@.event_template,
                                                    i_at timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO @schema@.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                                    ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
  VALUES (i_at, sub.sub_queue, e.ev_id, e.ev_time, NULL, sub.sub_id, coalesce(e.ev_retry, 0) + 1,
          e.ev_type, e.ev_data, e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4)
  ON CONFLICT (ev_owner, ev_id) DO NOTHING;
  RETURN CASE WHEN FOUND THEN 1 ELSE 0 END;
END
$$;

-- event_retry reads the batch through get_batch_events in the reference, so
-- an inactive batch raises that function's 'batch not found'.
CREATE OR REPLACE FUNCTION @schema@.event_retry(x_batch_id bigint, x_event_id bigint, x_retry_time timestamptz)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
  e @schema@.event_template;
BEGIN
  b := @schema@._batch(x_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RAISE EXCEPTION 'batch not found';
  END IF;
  SELECT * INTO e FROM @schema@._window_events((b.q).queue_id, (b.sub).sub_id, b.s1, b.s2, 1, x_event_id);
  IF e.ev_id IS NULL THEN
    RAISE EXCEPTION 'event not found';
  END IF;
  RETURN @schema@._schedule_retry(b.sub, e, x_retry_time);
END
$$;

-- receive / receive_coop: a NULL max_return is no limit (the reference only
-- refuses a value below 1).
CREATE OR REPLACE FUNCTION @schema@.receive(i_queue text, i_consumer text, i_max_return integer DEFAULT 100)
RETURNS SETOF @schema@.message
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
BEGIN
  IF i_max_return < 1 THEN
    RAISE EXCEPTION 'pgque.receive: max_return must be >= 1, got %', i_max_return;
  END IF;
  b := @schema@._open_batch(i_queue, i_consumer, NULL, NULL, NULL);
  RETURN QUERY SELECT * FROM @schema@._deliver(b.batch_id, b.queue_id, b.sub_id, b.s1, b.s2, i_max_return);
END
$$;

CREATE OR REPLACE FUNCTION @schema@.receive_coop(i_queue text, i_consumer text, i_subconsumer text,
                                                 i_max_return integer DEFAULT 100,
                                                 i_dead_interval interval DEFAULT NULL)
RETURNS SETOF @schema@.message
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b  record;
  s1 pg_snapshot;
  s2 pg_snapshot;
BEGIN
  IF i_max_return < 1 THEN
    RAISE EXCEPTION 'pgque.receive_coop: max_return must be >= 1, got %', i_max_return;
  END IF;
  PERFORM @schema@._coop_names(i_queue, i_consumer, i_subconsumer);
  IF NOT EXISTS (SELECT 1 FROM @schema@.queue WHERE queue_name = i_queue) THEN
    RAISE EXCEPTION 'Event queue not created yet';
  END IF;
  b := @schema@._coop_batch(i_queue, i_consumer, i_subconsumer, i_dead_interval, NULL, NULL, NULL);
  IF b.batch_id IS NULL THEN
    RETURN;
  END IF;
  SELECT tick_snapshot INTO s1 FROM @schema@.tick WHERE tick_queue = b.queue_id AND tick_id = b.prev_tick_id;
  SELECT tick_snapshot INTO s2 FROM @schema@.tick WHERE tick_queue = b.queue_id AND tick_id = b.next_tick_id;
  RETURN QUERY SELECT * FROM @schema@._deliver(b.batch_id, b.queue_id, b.sub_id, s1, s2, i_max_return);
END
$$;

-- Subscriptions -------------------------------------------------------------------

-- As before, plus: the last member leaving also refreshes the main row's
-- activity time when it turns it back into a normal consumer.
CREATE OR REPLACE FUNCTION @schema@._unsubscribe(q @schema@.queue, i_consumer text, i_force boolean) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  sub @schema@.subscription;
BEGIN
  SELECT s.* INTO sub FROM @schema@.subscription s JOIN @schema@.consumer c ON c.co_id = s.sub_consumer
   WHERE s.sub_queue = q.queue_id AND c.co_name = i_consumer FOR UPDATE OF s;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  IF sub.sub_role = 'coop_main' AND EXISTS (
       SELECT 1 FROM @schema@.subscription m
        WHERE m.sub_queue = q.queue_id AND m.sub_id = sub.sub_id AND m.sub_role = 'coop_member') THEN
    RAISE EXCEPTION 'cannot unregister cooperative main consumer with registered subconsumers';
  END IF;
  IF sub.sub_role = 'coop_member' AND sub.sub_batch IS NOT NULL AND NOT i_force THEN
    RAISE EXCEPTION 'cannot unregister active cooperative subconsumer without forced batch handling';
  END IF;
  DELETE FROM @schema@.subscription WHERE sub_queue = q.queue_id AND sub_consumer = sub.sub_consumer;
  IF sub.sub_role = 'coop_member' THEN
    -- The group keeps its retries; the last member leaving makes the main normal again.
    UPDATE @schema@.subscription m SET sub_role = 'normal', sub_active = now()
     WHERE m.sub_queue = q.queue_id AND m.sub_id = sub.sub_id AND m.sub_role = 'coop_main'
       AND NOT EXISTS (SELECT 1 FROM @schema@.subscription x
                        WHERE x.sub_queue = q.queue_id AND x.sub_id = sub.sub_id AND x.sub_role = 'coop_member');
  ELSE
    DELETE FROM @schema@.retry_queue WHERE ev_owner = sub.sub_id;
  END IF;
  DELETE FROM @schema@.consumer c WHERE c.co_id = sub.sub_consumer
     AND NOT EXISTS (SELECT 1 FROM @schema@.subscription s WHERE s.sub_consumer = c.co_id);
  RETURN 1;
END
$$;

-- Cooperative consumers -------------------------------------------------------------

-- As before, plus: a member row starts without a cursor (NULL ticks); a
-- subscription already holding the member's name that is not this group's
-- member is refused; converting a normal consumer refreshes its activity time.
CREATE OR REPLACE FUNCTION @schema@.register_subconsumer(i_queue text, i_consumer text, i_subconsumer text,
                                                         i_convert_normal boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q       @schema@.queue;
  main    @schema@.subscription;
  mem     @schema@.subscription;
  cid     int4;
  mid     int4;
  created integer := 0;
BEGIN
  PERFORM @schema@._coop_names(i_queue, i_consumer, i_subconsumer);
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = i_queue;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'Event queue not created yet';
  END IF;
  INSERT INTO @schema@.consumer (co_name) VALUES (i_consumer) ON CONFLICT (co_name) DO NOTHING;
  SELECT co_id INTO cid FROM @schema@.consumer WHERE co_name = i_consumer;
  SELECT * INTO main FROM @schema@.subscription WHERE sub_queue = q.queue_id AND sub_consumer = cid FOR UPDATE;
  IF NOT FOUND THEN
    INSERT INTO @schema@.subscription (sub_id, sub_queue, sub_consumer, sub_last_tick, sub_role)
    VALUES (nextval('@schema@.subscription_sub_id_seq'), q.queue_id, cid,
            (SELECT max(tick_id) FROM @schema@.tick WHERE tick_queue = q.queue_id), 'coop_main')
    ON CONFLICT (sub_queue, sub_consumer) DO NOTHING;
    SELECT * INTO main FROM @schema@.subscription WHERE sub_queue = q.queue_id AND sub_consumer = cid FOR UPDATE;
    created := 1;
  ELSIF main.sub_role = 'normal' THEN
    IF NOT coalesce(i_convert_normal, false) THEN
      RAISE EXCEPTION 'consumer % on queue % is already a normal consumer; explicit conversion is required',
        i_consumer, i_queue;
    END IF;
    IF main.sub_batch IS NOT NULL THEN
      RAISE EXCEPTION 'cannot convert active normal consumer % on queue % to cooperative main', i_consumer, i_queue;
    END IF;
    UPDATE @schema@.subscription SET sub_role = 'coop_main', sub_active = now()
     WHERE sub_queue = q.queue_id AND sub_consumer = cid;
    created := 1;
  ELSIF main.sub_role = 'coop_member' THEN
    RAISE EXCEPTION 'cooperative consumer name must not contain dot: %', i_consumer;
  END IF;
  INSERT INTO @schema@.consumer (co_name) VALUES (i_consumer || '.' || i_subconsumer) ON CONFLICT (co_name) DO NOTHING;
  SELECT co_id INTO mid FROM @schema@.consumer WHERE co_name = i_consumer || '.' || i_subconsumer;
  SELECT * INTO mem FROM @schema@.subscription WHERE sub_queue = q.queue_id AND sub_consumer = mid FOR UPDATE;
  IF FOUND THEN
    IF mem.sub_role <> 'coop_member' OR mem.sub_id <> main.sub_id THEN
      RAISE EXCEPTION 'consumer name %.% on queue % is already registered incompatibly', i_consumer, i_subconsumer,
        i_queue;
    END IF;
    UPDATE @schema@.subscription SET sub_active = now() WHERE sub_queue = q.queue_id AND sub_consumer = mid;
    RETURN created;
  END IF;
  INSERT INTO @schema@.subscription (sub_id, sub_queue, sub_consumer, sub_last_tick, sub_role)
  VALUES (main.sub_id, q.queue_id, mid, NULL, 'coop_member');
  RETURN 1;
END
$$;

-- Internal: the member's batch: its active one, a stale member's one taken
-- over (new batch id; the stale member is released), or the group's next
-- window (the group cursor advances at once so the next member gets the
-- following window).
CREATE OR REPLACE FUNCTION @schema@._coop_batch(i_queue text, i_consumer text, i_subconsumer text,
  i_dead_interval interval, i_min_lag interval, i_min_count integer, i_min_interval interval,
  OUT batch_id bigint, OUT prev_tick_id bigint, OUT next_tick_id bigint,
  OUT sub_id int4, OUT queue_id int4)
LANGUAGE plpgsql AS $$
DECLARE
  q     @schema@.queue;
  main  @schema@.subscription;
  mem   @schema@.subscription;
  stale @schema@.subscription;
  t1    @schema@.tick;
  t2    @schema@.tick;
BEGIN
  SELECT * INTO q FROM @schema@.queue x WHERE x.queue_name = i_queue;
  SELECT s.* INTO mem FROM @schema@.subscription s JOIN @schema@.consumer c ON c.co_id = s.sub_consumer
   WHERE s.sub_queue = q.queue_id AND c.co_name = i_consumer || '.' || i_subconsumer AND s.sub_role = 'coop_member';
  IF NOT FOUND THEN
    PERFORM @schema@.register_subconsumer(i_queue, i_consumer, i_subconsumer, false);
  END IF;
  SELECT s.* INTO main FROM @schema@.subscription s JOIN @schema@.consumer c ON c.co_id = s.sub_consumer
   WHERE s.sub_queue = q.queue_id AND c.co_name = i_consumer FOR UPDATE OF s;
  IF main.sub_role = 'normal' THEN
    RAISE EXCEPTION 'consumer % on queue % is already a normal consumer; explicit conversion is required',
      i_consumer, i_queue;
  END IF;
  SELECT s.* INTO mem FROM @schema@.subscription s JOIN @schema@.consumer c ON c.co_id = s.sub_consumer
   WHERE s.sub_queue = q.queue_id AND c.co_name = i_consumer || '.' || i_subconsumer FOR UPDATE OF s;
  sub_id := main.sub_id;
  queue_id := q.queue_id;
  IF mem.sub_batch IS NOT NULL THEN
    UPDATE @schema@.subscription s SET sub_active = now()
     WHERE s.sub_queue = q.queue_id AND s.sub_consumer = mem.sub_consumer;
    batch_id := mem.sub_batch;
    prev_tick_id := mem.sub_last_tick;
    next_tick_id := mem.sub_next_tick;
    RETURN;
  END IF;
  IF i_dead_interval IS NOT NULL THEN
    SELECT * INTO stale FROM @schema@.subscription s
     WHERE s.sub_queue = q.queue_id AND s.sub_id = main.sub_id AND s.sub_role = 'coop_member'
       AND s.sub_consumer <> mem.sub_consumer
       AND s.sub_batch IS NOT NULL AND s.sub_active < now() - i_dead_interval
     ORDER BY s.sub_active, s.sub_consumer LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      PERFORM @schema@._release_member(q.queue_id, stale.sub_consumer);
      batch_id := nextval('@schema@.batch_id_seq');
      UPDATE @schema@.subscription s
         SET sub_batch = batch_id, sub_last_tick = stale.sub_last_tick, sub_next_tick = stale.sub_next_tick,
             sub_active = now()
       WHERE s.sub_queue = q.queue_id AND s.sub_consumer = mem.sub_consumer;
      prev_tick_id := stale.sub_last_tick;
      next_tick_id := stale.sub_next_tick;
      RETURN;
    END IF;
  END IF;
  SELECT * INTO t1 FROM @schema@.tick t WHERE t.tick_queue = q.queue_id AND t.tick_id = main.sub_last_tick;
  t2 := @schema@._pick_tick(q.queue_id, t1, i_min_lag, i_min_count, i_min_interval);
  UPDATE @schema@.subscription s SET sub_active = now()
   WHERE s.sub_queue = q.queue_id AND s.sub_consumer = mem.sub_consumer;
  IF t2.tick_id IS NULL THEN
    RETURN;
  END IF;
  batch_id := nextval('@schema@.batch_id_seq');
  UPDATE @schema@.subscription s
     SET sub_batch = batch_id, sub_last_tick = t1.tick_id, sub_next_tick = t2.tick_id, sub_active = now()
   WHERE s.sub_queue = q.queue_id AND s.sub_consumer = mem.sub_consumer;
  UPDATE @schema@.subscription s SET sub_last_tick = t2.tick_id, sub_active = now()
   WHERE s.sub_queue = q.queue_id AND s.sub_consumer = main.sub_consumer;
  prev_tick_id := t1.tick_id;
  next_tick_id := t2.tick_id;
END
$$;

-- The heartbeat uses the wall clock (it moves within a transaction) and the
-- names are validated like every cooperative function's.
CREATE OR REPLACE FUNCTION @schema@.touch_subconsumer(i_queue text, i_consumer text, i_subconsumer text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  PERFORM @schema@._coop_names(i_queue, i_consumer, i_subconsumer);
  UPDATE @schema@.subscription s SET sub_active = clock_timestamp()
    FROM @schema@.queue q, @schema@.consumer c
   WHERE q.queue_name = i_queue AND s.sub_queue = q.queue_id AND c.co_id = s.sub_consumer
     AND c.co_name = i_consumer || '.' || i_subconsumer AND s.sub_role = 'coop_member';
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- batch_handling is validated before anything is looked up.
CREATE OR REPLACE FUNCTION @schema@.unregister_subconsumer(i_queue text, i_consumer text, i_subconsumer text,
                                                           i_batch_handling integer DEFAULT 0) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q   @schema@.queue;
  mem @schema@.subscription;
  b   record;
  e   @schema@.event_template;
BEGIN
  PERFORM @schema@._coop_names(i_queue, i_consumer, i_subconsumer);
  IF coalesce(i_batch_handling, 0) NOT IN (0, 1) THEN
    RAISE EXCEPTION 'unsupported batch_handling value: %', i_batch_handling;
  END IF;
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = i_queue;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  SELECT s.* INTO mem FROM @schema@.subscription s JOIN @schema@.consumer c ON c.co_id = s.sub_consumer
   WHERE s.sub_queue = q.queue_id AND c.co_name = i_consumer || '.' || i_subconsumer AND s.sub_role = 'coop_member'
     FOR UPDATE OF s;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  IF mem.sub_batch IS NOT NULL THEN
    IF coalesce(i_batch_handling, 0) = 0 THEN
      RAISE EXCEPTION 'cannot unregister active cooperative subconsumer %/%/% without batch_handling = 1',
        i_queue, i_consumer, i_subconsumer;
    END IF;
    b := @schema@._batch(mem.sub_batch);
    FOR e IN SELECT * FROM @schema@._window_events(q.queue_id, mem.sub_id, b.s1, b.s2) LOOP
      PERFORM @schema@._nack_event(mem, q.queue_max_retries, e, '60 seconds', 'subconsumer unregistered');
    END LOOP;
  END IF;
  RETURN @schema@._unsubscribe(q, i_consumer || '.' || i_subconsumer, true);
END
$$;

SELECT @schema@._apply_grants();
