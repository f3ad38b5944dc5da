-- pgferry tasks engine, migration 3: read-only functions for operations
-- (dashboard, /metrics, CLI). src/ops calls these instead of reading the
-- tasks registry and the task queues' tables itself. All are STABLE, write
-- nothing (safe on a replica) and run with the caller's rights; EXECUTE is
-- revoked from PUBLIC (job payloads and task names are application data).
-- docs/operations.md shows what to grant a monitoring role.

-- The registered tasks with their ordering options.
CREATE FUNCTION @schema@.ops_tasks()
RETURNS TABLE (queue_name text, grouped boolean, by_priority boolean)
LANGUAGE sql STABLE AS $$
  SELECT q.queue_name, q.grouped, q.by_priority FROM @schema@.queues q ORDER BY q.queue_name;
$$;
REVOKE ALL ON FUNCTION @schema@.ops_tasks() FROM PUBLIC;

-- The cron schedules and the last occurrence each fired (or skipped).
CREATE FUNCTION @schema@.ops_schedules()
RETURNS TABLE (name text, queue_name text, pattern text, timezone text, last_occurrence timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT s.name, s.queue_name, s.pattern, s.timezone, s.last_occurrence
    FROM @schema@.schedules s ORDER BY s.name;
$$;
REVOKE ALL ON FUNCTION @schema@.ops_schedules() FROM PUBLIC;

-- A job's state, as TaskClient.getJob derives it: a live row is running
-- while leased (last_read_at set, vt in the future), else scheduled (never
-- read) or retrying (read before) while vt is in the future, else queued; an
-- archived row by the x-pgferry-state header the engine writes when it
-- finishes a job (dead, cancelled, else completed).
CREATE FUNCTION @schema@.ops_job_state(
  archived boolean, last_read_at timestamptz, vt timestamptz, read_ct integer, headers jsonb)
RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE
    WHEN archived THEN CASE headers->>'x-pgferry-state' WHEN 'dead' THEN 'dead'
                                                        WHEN 'cancelled' THEN 'cancelled'
                                                        ELSE 'completed' END
    WHEN last_read_at IS NOT NULL AND vt > clock_timestamp() THEN 'running'
    WHEN vt > clock_timestamp() THEN CASE WHEN read_ct > 0 THEN 'retrying' ELSE 'scheduled' END
    ELSE 'queued' END;
$$;
REVOKE ALL ON FUNCTION @schema@.ops_job_state(boolean, timestamptz, timestamptz, integer, jsonb) FROM PUBLIC;

-- Jobs of a task, live and archived, by state, id, payload field and header
-- (jsonb containment), in msg_id order, at most max_rows (1..1000). Reads
-- only: no read count moves, nothing is locked.
CREATE FUNCTION @schema@.ops_browse_jobs(
  task text, job_state text DEFAULT NULL, after_id bigint DEFAULT 0, only_id bigint DEFAULT NULL,
  body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL, max_rows integer DEFAULT 50)
RETURNS TABLE (
  msg_id bigint, read_ct integer, enqueued_at timestamptz, last_read_at timestamptz,
  vt timestamptz, message jsonb, headers jsonb, archived_at timestamptz, state text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  live boolean := job_state IS NULL OR job_state IN ('queued', 'scheduled', 'running', 'retrying');
  parts text[] := '{}';
  filter text := 'msg_id > $1 AND ($2::bigint IS NULL OR msg_id = $2)
    AND ($3::jsonb IS NULL OR message @> $3) AND ($4::jsonb IS NULL OR headers @> $4)';
BEGIN
  IF max_rows IS NULL OR max_rows < 1 OR max_rows > 1000 THEN
    RAISE EXCEPTION 'ops_browse_jobs: max_rows must be from 1 to 1000, got %', max_rows
      USING ERRCODE = 'PF301';
  END IF;
  IF job_state IS NOT NULL
     AND job_state NOT IN ('queued', 'scheduled', 'running', 'retrying', 'completed', 'cancelled', 'dead') THEN
    RAISE EXCEPTION 'ops_browse_jobs: unknown job state %', job_state USING ERRCODE = 'PF301';
  END IF;
  IF live THEN
    parts := parts || format(
      'SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers, NULL::timestamptz AS archived_at,
              @schema@.ops_job_state(false, last_read_at, vt, read_ct, headers) AS state
         FROM %s WHERE %s', @schema@._q(task, 'q'), filter);
  END IF;
  IF job_state IS NULL OR NOT live THEN
    parts := parts || format(
      'SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers, archived_at,
              @schema@.ops_job_state(true, last_read_at, vt, read_ct, headers) AS state
         FROM %s WHERE %s', @schema@._q(task, 'a'), filter);
  END IF;
  RETURN QUERY EXECUTE format(
    'SELECT * FROM (%s) j WHERE $5::text IS NULL OR j.state = $5 ORDER BY j.msg_id LIMIT $6',
    array_to_string(parts, ' UNION ALL '))
    USING coalesce(after_id, 0), only_id, body, hdrs, job_state, max_rows;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.ops_browse_jobs(text, text, bigint, bigint, jsonb, jsonb, integer) FROM PUBLIC;
