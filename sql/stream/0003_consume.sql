-- Stream engine migration 3: subscriptions, batches, ack/nack, retries.
--
-- A batch is the window between two ticks of a queue as seen by one
-- subscription: exactly the events whose inserting transaction is visible in
-- the end tick's snapshot and not in the start tick's. Snapshots are
-- monotonic (ticks of a queue are serialized), so every committed event lands
-- in exactly one window whatever the commit order of its producers.

-- Internal: the events of a window, for one subscription. "Not visible in s1"
-- is rewritten as `txid >= xmax(s1) OR txid IN xip(s1)` so the index on ev_txid
-- serves it even while a long transaction holds xmin(s1) far back.
CREATE FUNCTION @schema@._window_events(i_queue_id int4, i_sub_id int4, s1 pg_snapshot, s2 pg_snapshot,
                                        i_limit integer DEFAULT NULL, i_ev_id bigint DEFAULT NULL)
RETURNS SETOF @schema@.event_template
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT * FROM %s
      WHERE ((ev_txid >= $1 AND ev_txid < $2) OR ev_txid = ANY ($3))
        AND pg_visible_in_snapshot(ev_txid, $4)
        AND (ev_owner IS NULL OR ev_owner = $5)
        %s
      ORDER BY ev_id
      LIMIT $6',
    @schema@._event_table(i_queue_id),
    CASE WHEN i_ev_id IS NOT NULL THEN 'AND ev_id = $7' ELSE '' END)
    USING pg_snapshot_xmax(s1), pg_snapshot_xmax(s2), ARRAY(SELECT pg_snapshot_xip(s1)), s2, i_sub_id,
          i_limit, i_ev_id;
END
$$;

-- Internal: an active batch with its window (NULL fields when not active).
CREATE FUNCTION @schema@._batch(i_batch_id bigint,
  OUT sub @schema@.subscription, OUT q @schema@.queue, OUT s1 pg_snapshot, OUT s2 pg_snapshot,
  OUT t1 @schema@.tick, OUT t2 @schema@.tick)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  SELECT * INTO sub FROM @schema@.subscription WHERE sub_batch = i_batch_id;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  SELECT * INTO q FROM @schema@.queue WHERE queue_id = sub.sub_queue;
  SELECT * INTO t1 FROM @schema@.tick WHERE tick_queue = sub.sub_queue AND tick_id = sub.sub_last_tick;
  SELECT * INTO t2 FROM @schema@.tick WHERE tick_queue = sub.sub_queue AND tick_id = sub.sub_next_tick;
  s1 := t1.tick_snapshot;
  s2 := t2.tick_snapshot;
END
$$;

-- Internal: the consumer id that owns dead letters of a subscription row
-- (a cooperative member's go to its group's main consumer).
CREATE FUNCTION @schema@._dl_owner(sub @schema@.subscription) RETURNS int4
LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN sub.sub_role = 'coop_member'
              THEN (SELECT m.sub_consumer FROM @schema@.subscription m
                     WHERE m.sub_queue = sub.sub_queue AND m.sub_id = sub.sub_id AND m.sub_role <> 'coop_member'
                     LIMIT 1)
              ELSE sub.sub_consumer END
$$;

-- Subscriptions -----------------------------------------------------------------

CREATE FUNCTION @schema@.register_consumer_at(x_queue_name text, x_consumer_name text, x_tick_pos bigint) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q   @schema@.queue;
  cid int4;
  pos bigint := x_tick_pos;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = x_queue_name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'Event queue not created yet';
  END IF;
  IF pos IS NULL THEN
    SELECT max(tick_id) INTO pos FROM @schema@.tick WHERE tick_queue = q.queue_id;
  ELSIF NOT EXISTS (SELECT 1 FROM @schema@.tick WHERE tick_queue = q.queue_id AND tick_id = pos) THEN
    RAISE EXCEPTION 'cannot reposition, tick not found: %', pos;
  END IF;
  INSERT INTO @schema@.consumer (co_name) VALUES (x_consumer_name) ON CONFLICT (co_name) DO NOTHING;
  SELECT co_id INTO cid FROM @schema@.consumer WHERE co_name = x_consumer_name;
  INSERT INTO @schema@.subscription (sub_id, sub_queue, sub_consumer, sub_last_tick)
  VALUES (nextval('@schema@.subscription_sub_id_seq'), q.queue_id, cid, pos)
  ON CONFLICT (sub_queue, sub_consumer) DO NOTHING;
  IF FOUND THEN
    RETURN 1;
  END IF;
  IF x_tick_pos IS NOT NULL THEN
    UPDATE @schema@.subscription SET sub_last_tick = pos, sub_batch = NULL, sub_next_tick = NULL, sub_active = now()
     WHERE sub_queue = q.queue_id AND sub_consumer = cid;
  END IF;
  RETURN 0;
END
$$;

CREATE FUNCTION @schema@.register_consumer(x_queue_name text, x_consumer_id text) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.register_consumer_at(x_queue_name, x_consumer_id, NULL)
$$;

CREATE FUNCTION @schema@.subscribe(queue text, consumer text) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.register_consumer_at(queue, consumer, NULL)
$$;

-- Internal: removes one subscription by consumer name (see unsubscribe).
-- `i_force` (drop_queue) skips the active-member check.
CREATE FUNCTION @schema@._unsubscribe(q @schema@.queue, i_consumer text, i_force boolean) RETURNS integer
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
    UPDATE @schema@.subscription m SET sub_role = 'normal'
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

CREATE FUNCTION @schema@.unregister_consumer(x_queue_name text, x_consumer_name text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q @schema@.queue;
BEGIN
  SELECT * INTO q FROM @schema@.queue WHERE queue_name = x_queue_name;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  RETURN @schema@._unsubscribe(q, x_consumer_name, false);
END
$$;

CREATE FUNCTION @schema@.unsubscribe(queue text, consumer text) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.unregister_consumer(queue, consumer)
$$;

-- Batches -------------------------------------------------------------------------

-- Internal: opens (or returns the active) batch of a normal subscription.
-- With i_min_count / i_min_interval the window may span several ticks; with
-- i_min_lag the end tick must be at least that old. No batch: batch_id NULL.
CREATE FUNCTION @schema@._open_batch(i_queue_name text, i_consumer_name text,
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
    RAISE EXCEPTION 'Not subscriber to queue: %/%', i_queue_name, i_consumer_name;
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

-- Internal: the end tick of the next window after `t1` (NULL tick_id when none).
CREATE FUNCTION @schema@._pick_tick(i_queue_id int4, t1 @schema@.tick, i_min_lag interval, i_min_count integer,
                                    i_min_interval interval) RETURNS @schema@.tick
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t @schema@.tick;
BEGIN
  IF i_min_count IS NULL AND i_min_interval IS NULL THEN
    SELECT * INTO t FROM @schema@.tick x WHERE x.tick_queue = i_queue_id AND x.tick_id > t1.tick_id
     ORDER BY x.tick_id LIMIT 1;
  ELSE
    SELECT * INTO t FROM @schema@.tick x WHERE x.tick_queue = i_queue_id AND x.tick_id > t1.tick_id
       AND ((i_min_count IS NOT NULL AND x.tick_event_seq - t1.tick_event_seq >= i_min_count)
            OR (i_min_interval IS NOT NULL AND x.tick_time - t1.tick_time >= i_min_interval))
     ORDER BY x.tick_id LIMIT 1;
  END IF;
  IF t.tick_id IS NOT NULL AND i_min_lag IS NOT NULL AND t.tick_time > now() - i_min_lag THEN
    t := NULL;
  END IF;
  RETURN t;
END
$$;

CREATE FUNCTION @schema@.next_batch_custom(i_queue_name text, i_consumer_name text, i_min_lag interval,
  i_min_count integer, i_min_interval interval,
  OUT batch_id bigint, OUT cur_tick_id bigint, OUT prev_tick_id bigint,
  OUT cur_tick_time timestamptz, OUT prev_tick_time timestamptz,
  OUT cur_tick_event_seq bigint, OUT prev_tick_event_seq bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT b.batch_id, b.cur_tick_id, b.prev_tick_id, b.cur_tick_time, b.prev_tick_time,
         b.cur_tick_event_seq, b.prev_tick_event_seq
    FROM @schema@._open_batch(i_queue_name, i_consumer_name, i_min_lag, i_min_count, i_min_interval) b
$$;

CREATE FUNCTION @schema@.next_batch_info(i_queue_name text, i_consumer_name text,
  OUT batch_id bigint, OUT cur_tick_id bigint, OUT prev_tick_id bigint,
  OUT cur_tick_time timestamptz, OUT prev_tick_time timestamptz,
  OUT cur_tick_event_seq bigint, OUT prev_tick_event_seq bigint)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM @schema@.next_batch_custom(i_queue_name, i_consumer_name, NULL, NULL, NULL)
$$;

CREATE FUNCTION @schema@.next_batch(i_queue_name text, i_consumer_name text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT batch_id FROM @schema@._open_batch(i_queue_name, i_consumer_name, NULL, NULL, NULL)
$$;

-- Internal: finishes a batch; 1, or 0 with the reference's WARNING.
CREATE FUNCTION @schema@._finish_batch(i_batch_id bigint) RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  -- A cooperative member's window already moved the group cursor at allocation.
  UPDATE @schema@.subscription
     SET sub_last_tick = CASE WHEN sub_role = 'coop_member' THEN sub_last_tick ELSE sub_next_tick END,
         sub_batch = NULL, sub_next_tick = NULL, sub_active = now()
   WHERE sub_batch = i_batch_id;
  IF NOT FOUND THEN
    RAISE WARNING 'finish_batch: batch % not found', i_batch_id;
    RETURN 0;
  END IF;
  RETURN 1;
END
$$;

CREATE FUNCTION @schema@.finish_batch(x_batch_id bigint) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@._finish_batch(x_batch_id)
$$;

CREATE FUNCTION @schema@.ack(i_batch_id bigint) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@._finish_batch(i_batch_id)
$$;

-- Internal: rows of a batch as pgque.message; an empty window is finished at once.
CREATE FUNCTION @schema@._deliver(i_batch_id bigint, i_queue_id int4, i_sub_id int4, s1 pg_snapshot,
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
       SET sub_last_tick = CASE WHEN sub_role = 'coop_member' THEN sub_last_tick ELSE sub_next_tick END,
           sub_batch = NULL, sub_next_tick = NULL, sub_active = now()
     WHERE sub_batch = i_batch_id;
  END IF;
END
$$;

CREATE FUNCTION @schema@.receive(i_queue text, i_consumer text, i_max_return integer DEFAULT 100)
RETURNS SETOF @schema@.message
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
BEGIN
  IF i_max_return IS NULL OR i_max_return < 1 THEN
    RAISE EXCEPTION 'pgque.receive: max_return must be >= 1, got %', i_max_return;
  END IF;
  b := @schema@._open_batch(i_queue, i_consumer, NULL, NULL, NULL);
  RETURN QUERY SELECT * FROM @schema@._deliver(b.batch_id, b.queue_id, b.sub_id, b.s1, b.s2, i_max_return);
END
$$;

CREATE FUNCTION @schema@.get_batch_events(x_batch_id bigint,
  OUT ev_id bigint, OUT ev_time timestamptz, OUT ev_txid bigint, OUT ev_retry integer, OUT ev_type text,
  OUT ev_data text, OUT ev_extra1 text, OUT ev_extra2 text, OUT ev_extra3 text, OUT ev_extra4 text)
RETURNS SETOF record
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
BEGIN
  b := @schema@._batch(x_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RAISE EXCEPTION 'batch not found';
  END IF;
  RETURN QUERY
    SELECT e.ev_id, e.ev_time, e.ev_txid::text::bigint, e.ev_retry, e.ev_type, e.ev_data,
           e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4
      FROM @schema@._window_events((b.q).queue_id, (b.sub).sub_id, b.s1, b.s2) e;
END
$$;

CREATE FUNCTION @schema@.get_batch_cursor(i_batch_id bigint, i_cursor_name text, i_quick_limit integer,
  i_extra_where text,
  OUT ev_id bigint, OUT ev_time timestamptz, OUT ev_txid bigint, OUT ev_retry integer, OUT ev_type text,
  OUT ev_data text, OUT ev_extra1 text, OUT ev_extra2 text, OUT ev_extra3 text, OUT ev_extra4 text)
RETURNS SETOF record
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b   record;
  cur refcursor := i_cursor_name;
  n   integer := 0;
BEGIN
  b := @schema@._batch(i_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RAISE EXCEPTION 'batch not found';
  END IF;
  -- The cursor stays open for the rest of the transaction: FETCH the remainder from it.
  OPEN cur FOR EXECUTE format(
    'SELECT e.ev_id, e.ev_time, e.ev_txid::text::bigint, e.ev_retry, e.ev_type, e.ev_data,
            e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4
       FROM @schema@._window_events($1, $2, $3, $4) e %s',
    CASE WHEN coalesce(i_extra_where, '') <> '' THEN 'WHERE ' || i_extra_where ELSE '' END)
    USING (b.q).queue_id, (b.sub).sub_id, b.s1, b.s2;
  LOOP
    EXIT WHEN i_quick_limit IS NOT NULL AND n >= i_quick_limit;
    FETCH cur INTO ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4;
    EXIT WHEN NOT FOUND;
    n := n + 1;
    RETURN NEXT;
  END LOOP;
END
$$;

CREATE FUNCTION @schema@.get_batch_cursor(i_batch_id bigint, i_cursor_name text, i_quick_limit integer,
  OUT ev_id bigint, OUT ev_time timestamptz, OUT ev_txid bigint, OUT ev_retry integer, OUT ev_type text,
  OUT ev_data text, OUT ev_extra1 text, OUT ev_extra2 text, OUT ev_extra3 text, OUT ev_extra4 text)
RETURNS SETOF record
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT * FROM @schema@.get_batch_cursor(i_batch_id, i_cursor_name, i_quick_limit, NULL)
$$;

-- Retries and dead letters ----------------------------------------------------

-- Internal: schedules one event of a batch for redelivery to its subscription
-- (a cooperative group as a whole). 1 = scheduled, 0 = already scheduled.
CREATE FUNCTION @schema@._schedule_retry(sub @schema@.subscription, e @schema@.event_template, i_at timestamptz)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO @schema@.retry_queue (ev_retry_after, ev_queue, ev_id, ev_time, ev_txid, ev_owner, ev_retry,
                                    ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
  VALUES (i_at, sub.sub_queue, e.ev_id, e.ev_time, e.ev_txid, sub.sub_id, coalesce(e.ev_retry, 0) + 1,
          e.ev_type, e.ev_data, e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4)
  ON CONFLICT (ev_owner, ev_id) DO NOTHING;
  RETURN CASE WHEN FOUND THEN 1 ELSE 0 END;
END
$$;

-- Internal: records a dead letter (idempotent per queue, consumer and event).
CREATE FUNCTION @schema@._dead(sub @schema@.subscription, e @schema@.event_template, i_reason text)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO @schema@.dead_letter (dl_queue_id, dl_consumer_id, dl_reason, ev_id, ev_time, ev_txid, ev_retry,
                                    ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
  VALUES (sub.sub_queue, @schema@._dl_owner(sub), coalesce(i_reason, 'max retries exceeded'), e.ev_id, e.ev_time,
          e.ev_txid, e.ev_retry, e.ev_type, e.ev_data, e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4)
  ON CONFLICT (dl_queue_id, dl_consumer_id, ev_id) DO NOTHING;
  RETURN 1;
END
$$;

-- Internal: nack of one event of an active batch (retry, or dead letter at max_retries).
CREATE FUNCTION @schema@._nack_event(sub @schema@.subscription, i_max_retries int4, e @schema@.event_template,
                                     i_retry_after interval, i_reason text)
RETURNS integer
LANGUAGE plpgsql AS $$
BEGIN
  IF coalesce(e.ev_retry, 0) < coalesce(i_max_retries, 5) THEN
    PERFORM @schema@._schedule_retry(sub, e,
      now() + make_interval(secs => round(extract(epoch FROM coalesce(i_retry_after, '60 seconds'::interval)))));
  ELSE
    PERFORM @schema@._dead(sub, e, i_reason);
  END IF;
  RETURN 1;
END
$$;

CREATE FUNCTION @schema@.nack(i_batch_id bigint, i_msg @schema@.message, i_retry_after interval DEFAULT '00:01:00',
                              i_reason text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
  e @schema@.event_template;
BEGIN
  b := @schema@._batch(i_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RAISE EXCEPTION 'batch not found: %', i_batch_id;
  END IF;
  IF (i_msg).msg_id IS NOT NULL THEN
    SELECT * INTO e FROM @schema@._window_events((b.q).queue_id, (b.sub).sub_id, b.s1, b.s2, 1, (i_msg).msg_id);
  END IF;
  IF e.ev_id IS NULL THEN
    RAISE EXCEPTION 'msg_id % not found in batch %', coalesce((i_msg).msg_id::text, '<NULL>'), i_batch_id;
  END IF;
  RETURN @schema@._nack_event(b.sub, (b.q).queue_max_retries, e, i_retry_after, i_reason);
END
$$;

CREATE FUNCTION @schema@.event_retry(x_batch_id bigint, x_event_id bigint, x_retry_time timestamptz) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
  e @schema@.event_template;
BEGIN
  b := @schema@._batch(x_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RAISE EXCEPTION 'batch not found: %', x_batch_id;
  END IF;
  SELECT * INTO e FROM @schema@._window_events((b.q).queue_id, (b.sub).sub_id, b.s1, b.s2, 1, x_event_id);
  IF e.ev_id IS NULL THEN
    RAISE EXCEPTION 'event not found';
  END IF;
  RETURN @schema@._schedule_retry(b.sub, e, x_retry_time);
END
$$;

CREATE FUNCTION @schema@.event_retry(x_batch_id bigint, x_event_id bigint, x_retry_seconds integer) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.event_retry(x_batch_id, x_event_id, now() + make_interval(secs => x_retry_seconds))
$$;

CREATE FUNCTION @schema@.batch_retry(i_batch_id bigint, i_retry_seconds integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
  e @schema@.event_template;
  n integer := 0;
BEGIN
  b := @schema@._batch(i_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RAISE EXCEPTION 'batch_retry: batch % not found', i_batch_id;
  END IF;
  FOR e IN SELECT * FROM @schema@._window_events((b.q).queue_id, (b.sub).sub_id, b.s1, b.s2) LOOP
    n := n + @schema@._schedule_retry(b.sub, e, now() + make_interval(secs => i_retry_seconds));
  END LOOP;
  RETURN n;
END
$$;

CREATE FUNCTION @schema@.event_dead(i_batch_id bigint, i_event_id bigint, i_reason text, i_ev_time timestamptz,
  i_ev_txid xid8, i_ev_retry integer, i_ev_type text, i_ev_data text, i_ev_extra1 text DEFAULT NULL,
  i_ev_extra2 text DEFAULT NULL, i_ev_extra3 text DEFAULT NULL, i_ev_extra4 text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
  e @schema@.event_template;
BEGIN
  b := @schema@._batch(i_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RAISE EXCEPTION 'batch not found: %', i_batch_id;
  END IF;
  e := ROW(i_event_id, i_ev_time, i_ev_txid, NULL, i_ev_retry, i_ev_type, i_ev_data,
           i_ev_extra1, i_ev_extra2, i_ev_extra3, i_ev_extra4)::@schema@.event_template;
  RETURN @schema@._dead(b.sub, e, i_reason);
END
$$;

SELECT @schema@._apply_grants();
