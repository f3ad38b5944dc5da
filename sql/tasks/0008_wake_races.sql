-- pgferry tasks engine, migration 8: no lost wake-up when inserts and
-- idle() meet other transactions (test/tasks/wake-race.test.ts replays each).
--
--   * _wake_on_insert skipped the flag row when another transaction held it
--     (SKIP LOCKED), trusting that one to NOTIFY at its commit. That holds
--     only for an insert that commits: one that rolled back took its NOTIFY
--     and its clearing with it, and the flag stayed set with nobody told of
--     the committed job. Neither does pause(), configure_task() or
--     ensure_task() notify, which hold the row too. Now an insert that
--     finds the row held and the flag set NOTIFYs itself (one more NOTIFY,
--     only while inserts overlap at the moment a worker sleeps).
--   * Under REPEATABLE READ (or SERIALIZABLE) the trigger read the flag in
--     the transaction's snapshot: a snapshot taken before a worker's idle()
--     saw no waiter, so the job was never announced; and a flag cleared by
--     another insert after the snapshot made the row lock fail with a
--     serialization error (40001) that rolled back the caller's enqueue. Such
--     an insert now NOTIFYs without reading or locking the flag.
--   * idle() waited for the registry row when a transaction held it (pause,
--     configure_task, ensure_task not yet committed) while it held the
--     exclusive wait lock, so every insert into the task waited too, and an
--     insert in the holding transaction deadlocked with it. Now it does not
--     wait: a worker that cannot set the flag looks again in 25 ms.
-- Otherwise as migrations 1 and 5 (CREATE OR REPLACE keeps grants).

CREATE OR REPLACE FUNCTION @schema@._wake_on_insert()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_advisory_xact_lock_shared(@schema@._wait_key(TG_ARGV[0]));
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    -- The snapshot may predate a worker's idle(): tell it regardless.
    PERFORM pg_notify('@schema_name@_wake', TG_ARGV[0]);
    RETURN NULL;
  END IF;
  PERFORM 1 FROM @schema@.queues q WHERE q.queue_name = TG_ARGV[0] AND q.waiting FOR UPDATE SKIP LOCKED;
  IF FOUND THEN
    UPDATE @schema@.queues q SET waiting = false WHERE q.queue_name = TG_ARGV[0];
    PERFORM pg_notify('@schema_name@_wake', TG_ARGV[0]);
  ELSIF EXISTS (SELECT 1 FROM @schema@.queues q WHERE q.queue_name = TG_ARGV[0] AND q.waiting) THEN
    -- Held by another transaction, which may roll back or not notify at all.
    PERFORM pg_notify('@schema_name@_wake', TG_ARGV[0]);
  END IF;
  RETURN NULL;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.idle(queue_name text)
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  nxt timestamptz;
  slot timestamptz;
  visible boolean;
  ctl record;
BEGIN
  SELECT q.paused, q.rate_period_ms INTO ctl FROM @schema@.queues q WHERE q.queue_name = idle.queue_name;
  IF ctl.paused THEN
    RETURN NULL;
  END IF;
  IF NOT pg_try_advisory_xact_lock(@schema@._wait_key(queue_name)) THEN
    -- An insert is in progress (most take a few ms); it may not have seen
    -- us: look again in a moment rather than sleep through its job.
    RETURN clock_timestamp() + interval '3 milliseconds';
  END IF;
  -- Set the flag without waiting for the row (see the header): a row held
  -- with the flag clear means the flag cannot be set now.
  PERFORM 1 FROM @schema@.queues q WHERE q.queue_name = idle.queue_name AND NOT q.waiting FOR UPDATE SKIP LOCKED;
  IF FOUND THEN
    UPDATE @schema@.queues q SET waiting = true WHERE q.queue_name = idle.queue_name;
  ELSIF EXISTS (SELECT 1 FROM @schema@.queues q WHERE q.queue_name = idle.queue_name AND NOT q.waiting) THEN
    RETURN clock_timestamp() + interval '25 milliseconds';
  END IF;
  EXECUTE format('SELECT min(vt) FROM %s WHERE vt > clock_timestamp()', rel) INTO nxt;
  IF ctl.rate_period_ms IS NOT NULL THEN
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE vt <= clock_timestamp())', rel) INTO visible;
  END IF;
  IF visible THEN
    SELECT min(x) + make_interval(secs => ctl.rate_period_ms / 1000.0) INTO slot
      FROM @schema@.rate_buckets b, unnest(b.starts) x
     WHERE b.queue_name = idle.queue_name
       AND x > clock_timestamp() - make_interval(secs => ctl.rate_period_ms / 1000.0);
    nxt := least(nxt, slot);
  END IF;
  RETURN nxt;
END;
$$;
