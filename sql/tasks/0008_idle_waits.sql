-- pgferry tasks engine, migration 8: idle() waits for an insert in progress.
--
-- A worker going to sleep calls idle() (sets queues.waiting), then looks at
-- the queue once more. idle() needs the queue's wait lock exclusively: an
-- insert holds it shared from its wake-up trigger until it commits, and it
-- decided whether to notify before idle() set the flag (the lost-wake-up
-- race of migration 1). Until now idle() gave up at once when an insert
-- held it and told the worker to look again in 3 ms: at ~200 jobs/s about
-- one job in a hundred waited those 3-4 ms (the tail of enqueue -> start
-- latency). Most inserts commit well within a millisecond of their trigger,
-- so idle() now waits for the lock for up to 3 ms; the worker's look after
-- it then sees the job. An insert still in progress after that (a long
-- business transaction) gets the old answer: look again in a moment.
--
-- While idle() waits, new inserts into the same queue wait behind it (the
-- lock queue is fair): at most those 3 ms, and only while a transaction
-- that inserted into the queue stays open.

CREATE OR REPLACE FUNCTION @schema@.idle(queue_name text)
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  nxt timestamptz;
  slot timestamptz;
  visible boolean;
  ctl record;
  lt text;
BEGIN
  SELECT q.paused, q.rate_period_ms INTO ctl FROM @schema@.queues q WHERE q.queue_name = idle.queue_name;
  IF ctl.paused THEN
    RETURN NULL;
  END IF;
  IF NOT pg_try_advisory_xact_lock(@schema@._wait_key(queue_name)) THEN
    -- An insert is in progress: wait a little for its commit (a
    -- subtransaction, on this path only).
    lt := current_setting('lock_timeout');
    BEGIN
      PERFORM set_config('lock_timeout', '3ms', true);
      PERFORM pg_advisory_xact_lock(@schema@._wait_key(queue_name));
      PERFORM set_config('lock_timeout', lt, true);
    EXCEPTION WHEN lock_not_available THEN
      -- Still in progress; it may not have seen us: look again in a moment
      -- rather than sleep through its job.
      RETURN clock_timestamp() + interval '1 millisecond';
    END;
  END IF;
  UPDATE @schema@.queues q SET waiting = true WHERE q.queue_name = idle.queue_name AND NOT q.waiting;
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
