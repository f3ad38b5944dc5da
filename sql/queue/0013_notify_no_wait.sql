-- pgferry queue engine, migration 13: insert and delete notifications never
-- make a sender wait for another transaction.
--
-- _notify_listeners (migration 6) UPDATEd the queue's throttle row in the
-- sending transaction and so held it until that transaction ended: a send
-- waited for every open transaction that had sent to the same queue (with
-- interval 0 always, with an interval whenever the row looked due), and two
-- transactions sending to two notifying queues in opposite orders
-- deadlocked (40P01). test/queue/notify-throttle-locks.test.ts replays both.
--
-- Now the row is read first; only when a notification is due is it locked,
-- with SKIP LOCKED. When another transaction holds it (it is notifying, and
-- may still roll back and take its NOTIFY with it), this one notifies too:
-- an extra notification is harmless and happens only while senders overlap
-- at the moment one is due. A throttled send still writes nothing. One
-- clock reading decides both whether a notification is due and whether the
-- row may be taken, and a taken row always notifies. Outside READ COMMITTED
-- the sender notifies without touching the row (its snapshot may predate
-- another sender's update, and locking the row would fail with 40001). The
-- row lost in crash recovery is restored as in migration 6, by one sender at
-- a time (a try advisory lock; the others notify).

CREATE OR REPLACE FUNCTION @schema@._notify_listeners(
  queue_name text, event text, throttle regclass)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  channel text := '@schema_name@.q_' || queue_name || '.' || event;
  -- A valid custom GUC name per channel, local to the transaction.
  flag text := 'pgferry.notified_' || md5(channel);
  due boolean;
  n integer := 0;
BEGIN
  IF current_setting(flag, true) = '1' THEN
    RETURN;  -- this transaction already notifies on this channel
  END IF;
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    PERFORM pg_notify(channel, NULL);
    PERFORM set_config(flag, '1', true);
    RETURN;
  END IF;
  -- One statement, one clock reading ($2): whether a notification is due
  -- (NULL: no row), and the row taken when it is and no other transaction
  -- holds it.
  EXECUTE format(
    'WITH cur AS (
       SELECT (t.throttle_interval_ms = 0
               OR $2 - t.last_notified_at >= make_interval(secs => t.throttle_interval_ms / 1000.0)) AS due
         FROM %1$s t WHERE t.queue_name = $1),
     taken AS (
       UPDATE %1$s t SET last_notified_at = $2
        WHERE t.ctid = (SELECT x.ctid FROM %1$s x
                         WHERE x.queue_name = $1
                           AND (x.throttle_interval_ms = 0
                                OR $2 - x.last_notified_at >= make_interval(secs => x.throttle_interval_ms / 1000.0))
                           FOR UPDATE SKIP LOCKED)
       RETURNING 1)
     SELECT (SELECT cur.due FROM cur), (SELECT count(*) FROM taken)::integer', throttle)
    INTO due, n USING queue_name, clock_timestamp();
  IF due OR n > 0 THEN
    -- Taken, or held by a transaction that is notifying: notify too.
    n := 1;
  ELSIF due IS NULL AND current_setting(flag || '_seen', true) IS DISTINCT FROM '1' THEN
    -- The row was lost in crash recovery: the trigger exists, so
    -- notifications are enabled; restore it (once per transaction and
    -- channel, one sender at a time: another one restoring it notifies).
    PERFORM set_config(flag || '_seen', '1', true);
    IF pg_try_advisory_xact_lock(hashtextextended('pgferry.notify_restore.' || throttle::text || '.' || queue_name, 0)) THEN
      EXECUTE format(
        'INSERT INTO %s (queue_name, throttle_interval_ms, last_notified_at)
         SELECT $1, COALESCE(
                  (SELECT s.throttle_interval_ms FROM @schema@._notify_setting s
                    WHERE s.queue_name = $1 AND s.event = $2), 250),
                clock_timestamp()
          WHERE EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = $1)
         ON CONFLICT (queue_name) DO NOTHING', throttle)
        USING queue_name, lower(event);
      GET DIAGNOSTICS n = ROW_COUNT;
    ELSE
      n := 1;
    END IF;
  ELSE
    n := 0; -- throttled
  END IF;
  IF n > 0 THEN
    PERFORM pg_notify(channel, NULL);
    PERFORM set_config(flag, '1', true);
  END IF;
END;
$$;
