-- pgferry tasks engine, migration 5: fixes to migrations 1, 3 and 4 (a
-- review of the runtime controls, results and flows).
--
--   * complete() (the SQL contract other languages' workers call) counts
--     flow children towards their parents, as complete_results() does: a
--     child completed with complete() left its parent held for ever. A
--     batch without flow children costs one primary-key probe of
--     flow_children (about 17 µs, measured), nothing else.
--   * prune() deletes expired unique/debounce keys and idle rate buckets
--     with FOR UPDATE SKIP LOCKED: it waited for row locks in table order
--     while a rate-limited fetch() locks buckets in key order (and a
--     transaction may hold several keys), which deadlocked and rolled back
--     the whole prune round. A key or bucket in use is left to the next round.
--   * bulk_delete() deletes the stored outcomes (job_results) of the jobs it
--     deletes: a job "deleted for good" kept its result readable through
--     job_result() and waitForResult().
--   * prune_results() keeps a flow's bookkeeping until every child has
--     finished (it deadlocked with a child finishing after its parent left).
--   * enqueue_unique() and enqueue_debounced() refuse headers carrying an
--     idempotency key (PF301), as the client does, instead of a bare 23505.
--   * idle() of a rate-limited task returns the time a slot frees only when
--     a job is waiting for it (an idle worker woke once per logged start).
--   * configure_task() refuses a rate limit over 10,000 per period: the
--     sliding-window log holds one timestamp per start, and fetch() reads and
--     rewrites it under the bucket's lock, so a larger log made every fetch
--     slower (a fetch of 100 took 150–400 ms at 100,000 logged starts,
--     measured) and throughput collapsed far below the limit.

-- ---------------------------------------------------------------------------
-- complete(): flow children
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@.complete(
  queue_name text, msg_ids bigint[], read_cts integer[], archive boolean DEFAULT true,
  async_commit boolean DEFAULT false, notify boolean DEFAULT false)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
BEGIN
  -- A flow child among the jobs: complete_results() counts it (the rows of
  -- flow_children of jobs held now are committed, so this check is exact).
  IF EXISTS (SELECT 1 FROM @schema@.flow_children fc
              WHERE fc.child_queue = complete.queue_name AND fc.child_id = ANY(msg_ids) AND fc.state IS NULL) THEN
    RETURN QUERY SELECT * FROM @schema@.complete_results(queue_name, msg_ids, read_cts,
      array_fill(NULL::jsonb, ARRAY[cardinality(msg_ids)]), archive, async_commit, notify);
    RETURN;
  END IF;
  IF async_commit THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  IF notify THEN
    PERFORM pg_notify('@schema_name@_wake', queue_name);
  END IF;
  IF archive THEN
    RETURN QUERY EXECUTE format(
      'WITH moved AS (
         DELETE FROM %s m USING unnest($1::bigint[], $2::integer[]) AS d(id, rc)
          WHERE m.msg_id = ANY($1) AND m.msg_id = d.id AND m.read_ct = d.rc
         RETURNING m.msg_id, m.vt, m.read_ct, m.enqueued_at, m.last_read_at, m.message, m.headers)
       INSERT INTO %s (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
       SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM moved
       RETURNING msg_id', rel, @schema@._q(queue_name, 'a'))
      USING msg_ids, read_cts;
  ELSE
    RETURN QUERY EXECUTE format(
      'DELETE FROM %s m USING unnest($1::bigint[], $2::integer[]) AS d(id, rc)
        WHERE m.msg_id = ANY($1) AND m.msg_id = d.id AND m.read_ct = d.rc RETURNING m.msg_id', rel)
      USING msg_ids, read_cts;
  END IF;
END;
$$;

-- ---------------------------------------------------------------------------
-- prune(): keys and buckets without waiting for their locks
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@.prune(queue_name text, retention interval, batch_size integer DEFAULT 1000)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  m bigint := 0;
  arc regclass := @schema@._q(queue_name, 'a');
  dla regclass := @schema@._q(queue_name || '_dlq', 'a');
BEGIN
  EXECUTE format('DELETE FROM %1$s WHERE msg_id IN (
                    SELECT msg_id FROM %1$s WHERE archived_at < clock_timestamp() - $1
                     ORDER BY archived_at LIMIT $2 FOR UPDATE SKIP LOCKED)', arc)
    USING retention, batch_size;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n < batch_size THEN
    EXECUTE format('DELETE FROM %1$s WHERE msg_id IN (
                      SELECT msg_id FROM %1$s WHERE archived_at < clock_timestamp() - $1
                       ORDER BY archived_at LIMIT $2 FOR UPDATE SKIP LOCKED)', dla)
      USING retention, batch_size - n;
    GET DIAGNOSTICS m = ROW_COUNT;
  END IF;
  -- SKIP LOCKED: a key an enqueue holds, or a bucket a fetch holds, is in
  -- use (the lock re-checks the condition on its latest version anyway).
  DELETE FROM @schema@.job_keys k
   WHERE (k.queue_name, k.kind, k.key) IN (
     SELECT x.queue_name, x.kind, x.key FROM @schema@.job_keys x
      WHERE x.queue_name = prune.queue_name AND x.expires_at <= clock_timestamp()
        FOR UPDATE SKIP LOCKED);
  DELETE FROM @schema@.rate_buckets b
   WHERE (b.queue_name, b.rate_key) IN (
     SELECT x.queue_name, x.rate_key FROM @schema@.rate_buckets x
       JOIN @schema@.queues q ON q.queue_name = x.queue_name
      WHERE x.queue_name = prune.queue_name
        AND (q.rate_period_ms IS NULL OR cardinality(x.starts) = 0
             OR x.starts[cardinality(x.starts)] <= clock_timestamp() - make_interval(secs => q.rate_period_ms / 1000.0))
        FOR UPDATE OF x SKIP LOCKED);
  RETURN n + m;
END;
$$;

-- ---------------------------------------------------------------------------
-- bulk_delete(): the deleted jobs' stored outcomes go too
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@.bulk_delete(
  queue_name text, states text[], body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint := 0;
  m bigint := 0;
  running bigint[] := '{}';
  gone_ids bigint[] := '{}';
  gone_hdrs jsonb[];
  archived_ids bigint[] := '{}';
BEGIN
  PERFORM @schema@._check_states('bulk_delete', states,
    '{queued,scheduled,running,retrying,completed,cancelled,dead}');
  IF states && '{queued,scheduled,running,retrying}'::text[] THEN
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
END;
$$;

-- ---------------------------------------------------------------------------
-- configure_task(): a bounded rate-limit log
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@.configure_task(
  queue_name text, group_concurrency integer DEFAULT 1,
  rate_limit integer DEFAULT NULL, rate_period_ms integer DEFAULT NULL, rate_per_key boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF group_concurrency IS NULL OR group_concurrency < 1 THEN
    RAISE EXCEPTION 'configure_task: group_concurrency must be at least 1, got %', group_concurrency
      USING ERRCODE = 'PF301';
  END IF;
  IF (rate_limit IS NULL) <> (rate_period_ms IS NULL) OR rate_limit < 1 OR rate_period_ms < 1 THEN
    RAISE EXCEPTION 'configure_task: rate_limit and rate_period_ms must both be positive, or both NULL'
      USING ERRCODE = 'PF301';
  END IF;
  IF rate_limit > 10000 THEN
    RAISE EXCEPTION 'configure_task: rate_limit is at most 10000 per period, got % (use a shorter period)', rate_limit
      USING ERRCODE = 'PF301';
  END IF;
  PERFORM @schema@._registered(queue_name);
  UPDATE @schema@.queues q
     SET group_concurrency = configure_task.group_concurrency, rate_limit = configure_task.rate_limit,
         rate_period_ms = configure_task.rate_period_ms, rate_per_key = coalesce(configure_task.rate_per_key, false)
   WHERE q.queue_name = configure_task.queue_name
     AND (q.group_concurrency, q.rate_limit, q.rate_period_ms, q.rate_per_key)
         IS DISTINCT FROM (configure_task.group_concurrency, configure_task.rate_limit,
                           configure_task.rate_period_ms, coalesce(configure_task.rate_per_key, false));
END;
$$;

-- ---------------------------------------------------------------------------
-- prune_results(): a flow's bookkeeping goes once every child has finished
-- ---------------------------------------------------------------------------
-- Migration 4 deleted the flows row of a parent gone from its queue even
-- while a child was finishing: the child's transaction holds its
-- flow_children row and then asks for the flows row, the prune held the
-- flows row and its cascade asked for the flow_children row (a deadlock).
-- Now a flow with a child not finished is kept (a finishing child's update is
-- not committed, so its flow is not picked), and locked rows are skipped.
CREATE OR REPLACE FUNCTION @schema@.prune_results(queue_name text, retention interval, batch_size integer DEFAULT 1000)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  DELETE FROM @schema@.job_results j
   WHERE (j.queue_name, j.msg_id) IN (
     SELECT x.queue_name, x.msg_id FROM @schema@.job_results x
      WHERE x.queue_name = prune_results.queue_name AND x.finished_at < clock_timestamp() - retention
      ORDER BY x.finished_at LIMIT batch_size FOR UPDATE SKIP LOCKED);
  GET DIAGNOSTICS n = ROW_COUNT;
  EXECUTE format('DELETE FROM @schema@.flows f
                   WHERE (f.parent_queue, f.parent_id) IN (
                     SELECT x.parent_queue, x.parent_id FROM @schema@.flows x
                      WHERE x.parent_queue = $1 AND x.created_at < clock_timestamp() - $2
                        AND NOT EXISTS (SELECT 1 FROM %s q WHERE q.msg_id = x.parent_id)
                        AND NOT EXISTS (SELECT 1 FROM @schema@.flow_children c
                                         WHERE c.parent_queue = x.parent_queue AND c.parent_id = x.parent_id
                                           AND c.state IS NULL)
                        FOR UPDATE OF x SKIP LOCKED)', @schema@._q(queue_name))
    USING queue_name, retention;
  RETURN n;
END;
$$;

-- ---------------------------------------------------------------------------
-- enqueue_unique(), enqueue_debounced(): no idempotency key beside the window
-- ---------------------------------------------------------------------------
-- A job with both failed with a bare unique violation (23505) when the
-- idempotency key was taken, after the window's key had been claimed; the
-- client refuses idempotencyKey with unique/debounce, and so does SQL now.
CREATE FUNCTION @schema@._check_no_idempotency_key(fn text, headers jsonb)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF headers ? 'x-pgferry-idempotency-key' THEN
    RAISE EXCEPTION '%: an idempotency key (x-pgferry-idempotency-key) and a unique or debounce key exclude each other', fn
      USING ERRCODE = 'PF301';
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._check_no_idempotency_key(text, jsonb) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @schema@.enqueue_unique(
  queue_name text, input jsonb, unique_key text, window_ms integer,
  headers jsonb DEFAULT NULL, run_at timestamptz DEFAULT NULL)
RETURNS TABLE (msg_id bigint, duplicate boolean) LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  mine boolean;
  id bigint;
BEGIN
  PERFORM @schema@._check_window('enqueue_unique', unique_key, window_ms);
  PERFORM @schema@._check_no_idempotency_key('enqueue_unique', headers);
  INSERT INTO @schema@.job_keys AS k (queue_name, kind, key, msg_id, expires_at)
  VALUES (enqueue_unique.queue_name, 'unique', unique_key, NULL,
          clock_timestamp() + make_interval(secs => window_ms / 1000.0))
  ON CONFLICT ON CONSTRAINT job_keys_pkey DO UPDATE SET msg_id = NULL, expires_at = excluded.expires_at
   WHERE k.expires_at <= clock_timestamp()
  RETURNING true INTO mine;
  IF mine IS NULL THEN
    SELECT k.msg_id INTO id FROM @schema@.job_keys k
     WHERE k.queue_name = enqueue_unique.queue_name AND k.kind = 'unique' AND k.key = unique_key;
    msg_id := id; duplicate := true; RETURN NEXT; RETURN;
  END IF;
  EXECUTE format('INSERT INTO %s (vt, message, headers) VALUES (COALESCE($1, clock_timestamp()), $2, $3) RETURNING msg_id', rel)
    INTO id USING run_at, input, COALESCE(headers, '{}'::jsonb) || jsonb_build_object('x-pgferry-unique-key', unique_key);
  UPDATE @schema@.job_keys k SET msg_id = id
   WHERE k.queue_name = enqueue_unique.queue_name AND k.kind = 'unique' AND k.key = unique_key;
  msg_id := id; duplicate := false; RETURN NEXT;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.enqueue_debounced(
  queue_name text, input jsonb, debounce_key text, window_ms integer, headers jsonb DEFAULT NULL)
RETURNS TABLE (msg_id bigint, duplicate boolean) LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  hdr jsonb := COALESCE(headers, '{}'::jsonb) || jsonb_build_object('x-pgferry-debounce-key', debounce_key);
  win interval := make_interval(secs => window_ms / 1000.0);
  k record;
  id bigint;
BEGIN
  PERFORM @schema@._check_window('enqueue_debounced', debounce_key, window_ms);
  PERFORM @schema@._check_no_idempotency_key('enqueue_debounced', headers);
  LOOP
    INSERT INTO @schema@.job_keys (queue_name, kind, key, msg_id, expires_at)
    VALUES (enqueue_debounced.queue_name, 'debounce', debounce_key, NULL, clock_timestamp())
    ON CONFLICT ON CONSTRAINT job_keys_pkey DO NOTHING;
    SELECT j.msg_id, j.expires_at INTO k FROM @schema@.job_keys j
     WHERE j.queue_name = enqueue_debounced.queue_name AND j.kind = 'debounce' AND j.key = debounce_key
       FOR UPDATE;
    EXIT WHEN FOUND; -- else pruned in between: insert again
  END LOOP;
  IF k.msg_id IS NOT NULL AND k.expires_at > clock_timestamp() THEN
    -- read_ct = 0: never leased (a fetch that holds the row makes us wait, then fails this check).
    EXECUTE format('UPDATE %s SET message = $2, headers = $3, vt = clock_timestamp() + $4
                     WHERE msg_id = $1 AND read_ct = 0 RETURNING msg_id', rel)
      INTO id USING k.msg_id, input, hdr, win;
  END IF;
  duplicate := id IS NOT NULL;
  IF id IS NULL THEN
    EXECUTE format('INSERT INTO %s (vt, message, headers) VALUES (clock_timestamp() + $1, $2, $3) RETURNING msg_id', rel)
      INTO id USING win, input, hdr;
  END IF;
  UPDATE @schema@.job_keys j SET msg_id = id, expires_at = clock_timestamp() + win
   WHERE j.queue_name = enqueue_debounced.queue_name AND j.kind = 'debounce' AND j.key = debounce_key;
  msg_id := id; RETURN NEXT;
END;
$$;

-- ---------------------------------------------------------------------------
-- idle(): a rate-limited task wakes for a freed slot only when jobs wait
-- ---------------------------------------------------------------------------
-- Migration 3 returned the time the oldest logged start leaves the period
-- even with no job to run, so after a busy period an idle worker woke (a
-- fetch and an idle(), each reading the whole log) once for every start of
-- the last period: up to `limit` wake-ups per period for nothing. Now only
-- when a visible job is waiting (one the limit held back); a job inserted or
-- becoming visible later wakes the worker as for any task.
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
