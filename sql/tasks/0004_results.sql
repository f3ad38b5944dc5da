-- pgferry tasks engine: progress, stored results, flows, completion inside
-- the caller's transaction, and a job's per-attempt history.
--
--   * job_results: a finished job's outcome, kept in its own table so it
--     stays readable after the job's archive row is pruned (prune_results
--     deletes it after its own retention). A completed job gets a row only
--     when its handler returned a value; a dead or cancelled job always
--     (with its error), so "did it die?" outlives the archive too.
--   * progress(): a running job's latest progress, in its row's headers
--     (x-pgferry-progress, x-pgferry-progress-at), so the archive keeps the
--     last value.
--   * flows: a parent job held (vt far in the future) until its last child
--     finishes. Every way a child leaves its queue (complete_results,
--     dead_letter, cancel, bulk_cancel, bulk_delete) calls _child_finished,
--     which decrements the parent's counter under the flows row's lock: of
--     two children finishing at once, exactly one sees zero and releases
--     the parent.
--   * retry() and dead_letter() append the attempt to x-pgferry-history
--     (the last 25 failed attempts: attempt, started, finished, outcome,
--     error with stack); the final successful attempt is the row itself.
--
-- Header names added: x-pgferry-progress, x-pgferry-progress-at,
-- x-pgferry-history, x-pgferry-flow (on a parent), x-pgferry-parent (on a
-- child).

CREATE TABLE @schema@.job_results (
  queue_name text NOT NULL,
  msg_id bigint NOT NULL,
  state text NOT NULL CHECK (state IN ('completed', 'dead', 'cancelled')),
  result jsonb,
  error jsonb,
  finished_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (queue_name, msg_id)
);
CREATE INDEX job_results_finished_at ON @schema@.job_results (queue_name, finished_at);

CREATE TABLE @schema@.flows (
  parent_queue text NOT NULL,
  parent_id bigint NOT NULL,
  on_child_failure text NOT NULL CHECK (on_child_failure IN ('fail', 'continue')),
  -- Children not finished yet.
  pending integer NOT NULL,
  -- Children that died or were cancelled.
  failed integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  PRIMARY KEY (parent_queue, parent_id)
);

CREATE TABLE @schema@.flow_children (
  child_queue text NOT NULL,
  child_id bigint NOT NULL,
  parent_queue text NOT NULL,
  parent_id bigint NOT NULL,
  position integer NOT NULL,
  -- NULL until the child finished: completed, dead or cancelled.
  state text,
  PRIMARY KEY (child_queue, child_id),
  FOREIGN KEY (parent_queue, parent_id) REFERENCES @schema@.flows (parent_queue, parent_id) ON DELETE CASCADE
);
CREATE INDEX flow_children_parent ON @schema@.flow_children (parent_queue, parent_id, position);

-- A held flow parent's visibility time: it runs when its last child releases it.
CREATE FUNCTION @schema@._held_until()
RETURNS timestamptz LANGUAGE sql IMMUTABLE AS $$
  SELECT '9999-12-31 00:00:00+00'::timestamptz;
$$;
REVOKE ALL ON FUNCTION @schema@._held_until() FROM PUBLIC;

-- The history array with `entry` appended, keeping the last 25 entries.
CREATE FUNCTION @schema@._history_push(history jsonb, entry jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT jsonb_agg(e ORDER BY o)
    FROM (SELECT e, o
            FROM jsonb_array_elements(
                   CASE WHEN jsonb_typeof(history) = 'array' THEN history ELSE '[]'::jsonb END
                   || jsonb_build_array(entry)) WITH ORDINALITY AS x(e, o)
           ORDER BY o DESC LIMIT 25) s;
$$;
REVOKE ALL ON FUNCTION @schema@._history_push(jsonb, jsonb) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Progress
-- ---------------------------------------------------------------------------
-- Stores a running job's progress (any JSON value), fenced by read_ct: a
-- worker that lost the job cannot write it. Returns whether it was stored.
CREATE FUNCTION @schema@.progress(queue_name text, msg_id bigint, read_ct integer, value jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  EXECUTE format($f$UPDATE %s SET headers = COALESCE(headers, '{}'::jsonb)
                     || jsonb_build_object('x-pgferry-progress', $3::jsonb, 'x-pgferry-progress-at', clock_timestamp())
                   WHERE msg_id = $1 AND read_ct = $2$f$, @schema@._q(queue_name))
    USING msg_id, read_ct, value;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.progress(text, bigint, integer, jsonb) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Flows
-- ---------------------------------------------------------------------------
-- A child left its queue (outcome completed, dead or cancelled). The flows
-- row is the lock that serialises the parent's children: the UPDATE waits
-- for a concurrent child's and then reads its committed counter, so exactly
-- one child sees pending = 0. Policy 'fail': the first failed child
-- dead-letters the parent at once (ChildJobFailedError); 'continue': the
-- parent runs when every child has finished, however they ended.
CREATE FUNCTION @schema@._child_finished(child_queue text, child_id bigint, outcome text, error jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  c record;
  f record;
  rc integer;
BEGIN
  UPDATE @schema@.flow_children fc SET state = outcome
   WHERE fc.child_queue = _child_finished.child_queue AND fc.child_id = _child_finished.child_id
     AND fc.state IS NULL
  RETURNING fc.parent_queue, fc.parent_id INTO c;
  IF c.parent_id IS NULL THEN
    RETURN;
  END IF;
  UPDATE @schema@.flows fl
     SET pending = fl.pending - 1, failed = fl.failed + (outcome <> 'completed')::integer
   WHERE fl.parent_queue = c.parent_queue AND fl.parent_id = c.parent_id
  RETURNING fl.pending, fl.failed, fl.on_child_failure INTO f;
  IF f.pending IS NULL THEN
    RETURN;
  END IF;
  IF outcome <> 'completed' AND f.on_child_failure = 'fail' THEN
    IF f.failed = 1 THEN
      EXECUTE format('SELECT read_ct FROM %s WHERE msg_id = $1 FOR UPDATE', @schema@._q(c.parent_queue))
        INTO rc USING c.parent_id;
      IF rc IS NOT NULL THEN
        PERFORM @schema@.dead_letter(c.parent_queue, c.parent_id, rc, jsonb_build_object(
          'class', 'ChildJobFailedError', 'name', 'ChildJobFailedError',
          'message', format('child job %s of task "%s" %s', child_id, child_queue,
                            CASE outcome WHEN 'dead' THEN 'died' ELSE 'was cancelled' END),
          'stack', NULL,
          'child', jsonb_build_object('task', child_queue, 'id', child_id, 'state', outcome, 'error', error)));
      END IF;
    END IF;
  ELSIF f.pending = 0 AND (f.failed = 0 OR f.on_child_failure = 'continue') THEN
    EXECUTE format('UPDATE %s SET vt = clock_timestamp() WHERE msg_id = $1 AND read_ct = 0 AND vt = @schema@._held_until()',
                   @schema@._q(c.parent_queue))
      USING c.parent_id;
    -- The release is an UPDATE, which the insert trigger does not see.
    PERFORM pg_notify('@schema_name@_wake', c.parent_queue);
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._child_finished(text, bigint, text, jsonb) FROM PUBLIC;

-- Jobs (ids with their headers) left the queue `queue_name` with `outcome`:
-- counts the flow children among them, in parent order, so two transactions
-- holding children of the same parents lock the parents' flows rows in the
-- same order (no deadlock).
CREATE FUNCTION @schema@._children_finished(queue_name text, ids bigint[], hdrs jsonb[], outcome text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  child bigint;
BEGIN
  FOR child IN SELECT u.id FROM unnest(ids, hdrs) AS u(id, h)
                WHERE u.h ? 'x-pgferry-parent'
                ORDER BY u.h -> 'x-pgferry-parent' ->> 'task', (u.h -> 'x-pgferry-parent' ->> 'id')::bigint
  LOOP
    PERFORM @schema@._child_finished(queue_name, child, outcome, NULL);
  END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._children_finished(text, bigint[], jsonb[], text) FROM PUBLIC;

-- Enqueues a parent and its children in one statement. children: a JSON
-- array of { "queue": text, "input": json, "headers": object?, "run_at":
-- timestamptz?, "delay_ms": number? }. The parent is held until its last
-- child finishes, then runs with its children's results
-- (flow_child_results). Idempotency keys are refused (a deduplicated child
-- would belong to another flow). Returns the parent (position 0) and the
-- children (1…n).
CREATE FUNCTION @schema@.enqueue_flow(
  parent_queue text, parent_input jsonb, parent_headers jsonb, children jsonb,
  on_child_failure text DEFAULT 'fail')
RETURNS TABLE (queue_name text, msg_id bigint, "position" integer) LANGUAGE plpgsql AS $$
DECLARE
  pid bigint;
  cid bigint;
  ch jsonb;
  i integer := 0;
BEGIN
  IF on_child_failure IS NULL OR on_child_failure NOT IN ('fail', 'continue') THEN
    RAISE EXCEPTION 'enqueue_flow: on_child_failure must be ''fail'' or ''continue'', got %',
      coalesce(quote_literal(on_child_failure), 'NULL') USING ERRCODE = 'PF301';
  END IF;
  IF jsonb_typeof(children) IS DISTINCT FROM 'array' OR jsonb_array_length(children) = 0 THEN
    RAISE EXCEPTION 'enqueue_flow: children must be a non-empty JSON array' USING ERRCODE = 'PF301';
  END IF;
  IF parent_headers ? 'x-pgferry-idempotency-key' THEN
    RAISE EXCEPTION 'enqueue_flow: a flow''s jobs cannot have idempotency keys' USING ERRCODE = 'PF301';
  END IF;
  SELECT e.msg_id INTO pid
    FROM @schema@.enqueue(parent_queue, parent_input,
           COALESCE(parent_headers, '{}'::jsonb)
           || jsonb_build_object('x-pgferry-flow', jsonb_build_object('onChildFailure', on_child_failure)),
           @schema@._held_until()) e;
  INSERT INTO @schema@.flows (parent_queue, parent_id, on_child_failure, pending)
  VALUES (parent_queue, pid, on_child_failure, jsonb_array_length(children));
  queue_name := parent_queue; msg_id := pid; "position" := 0;
  RETURN NEXT;
  FOR ch IN SELECT value FROM jsonb_array_elements(children) LOOP
    i := i + 1;
    IF jsonb_typeof(ch) IS DISTINCT FROM 'object' OR jsonb_typeof(ch -> 'queue') IS DISTINCT FROM 'string'
       OR NOT ch ? 'input' THEN
      RAISE EXCEPTION 'enqueue_flow: children[%] must be { "queue", "input", "headers"?, "run_at"?, "delay_ms"? }', i - 1
        USING ERRCODE = 'PF301';
    END IF;
    IF ch -> 'headers' ? 'x-pgferry-idempotency-key' THEN
      RAISE EXCEPTION 'enqueue_flow: a flow''s jobs cannot have idempotency keys' USING ERRCODE = 'PF301';
    END IF;
    SELECT e.msg_id INTO cid
      FROM @schema@.enqueue(ch ->> 'queue', ch -> 'input',
             COALESCE(ch -> 'headers', '{}'::jsonb)
             || jsonb_build_object('x-pgferry-parent', jsonb_build_object('task', parent_queue, 'id', pid)),
             COALESCE((ch ->> 'run_at')::timestamptz,
                      clock_timestamp() + make_interval(secs => (ch ->> 'delay_ms')::float8 / 1000))) e;
    INSERT INTO @schema@.flow_children (child_queue, child_id, parent_queue, parent_id, position)
    VALUES (ch ->> 'queue', cid, parent_queue, pid, i);
    queue_name := ch ->> 'queue'; msg_id := cid; "position" := i;
    RETURN NEXT;
  END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.enqueue_flow(text, jsonb, jsonb, jsonb, text) FROM PUBLIC;

-- A parent's children, in the order they were given, with how each ended
-- (state NULL: not finished), its stored result and its error.
CREATE FUNCTION @schema@.flow_child_results(parent_queue text, parent_id bigint)
RETURNS TABLE (child_queue text, child_id bigint, state text, result jsonb, error jsonb)
LANGUAGE sql STABLE AS $$
  SELECT fc.child_queue, fc.child_id, fc.state, r.result, r.error
    FROM @schema@.flow_children fc
    LEFT JOIN @schema@.job_results r ON r.queue_name = fc.child_queue AND r.msg_id = fc.child_id
   WHERE fc.parent_queue = flow_child_results.parent_queue AND fc.parent_id = flow_child_results.parent_id
   ORDER BY fc.position;
$$;
REVOKE ALL ON FUNCTION @schema@.flow_child_results(text, bigint) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Completion with results (and flow children)
-- ---------------------------------------------------------------------------
-- complete() plus: results[i] (NULL: none) stored in job_results in the same
-- transaction, and flow children counted towards their parents. The worker
-- calls this only for a batch holding a result or a flow child (plain
-- batches keep using complete()); a handler's ctx.complete(tx) calls it on
-- the handler's own transaction. Fenced by read_ct like complete().
CREATE FUNCTION @schema@.complete_results(
  queue_name text, msg_ids bigint[], read_cts integer[], results jsonb[], archive boolean DEFAULT true,
  async_commit boolean DEFAULT false, notify boolean DEFAULT false)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  ids bigint[];
  hdrs jsonb[];
  ress jsonb[];
BEGIN
  IF async_commit THEN
    PERFORM set_config('synchronous_commit', 'off', true);
  END IF;
  IF notify THEN
    PERFORM pg_notify('@schema_name@_wake', queue_name);
  END IF;
  EXECUTE format(
    'WITH moved AS (
       DELETE FROM %s m USING unnest($1::bigint[], $2::integer[], $3::jsonb[]) AS d(id, rc, res)
        WHERE m.msg_id = ANY($1) AND m.msg_id = d.id AND m.read_ct = d.rc
       RETURNING m.msg_id, m.vt, m.read_ct, m.enqueued_at, m.last_read_at, m.message, m.headers, d.res),
     kept AS (
       INSERT INTO %s (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
       SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM moved WHERE $4)
     SELECT array_agg(msg_id), array_agg(headers), array_agg(res) FROM moved',
    @schema@._q(queue_name), @schema@._q(queue_name, 'a'))
    INTO ids, hdrs, ress USING msg_ids, read_cts, results, archive;
  IF ids IS NULL THEN
    RETURN;
  END IF;
  INSERT INTO @schema@.job_results AS jr (queue_name, msg_id, state, result)
  SELECT complete_results.queue_name, u.id, 'completed', u.res FROM unnest(ids, ress) AS u(id, res)
   WHERE u.res IS NOT NULL
  ON CONFLICT ON CONSTRAINT job_results_pkey DO UPDATE
    SET state = 'completed', result = excluded.result, error = NULL, finished_at = excluded.finished_at;
  PERFORM @schema@._children_finished(queue_name, ids, hdrs, 'completed');
  RETURN QUERY SELECT unnest(ids);
END;
$$;
REVOKE ALL ON FUNCTION @schema@.complete_results(text, bigint[], integer[], jsonb[], boolean, boolean, boolean) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Retry, dead letter, cancel: as in migration 1, plus history, results and
-- flow children
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@.retry(queue_name text, msg_id bigint, read_ct integer, delay_ms integer, error jsonb)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  EXECUTE format($f$UPDATE %s SET vt = clock_timestamp() + make_interval(secs => $3 / 1000.0),
                     last_read_at = NULL,
                     headers = COALESCE(headers, '{}'::jsonb) || jsonb_build_object(
                       'x-pgferry-last-error', $4::jsonb,
                       'x-pgferry-history', @schema@._history_push(headers -> 'x-pgferry-history', jsonb_build_object(
                         'attempt', read_ct, 'startedAt', last_read_at, 'finishedAt', clock_timestamp(),
                         'outcome', 'retry', 'error', $4::jsonb)))
                   WHERE msg_id = $1 AND read_ct = $2$f$, @schema@._q(queue_name))
    USING msg_id, read_ct, delay_ms, error;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.dead_letter(queue_name text, msg_id bigint, read_ct integer, error jsonb)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  arc regclass := @schema@._q(queue_name, 'a');
  dlq regclass := @schema@._q(queue_name || '_dlq');
  r record;
  dead_id bigint;
  hist jsonb;
BEGIN
  EXECUTE format('DELETE FROM %s WHERE msg_id = $1 AND read_ct = $2 RETURNING *', rel)
    INTO r USING msg_id, read_ct;
  IF r.msg_id IS NULL THEN
    RETURN NULL;
  END IF;
  -- A flow parent failed by its child never ran: no attempt to record.
  hist := CASE WHEN r.read_ct = 0 THEN r.headers -> 'x-pgferry-history'
               ELSE @schema@._history_push(r.headers -> 'x-pgferry-history', jsonb_build_object(
                      'attempt', r.read_ct, 'startedAt', r.last_read_at, 'finishedAt', clock_timestamp(),
                      'outcome', 'dead', 'error', error)) END;
  EXECUTE format($f$INSERT INTO %s (vt, message, headers) VALUES (clock_timestamp(), $1,
      (COALESCE($2, '{}'::jsonb) - 'x-pgferry-last-error' - 'x-pgferry-idempotency-key' - 'x-pgferry-history')
      || jsonb_build_object(
        'x-pgferry-state', 'dead',
        'x-pgferry-error', $3::jsonb,
        'x-pgferry-attempts', $4,
        'x-pgferry-failed-at', clock_timestamp(),
        'x-pgferry-original-queue', $5,
        'x-pgferry-original-msg-id', $6,
        'x-pgferry-original-enqueued-at', $7)
        || CASE WHEN $2 ? 'x-pgferry-idempotency-key'
                THEN jsonb_build_object('x-pgferry-original-idempotency-key', $2 -> 'x-pgferry-idempotency-key')
                ELSE '{}'::jsonb END)
      RETURNING msg_id$f$, dlq)
    INTO dead_id USING r.message, r.headers, error, r.read_ct, queue_name, r.msg_id, r.enqueued_at;
  EXECUTE format($f$INSERT INTO %s (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
                   VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, '{}'::jsonb) || jsonb_build_object(
                     'x-pgferry-state', 'dead', 'x-pgferry-dead-letter-id', $8, 'x-pgferry-error', $9::jsonb)
                     || CASE WHEN $10::jsonb IS NULL THEN '{}'::jsonb
                             ELSE jsonb_build_object('x-pgferry-history', $10::jsonb) END)$f$, arc)
    USING r.msg_id, r.vt, r.read_ct, r.enqueued_at, r.last_read_at, r.message, r.headers, dead_id, error, hist;
  INSERT INTO @schema@.job_results AS jr (queue_name, msg_id, state, error)
  VALUES (dead_letter.queue_name, r.msg_id, 'dead', error)
  ON CONFLICT ON CONSTRAINT job_results_pkey DO UPDATE
    SET state = 'dead', result = NULL, error = excluded.error, finished_at = excluded.finished_at;
  IF r.headers ? 'x-pgferry-parent' THEN
    PERFORM @schema@._child_finished(queue_name, r.msg_id, 'dead', error);
  END IF;
  RETURN dead_id;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.cancel(queue_name text, msg_id bigint)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r record;
  was text;
BEGIN
  EXECUTE format('DELETE FROM %s WHERE msg_id = $1 RETURNING *', @schema@._q(queue_name))
    INTO r USING msg_id;
  IF r.msg_id IS NULL THEN
    RETURN 'not_found';
  END IF;
  was := CASE WHEN r.last_read_at IS NOT NULL AND r.vt > clock_timestamp() THEN 'running' ELSE 'queued' END;
  EXECUTE format($f$INSERT INTO %s (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
                   VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, '{}'::jsonb) || jsonb_build_object(
                     'x-pgferry-state', 'cancelled', 'x-pgferry-cancelled-at', clock_timestamp()))$f$,
                 @schema@._q(queue_name, 'a'))
    USING r.msg_id, r.vt, r.read_ct, r.enqueued_at, r.last_read_at, r.message, r.headers;
  INSERT INTO @schema@.job_results AS jr (queue_name, msg_id, state)
  VALUES (cancel.queue_name, r.msg_id, 'cancelled')
  ON CONFLICT ON CONSTRAINT job_results_pkey DO UPDATE
    SET state = 'cancelled', result = NULL, error = NULL, finished_at = excluded.finished_at;
  IF r.headers ? 'x-pgferry-parent' THEN
    PERFORM @schema@._child_finished(queue_name, r.msg_id, 'cancelled', NULL);
  END IF;
  IF was = 'running' THEN
    PERFORM pg_notify('@schema_name@_cancel', queue_name || ':' || r.msg_id);
  END IF;
  RETURN was;
END;
$$;

-- ---------------------------------------------------------------------------
-- bulk_cancel, bulk_delete (migration 3), plus: flow children among the jobs
-- count towards their parents (cancelled), and bulk-cancelled jobs get
-- their 'cancelled' outcome in job_results as cancel() gives them.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@.bulk_cancel(
  queue_name text, states text[] DEFAULT '{queued,scheduled,retrying}', body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  running bigint[];
  gone_ids bigint[];
  gone_hdrs jsonb[];
BEGIN
  PERFORM @schema@._check_states('bulk_cancel', states, '{queued,scheduled,running,retrying}');
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
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bulk_delete(
  queue_name text, states text[], body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint := 0;
  m bigint := 0;
  running bigint[] := '{}';
  gone_ids bigint[];
  gone_hdrs jsonb[];
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
    EXECUTE format($f$DELETE FROM %s m
         WHERE @schema@.ops_job_state(true, m.last_read_at, m.vt, m.read_ct, m.headers) = ANY($3)
           AND ($1::jsonb IS NULL OR m.message @> $1) AND ($2::jsonb IS NULL OR m.headers @> $2)$f$,
      @schema@._q(queue_name, 'a')) USING body, hdrs, states;
    GET DIAGNOSTICS m = ROW_COUNT;
  END IF;
  PERFORM pg_notify('@schema_name@_cancel', queue_name || ':' || r) FROM unnest(running) r;
  RETURN n + m;
END;
$$;

-- ---------------------------------------------------------------------------
-- Reading a job's outcome
-- ---------------------------------------------------------------------------
-- Where a job is and how it ended: state as ops_job_state (queued,
-- scheduled, running, retrying, completed, dead, cancelled) or 'unknown'
-- (never existed, or its archive row and result were pruned), the stored
-- result, the error (the last attempt's while it waits for a retry) and the
-- latest progress.
CREATE FUNCTION @schema@.job_result(queue_name text, msg_id bigint)
RETURNS TABLE (state text, result jsonb, error jsonb, progress jsonb) LANGUAGE plpgsql STABLE AS $$
DECLARE
  r record;
  jr record;
BEGIN
  EXECUTE format('SELECT last_read_at, vt, read_ct, headers FROM %s WHERE msg_id = $1', @schema@._q(queue_name))
    INTO r USING msg_id;
  IF r.read_ct IS NOT NULL THEN
    state := @schema@.ops_job_state(false, r.last_read_at, r.vt, r.read_ct, r.headers);
    error := r.headers -> 'x-pgferry-last-error';
    progress := r.headers -> 'x-pgferry-progress';
    RETURN NEXT;
    RETURN;
  END IF;
  SELECT j.state, j.result, j.error INTO jr FROM @schema@.job_results j
   WHERE j.queue_name = job_result.queue_name AND j.msg_id = job_result.msg_id;
  EXECUTE format('SELECT last_read_at, vt, read_ct, headers FROM %s WHERE msg_id = $1', @schema@._q(queue_name, 'a'))
    INTO r USING msg_id;
  state := COALESCE(jr.state,
                    CASE WHEN r.read_ct IS NOT NULL
                         THEN @schema@.ops_job_state(true, r.last_read_at, r.vt, r.read_ct, r.headers) END,
                    'unknown');
  result := jr.result;
  error := COALESCE(jr.error, r.headers -> 'x-pgferry-error');
  progress := r.headers -> 'x-pgferry-progress';
  RETURN NEXT;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.job_result(text, bigint) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Pruning
-- ---------------------------------------------------------------------------
-- Deletes at most batch_size results of the queue finished before now -
-- retention, and the bookkeeping of its flows older than that whose parent
-- has left the queue. Returns how many results were deleted.
CREATE FUNCTION @schema@.prune_results(queue_name text, retention interval, batch_size integer DEFAULT 1000)
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
                   WHERE f.parent_queue = $1 AND f.created_at < clock_timestamp() - $2
                     AND NOT EXISTS (SELECT 1 FROM %s q WHERE q.msg_id = f.parent_id)', @schema@._q(queue_name))
    USING queue_name, retention;
  RETURN n;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.prune_results(text, interval, integer) FROM PUBLIC;
