-- pgferry tasks engine, migration 7: flows kept whole by the paths that
-- bypassed them (review of migrations 4 and 5).
--
--   * A flow parent requeued from its dead-letter queue saw no children:
--     flow_child_results() looked its children up by the new job's id.
--     reschedule_dead() now records the flow's original parent id in the new
--     job's x-pgferry-flow header ({ onChildFailure, parentId }), and
--     flow_child_results() follows a job's requeue lineage (_flow_root():
--     that parentId, else x-pgferry-rescheduled-from-msg-id through the
--     archive, for jobs requeued before this migration).
--   * One lock order for a flow: its flows row before its parent's queue
--     row. A dying child under 'fail' locks the flows row, then the parent's
--     queue row (to dead-letter it); bulk_cancel() and
--     bulk_delete() took the parent's queue row (their DELETE) before the
--     flows row (counting a child of the same parent among their jobs): a
--     deadlock. They now lock the flows rows of the flow parents they are
--     about to remove first, in parent-id order.

-- ---------------------------------------------------------------------------
-- Requeue lineage of a flow parent
-- ---------------------------------------------------------------------------
-- The id under which the flow of job `parent_id` of `parent_queue` is
-- recorded: parent_id itself, or the id of the job it was requeued from (at
-- most 100 requeues back). parent_id when the job is no flow parent.
CREATE FUNCTION @schema@._flow_root(parent_queue text, parent_id bigint)
RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE
  id bigint := parent_id;
  h jsonb;
  prev bigint;
BEGIN
  FOR step IN 1..100 LOOP
    IF EXISTS (SELECT 1 FROM @schema@.flows f
                WHERE f.parent_queue = _flow_root.parent_queue AND f.parent_id = id) THEN
      RETURN id;
    END IF;
    h := NULL;
    EXECUTE format('SELECT headers FROM %s WHERE msg_id = $1', @schema@._q(parent_queue)) INTO h USING id;
    IF h IS NULL THEN
      EXECUTE format('SELECT headers FROM %s WHERE msg_id = $1', @schema@._q(parent_queue, 'a')) INTO h USING id;
    END IF;
    IF NOT coalesce(h ? 'x-pgferry-flow', false) THEN
      RETURN parent_id;
    END IF;
    prev := COALESCE((h -> 'x-pgferry-flow' ->> 'parentId')::bigint,
                     (h ->> 'x-pgferry-rescheduled-from-msg-id')::bigint);
    IF prev IS NULL OR prev = id THEN
      RETURN parent_id;
    END IF;
    id := prev;
  END LOOP;
  RETURN parent_id;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._flow_root(text, bigint) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @schema@.flow_child_results(parent_queue text, parent_id bigint)
RETURNS TABLE (child_queue text, child_id bigint, state text, result jsonb, error jsonb)
LANGUAGE sql STABLE AS $$
  SELECT fc.child_queue, fc.child_id, fc.state, r.result, r.error
    FROM @schema@.flow_children fc
    LEFT JOIN @schema@.job_results r ON r.queue_name = fc.child_queue AND r.msg_id = fc.child_id
   WHERE fc.parent_queue = flow_child_results.parent_queue
     AND fc.parent_id = @schema@._flow_root(flow_child_results.parent_queue, flow_child_results.parent_id)
   ORDER BY fc.position;
$$;

-- As in migration 1 (renamed _reschedule_dead_rows), plus: a flow parent's
-- new job carries the flow's original parent id (x-pgferry-flow.parentId),
-- so its children are found however often it is requeued and whatever
-- archive rows were pruned.
ALTER FUNCTION @schema@.reschedule_dead(text, bigint[], text) RENAME TO _reschedule_dead_rows;
CREATE FUNCTION @schema@.reschedule_dead(queue_name text, msg_ids bigint[] DEFAULT NULL, error_name text DEFAULT NULL)
RETURNS TABLE (dead_id bigint, new_id bigint) LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  FOR r IN SELECT * FROM @schema@._reschedule_dead_rows(queue_name, msg_ids, error_name) LOOP
    -- x-pgferry-rescheduled-from-msg-id: the id the dead letter's job had.
    EXECUTE format($f$UPDATE %s SET headers = headers || jsonb_build_object('x-pgferry-flow',
                       (headers -> 'x-pgferry-flow') || jsonb_build_object('parentId',
                         COALESCE(headers -> 'x-pgferry-flow' -> 'parentId', headers -> 'x-pgferry-rescheduled-from-msg-id')))
                     WHERE msg_id = $1 AND jsonb_typeof(headers -> 'x-pgferry-flow') = 'object'
                       AND jsonb_typeof(headers -> 'x-pgferry-rescheduled-from-msg-id') = 'number'$f$,
                   @schema@._q(queue_name)) USING r.new_id;
    dead_id := r.dead_id;
    new_id := r.new_id;
    RETURN NEXT;
  END LOOP;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._reschedule_dead_rows(text, bigint[], text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.reschedule_dead(text, bigint[], text) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- One lock order: a flow's flows row before its parent's queue row
-- ---------------------------------------------------------------------------
-- Locks, in parent-id order, the flows rows of the held flow parents of
-- `queue_name` that a bulk operation with this filter is about to remove.
-- (A requeued parent's flow is recorded under its first id and its children
-- have all counted, or its first failure already dead-lettered it: nothing
-- will lock its queue row from the flows side.)
CREATE FUNCTION @schema@._lock_flow_parents(queue_name text, states text[], body jsonb, hdrs jsonb)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format($f$SELECT 1 FROM @schema@.flows f
      WHERE f.parent_queue = $4 AND f.parent_id IN (
        SELECT m.msg_id FROM %s m
         WHERE m.headers ? 'x-pgferry-flow'
           AND @schema@.ops_job_state(false, m.last_read_at, m.vt, m.read_ct, m.headers) = ANY($3)
           AND ($1::jsonb IS NULL OR m.message @> $1) AND ($2::jsonb IS NULL OR m.headers @> $2))
      ORDER BY f.parent_id FOR UPDATE OF f$f$, @schema@._q(queue_name))
    USING body, hdrs, states, queue_name;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._lock_flow_parents(text, text[], jsonb, jsonb) FROM PUBLIC;

-- bulk_cancel(), bulk_delete(): as in migrations 4 and 5, plus the flows
-- rows of the flow parents among their jobs locked first. (A single
-- cancel() of a parent locks no flows row: a transaction that also counts
-- one of its children, cancel(child) after cancel(parent), takes its own
-- locks in that order.)
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
END;
$$;

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
END;
$$;
