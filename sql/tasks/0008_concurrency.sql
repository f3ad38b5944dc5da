-- pgferry tasks engine, migration 8: concurrency fixes. No lost wake-up when inserts and
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
--   * bulk_retry() of retrying jobs and hand_back() make jobs runnable at
--     once with an UPDATE, which the insert trigger does not see: a sleeping
--     worker kept its alarm (the old retry time, or the lease the job was
--     handed back from) and ran them only at its poll interval. Both now
--     NOTIFY when they changed a job.
--   * bulk_cancel() and bulk_delete() lock the jobs they remove in the order
--     of their scan (the table's physical order); a worker's complete(),
--     extend() or hand_back() of several jobs locks them through the primary
--     key, in msg_id order, once the queue is large enough for that plan. A
--     job whose lease was renewed sits physically after later jobs, so the
--     two could each hold a job the other waited for: a deadlock, and one of
--     them failed (test/tasks/bulk-lock-order.test.ts). No single lock order
--     suits every plan of the worker's hot path, so the bulk operations now
--     never wait long while holding jobs: they run with lock_timeout 20 ms
--     (far below any deadlock_timeout in use) inside a subtransaction, and
--     when a lock is not granted in time they undo their work, which frees
--     every job they held, pause a few ms and start again. The worker's
--     statement is then never part of a cycle. After 25 such tries (a job
--     held long, by a handler's own transaction) the operation stops
--     redoing its work and waits for its locks like any statement (bounded
--     by statement_timeout; a deadlock then fails it with 40P01).
-- Otherwise as migrations 1, 3, 5 and 7 (CREATE OR REPLACE keeps grants).

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

CREATE OR REPLACE FUNCTION @schema@.hand_back(queue_name text, msg_ids bigint[], read_cts integer[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'UPDATE %s m SET vt = clock_timestamp(), last_read_at = NULL, read_ct = m.read_ct - 1
       FROM unnest($1::bigint[], $2::integer[]) AS d(id, rc)
      WHERE m.msg_id = ANY($1) AND m.msg_id = d.id AND m.read_ct = d.rc
     RETURNING m.msg_id', @schema@._q(queue_name))
    USING msg_ids, read_cts;
  IF FOUND THEN
    PERFORM pg_notify('@schema_name@_wake', queue_name); -- an UPDATE: the insert trigger does not see it
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bulk_retry(
  queue_name text, states text[] DEFAULT '{dead,retrying}', body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint := 0;
  m bigint := 0;
  dead bigint[];
BEGIN
  PERFORM @schema@._check_states('bulk_retry', states, '{dead,retrying}');
  IF 'retrying' = ANY(states) THEN
    EXECUTE format($f$UPDATE %s SET vt = clock_timestamp()
                       WHERE @schema@.ops_job_state(false, last_read_at, vt, read_ct, headers) = 'retrying'
                         AND ($1::jsonb IS NULL OR message @> $1) AND ($2::jsonb IS NULL OR headers @> $2)$f$,
                   @schema@._q(queue_name)) USING body, hdrs;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n > 0 THEN
      PERFORM pg_notify('@schema_name@_wake', queue_name); -- an UPDATE: the insert trigger does not see it
    END IF;
  END IF;
  IF 'dead' = ANY(states) THEN
    EXECUTE format($f$SELECT coalesce(array_agg(msg_id), '{}') FROM %s
                       WHERE ($1::jsonb IS NULL OR message @> $1) AND ($2::jsonb IS NULL OR headers @> $2)$f$,
                   @schema@._q(queue_name || '_dlq')) INTO dead USING body, hdrs;
    IF cardinality(dead) > 0 THEN
      SELECT count(*) INTO m FROM @schema@.reschedule_dead(queue_name, dead);
    END IF;
  END IF;
  RETURN n + m;
END;
$$;

-- bulk_cancel(), bulk_delete(): as in migration 7, retried whole when a lock
-- is not granted within lock_timeout (see the header). The function's SET
-- clause applies to everything it calls and ends with it.
CREATE OR REPLACE FUNCTION @schema@.bulk_cancel(
  queue_name text, states text[] DEFAULT '{queued,scheduled,retrying}', body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET lock_timeout = '20ms' AS $$
DECLARE
  n bigint;
  running bigint[];
  gone_ids bigint[];
  gone_hdrs jsonb[];
  tries integer := 0;
BEGIN
  PERFORM @schema@._check_states('bulk_cancel', states, '{queued,scheduled,running,retrying}');
  LOOP
    BEGIN
      PERFORM @schema@._lock_flow_parents(queue_name, states, body, hdrs);
      EXECUTE format($f$WITH gone AS (
            DELETE FROM %1$s m
             WHERE @schema@.ops_job_state(false, m.last_read_at, m.vt, m.read_ct, m.headers) = ANY($3)
               AND ($1::jsonb IS NULL OR m.message @> $1) AND ($2::jsonb IS NULL OR m.headers @> $2)
            RETURNING m.*, @schema@.ops_job_state(false, m.last_read_at, m.vt, m.read_ct, m.headers) AS was),
          moved AS (
            INSERT INTO %2$s (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
            SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, COALESCE(headers, '{}'::jsonb)
                   || jsonb_build_object('x-pgferry-state', 'cancelled', 'x-pgferry-cancelled-at', clock_timestamp())
              FROM gone)
          SELECT count(*), coalesce(array_agg(msg_id) FILTER (WHERE was = 'running'), '{}'),
                 coalesce(array_agg(msg_id), '{}'), coalesce(array_agg(headers), '{}') FROM gone$f$,
        @schema@._q(queue_name), @schema@._q(queue_name, 'a'))
        INTO n, running, gone_ids, gone_hdrs USING body, hdrs, states;
      INSERT INTO @schema@.job_results AS jr (queue_name, msg_id, state)
      SELECT bulk_cancel.queue_name, u.id, 'cancelled' FROM unnest(gone_ids) AS u(id)
      ON CONFLICT ON CONSTRAINT job_results_pkey DO UPDATE
        SET state = 'cancelled', result = NULL, error = NULL, finished_at = excluded.finished_at;
      PERFORM @schema@._children_finished(queue_name, gone_ids, gone_hdrs, 'cancelled');
      PERFORM pg_notify('@schema_name@_cancel', queue_name || ':' || r) FROM unnest(running) r;
      RETURN n;
    EXCEPTION WHEN lock_not_available THEN
      tries := tries + 1;
      IF tries >= 25 THEN
        -- A job held for long (a handler's own transaction): stop redoing
        -- the whole statement and wait for it like any other statement
        -- (bounded by statement_timeout; a deadlock then is 40P01).
        PERFORM set_config('lock_timeout', '0', true);
      ELSE
        PERFORM pg_sleep(0.002 + random() * 0.008);
      END IF;
    END;
  END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bulk_delete(
  queue_name text, states text[], body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql SET lock_timeout = '20ms' AS $$
DECLARE
  n bigint;
  m bigint;
  running bigint[];
  gone_ids bigint[];
  gone_hdrs jsonb[];
  archived_ids bigint[];
  tries integer := 0;
BEGIN
  PERFORM @schema@._check_states('bulk_delete', states,
    '{queued,scheduled,running,retrying,completed,cancelled,dead}');
  LOOP
    BEGIN
      n := 0; m := 0; running := '{}'; gone_ids := '{}'; gone_hdrs := NULL; archived_ids := '{}';
      IF states && '{queued,scheduled,running,retrying}'::text[] THEN
        PERFORM @schema@._lock_flow_parents(queue_name, states, body, hdrs);
        EXECUTE format($f$WITH gone AS (
              DELETE FROM %s m
               WHERE @schema@.ops_job_state(false, m.last_read_at, m.vt, m.read_ct, m.headers) = ANY($3)
                 AND ($1::jsonb IS NULL OR m.message @> $1) AND ($2::jsonb IS NULL OR m.headers @> $2)
              RETURNING m.msg_id, m.headers, @schema@.ops_job_state(false, m.last_read_at, m.vt, m.read_ct, m.headers) AS was)
            SELECT count(*), coalesce(array_agg(msg_id) FILTER (WHERE was = 'running'), '{}'),
                   coalesce(array_agg(msg_id), '{}'), coalesce(array_agg(headers), '{}') FROM gone$f$,
          @schema@._q(queue_name)) INTO n, running, gone_ids, gone_hdrs USING body, hdrs, states;
        -- A deleted child never completes: it counts as cancelled for its parent.
        PERFORM @schema@._children_finished(queue_name, gone_ids, gone_hdrs, 'cancelled');
      END IF;
      IF states && '{completed,cancelled,dead}'::text[] THEN
        EXECUTE format($f$WITH gone AS (
              DELETE FROM %s m
               WHERE @schema@.ops_job_state(true, m.last_read_at, m.vt, m.read_ct, m.headers) = ANY($3)
                 AND ($1::jsonb IS NULL OR m.message @> $1) AND ($2::jsonb IS NULL OR m.headers @> $2)
              RETURNING m.msg_id)
            SELECT count(*), coalesce(array_agg(msg_id), '{}') FROM gone$f$,
          @schema@._q(queue_name, 'a')) INTO m, archived_ids USING body, hdrs, states;
      END IF;
      DELETE FROM @schema@.job_results j
       WHERE j.queue_name = bulk_delete.queue_name AND j.msg_id = ANY(gone_ids || archived_ids);
      PERFORM pg_notify('@schema_name@_cancel', queue_name || ':' || r) FROM unnest(running) r;
      RETURN n + m;
    EXCEPTION WHEN lock_not_available THEN
      tries := tries + 1;
      IF tries >= 25 THEN
        -- A job held for long (a handler's own transaction): stop redoing
        -- the whole statement and wait for it like any other statement
        -- (bounded by statement_timeout; a deadlock then is 40P01).
        PERFORM set_config('lock_timeout', '0', true);
      ELSE
        PERFORM pg_sleep(0.002 + random() * 0.008);
      END IF;
    END;
  END LOOP;
END;
$$;
