-- Stream engine migration 4: cooperative consumers (subconsumers).
-- The group's main row (coop_main) carries the group cursor; each member row
-- (coop_member, consumer '<c>.<s>', same sub_id) carries its active batch and
-- that batch's window (sub_last_tick .. sub_next_tick). Allocation locks the
-- main row, so members of one group take windows one after another.

CREATE FUNCTION @schema@._coop_names(i_queue text, i_consumer text, i_subconsumer text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF coalesce(i_queue, '') = '' THEN
    RAISE EXCEPTION 'queue name must not be empty';
  END IF;
  IF coalesce(i_consumer, '') = '' THEN
    RAISE EXCEPTION 'consumer name must not be empty';
  END IF;
  IF coalesce(i_subconsumer, '') = '' THEN
    RAISE EXCEPTION 'subconsumer name must not be empty';
  END IF;
  IF strpos(i_consumer, '.') > 0 THEN
    RAISE EXCEPTION 'cooperative consumer name must not contain dot: %', i_consumer;
  END IF;
  IF strpos(i_subconsumer, '.') > 0 THEN
    RAISE EXCEPTION 'cooperative subconsumer name must not contain dot: %', i_subconsumer;
  END IF;
END
$$;

CREATE FUNCTION @schema@.register_subconsumer(i_queue text, i_consumer text, i_subconsumer text,
                                              i_convert_normal boolean DEFAULT false) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q       @schema@.queue;
  main    @schema@.subscription;
  cid     int4;
  mid     int4;
  created integer := 0;
  inserted boolean;
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
    UPDATE @schema@.subscription SET sub_role = 'coop_main'
     WHERE sub_queue = q.queue_id AND sub_consumer = cid;
    created := 1;
  ELSIF main.sub_role = 'coop_member' THEN
    RAISE EXCEPTION 'cooperative consumer name must not contain dot: %', i_consumer;
  END IF;
  INSERT INTO @schema@.consumer (co_name) VALUES (i_consumer || '.' || i_subconsumer) ON CONFLICT (co_name) DO NOTHING;
  SELECT co_id INTO mid FROM @schema@.consumer WHERE co_name = i_consumer || '.' || i_subconsumer;
  INSERT INTO @schema@.subscription AS s (sub_id, sub_queue, sub_consumer, sub_last_tick, sub_role)
  VALUES (main.sub_id, q.queue_id, mid, main.sub_last_tick, 'coop_member')
  ON CONFLICT (sub_queue, sub_consumer) DO UPDATE SET sub_active = now()
  -- xmax = 0 on the returned row means it was inserted, not updated.
  RETURNING (s.xmax = 0) INTO inserted;
  RETURN CASE WHEN created = 1 OR inserted THEN 1 ELSE 0 END;
END
$$;

CREATE FUNCTION @schema@.subscribe_subconsumer(i_queue text, i_consumer text, i_subconsumer text,
                                               i_convert_normal boolean DEFAULT false) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.register_subconsumer(i_queue, i_consumer, i_subconsumer, i_convert_normal)
$$;

-- Internal: the member's batch: its active one, a stale member's one taken
-- over (new batch id), or the group's next window (the group cursor advances
-- at once so the next member gets the following window).
CREATE FUNCTION @schema@._coop_batch(i_queue text, i_consumer text, i_subconsumer text, i_dead_interval interval,
  i_min_lag interval, i_min_count integer, i_min_interval interval,
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
       AND s.sub_batch IS NOT NULL AND s.sub_active < now() - i_dead_interval
     ORDER BY s.sub_active LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
      UPDATE @schema@.subscription s SET sub_batch = NULL, sub_next_tick = NULL
       WHERE s.sub_queue = q.queue_id AND s.sub_consumer = stale.sub_consumer;
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

CREATE FUNCTION @schema@.receive_coop(i_queue text, i_consumer text, i_subconsumer text,
                                      i_max_return integer DEFAULT 100, i_dead_interval interval DEFAULT NULL)
RETURNS SETOF @schema@.message
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b  record;
  s1 pg_snapshot;
  s2 pg_snapshot;
BEGIN
  IF i_max_return IS NULL OR i_max_return < 1 THEN
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

CREATE FUNCTION @schema@.next_batch(i_queue text, i_consumer text, i_subconsumer text,
                                    i_dead_interval interval DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM @schema@._coop_names(i_queue, i_consumer, i_subconsumer);
  IF NOT EXISTS (SELECT 1 FROM @schema@.queue WHERE queue_name = i_queue) THEN
    RAISE EXCEPTION 'Event queue not created yet';
  END IF;
  RETURN (@schema@._coop_batch(i_queue, i_consumer, i_subconsumer, i_dead_interval, NULL, NULL, NULL)).batch_id;
END
$$;

CREATE FUNCTION @schema@.next_batch_custom(i_queue text, i_consumer text, i_subconsumer text, i_min_lag interval,
  i_min_count integer, i_min_interval interval, i_dead_interval interval DEFAULT NULL,
  OUT batch_id bigint, OUT prev_tick_id bigint, OUT next_tick_id bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
BEGIN
  PERFORM @schema@._coop_names(i_queue, i_consumer, i_subconsumer);
  IF NOT EXISTS (SELECT 1 FROM @schema@.queue WHERE queue_name = i_queue) THEN
    RAISE EXCEPTION 'Event queue not created yet';
  END IF;
  b := @schema@._coop_batch(i_queue, i_consumer, i_subconsumer, i_dead_interval, i_min_lag, i_min_count,
                            i_min_interval);
  batch_id := b.batch_id;
  prev_tick_id := b.prev_tick_id;
  next_tick_id := b.next_tick_id;
END
$$;

CREATE FUNCTION @schema@.touch_subconsumer(i_queue text, i_consumer text, i_subconsumer text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE @schema@.subscription s SET sub_active = now()
    FROM @schema@.queue q, @schema@.consumer c
   WHERE q.queue_name = i_queue AND s.sub_queue = q.queue_id AND c.co_id = s.sub_consumer
     AND c.co_name = i_consumer || '.' || i_subconsumer AND s.sub_role = 'coop_member';
  RETURN CASE WHEN FOUND THEN 1 ELSE 0 END;
END
$$;

CREATE FUNCTION @schema@.unregister_subconsumer(i_queue text, i_consumer text, i_subconsumer text,
                                                i_batch_handling integer DEFAULT 0) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q   @schema@.queue;
  mem @schema@.subscription;
  b   record;
  e   @schema@.event_template;
BEGIN
  PERFORM @schema@._coop_names(i_queue, i_consumer, i_subconsumer);
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
    ELSIF i_batch_handling <> 1 THEN
      RAISE EXCEPTION 'unsupported batch_handling value: %', i_batch_handling;
    END IF;
    b := @schema@._batch(mem.sub_batch);
    FOR e IN SELECT * FROM @schema@._window_events(q.queue_id, mem.sub_id, b.s1, b.s2) LOOP
      PERFORM @schema@._nack_event(mem, q.queue_max_retries, e, '60 seconds', 'subconsumer unregistered');
    END LOOP;
  ELSIF coalesce(i_batch_handling, 0) NOT IN (0, 1) THEN
    RAISE EXCEPTION 'unsupported batch_handling value: %', i_batch_handling;
  END IF;
  RETURN @schema@._unsubscribe(q, i_consumer || '.' || i_subconsumer, true);
END
$$;

CREATE FUNCTION @schema@.unsubscribe_subconsumer(i_queue text, i_consumer text, i_subconsumer text,
                                                 i_batch_handling integer DEFAULT 0) RETURNS integer
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.unregister_subconsumer(i_queue, i_consumer, i_subconsumer, i_batch_handling)
$$;

SELECT @schema@._apply_grants();
