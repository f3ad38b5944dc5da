-- pgferry tasks engine, migration 3: runtime controls of a task queue.
--
--   * pause / resume: queues.paused; a paused task's fetch() returns nothing
--     on every worker, resume() wakes the sleeping ones (channel <schema>_wake);
--   * rate limits: at most rate_limit leases per rate_period_ms, for the
--     whole task or for each rate key (header x-pgferry-rate-key), counted
--     in fetch() from a sliding-window log under the bucket's row lock;
--   * group concurrency: a grouped task runs up to group_concurrency jobs of
--     one group at once (the first N of the group in order);
--   * unique and debounced enqueues over a time window (table job_keys);
--   * bulk operations by filter: retry, cancel, delete.
--
-- The controls live in the registry (queues), written by configure_task()
-- (TaskClient.ensure, which a Worker calls at start) and read by fetch() in
-- the same primary-key lookup that reads `paused`, so any language's fetch
-- gets the same semantics. A task without controls costs fetch() that one
-- lookup and nothing else.
--
-- New headers: x-pgferry-rate-key, x-pgferry-unique-key, x-pgferry-debounce-key.

ALTER TABLE @schema@.queues
  ADD COLUMN paused boolean NOT NULL DEFAULT false,
  ADD COLUMN group_concurrency integer NOT NULL DEFAULT 1 CHECK (group_concurrency >= 1),
  ADD COLUMN rate_limit integer CHECK (rate_limit >= 1),
  ADD COLUMN rate_period_ms integer CHECK (rate_period_ms >= 1),
  ADD COLUMN rate_per_key boolean NOT NULL DEFAULT false,
  ADD CONSTRAINT queues_rate_check CHECK ((rate_limit IS NULL) = (rate_period_ms IS NULL));

-- One row per rate-limited task ('' key) or per rate key: the lease times of
-- the current period, oldest first (a sliding-window log, at most rate_limit
-- entries). fetch() locks the row (FOR UPDATE) while it counts and leases,
-- which serialises the fetchers of one bucket; prune() deletes idle buckets.
CREATE TABLE @schema@.rate_buckets (
  queue_name text NOT NULL,
  rate_key text NOT NULL,
  starts timestamptz[] NOT NULL DEFAULT '{}',
  PRIMARY KEY (queue_name, rate_key)
);

-- Unique and debounce keys with their window: a key is taken until
-- expires_at (the job may be long finished). prune() deletes expired keys.
CREATE TABLE @schema@.job_keys (
  queue_name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('unique', 'debounce')),
  key text NOT NULL,
  msg_id bigint,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (queue_name, kind, key)
);
CREATE INDEX job_keys_expiry ON @schema@.job_keys (queue_name, expires_at);

-- ---------------------------------------------------------------------------
-- Configuration and pause
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@._registered(queue_name text)
RETURNS void LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM @schema@.queues q WHERE q.queue_name = _registered.queue_name) THEN
    RAISE EXCEPTION 'task % is not registered (no worker or client has ensured it yet)',
      coalesce(quote_literal(queue_name), 'NULL') USING ERRCODE = 'PF301';
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._registered(text) FROM PUBLIC;

-- Writes a task's controls (only when they changed, so workers starting
-- with the same definition do not churn the row). The last writer wins.
CREATE FUNCTION @schema@.configure_task(
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
REVOKE ALL ON FUNCTION @schema@.configure_task(text, integer, integer, integer, boolean) FROM PUBLIC;

-- Pauses (paused = true) or resumes a task on every worker; returns false
-- when it was in that state already. Paused: fetch() leases nothing, running
-- jobs finish, and workers hand back leased jobs that have not started (told
-- on channel <schema>_pause). Resumed: sleeping workers are woken (<schema>_wake).
CREATE FUNCTION @schema@._set_paused(queue_name text, paused boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM @schema@._registered(queue_name);
  UPDATE @schema@.queues q SET paused = _set_paused.paused
   WHERE q.queue_name = _set_paused.queue_name AND q.paused <> _set_paused.paused;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM pg_notify(CASE WHEN paused THEN '@schema_name@_pause' ELSE '@schema_name@_wake' END, queue_name);
  RETURN true;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._set_paused(text, boolean) FROM PUBLIC;

CREATE FUNCTION @schema@.pause(queue_name text)
RETURNS boolean LANGUAGE sql AS $$ SELECT @schema@._set_paused(queue_name, true); $$;
REVOKE ALL ON FUNCTION @schema@.pause(text) FROM PUBLIC;

CREATE FUNCTION @schema@.resume(queue_name text)
RETURNS boolean LANGUAGE sql AS $$ SELECT @schema@._set_paused(queue_name, false); $$;
REVOKE ALL ON FUNCTION @schema@.resume(text) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Fetch
-- ---------------------------------------------------------------------------
-- The candidate query of fetch(): $1 = how many. grouped: the first
-- group_n jobs of each group in order (among ALL its jobs, visible or not:
-- jobs in flight, waiting for a retry or scheduled keep their place), of
-- which the visible ones; group_n = 1 is the head of each group. with_key:
-- also select the job's rate key as k and skip the keys in $2 (full buckets).
CREATE FUNCTION @schema@._candidates(
  rel regclass, lifo boolean, grouped boolean, by_priority boolean, group_n integer, rate_key text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
-- PL/pgSQL, not SQL: a SQL function with a FROM clause is not inlined, and
-- running it through the SQL-function executor on every fetch cost ~10 % of
-- the worker's throughput (measured); PL/pgSQL keeps its expressions' plans.
DECLARE
  dir text := CASE WHEN lifo THEN 'DESC' ELSE 'ASC' END;
BEGIN
  RETURN format($f$SELECT msg_id%5$s FROM %1$s WHERE vt <= clock_timestamp()%4$s%6$s
                    ORDER BY %3$s LIMIT $1 FOR UPDATE SKIP LOCKED$f$,
    rel,
    dir,
    CASE WHEN by_priority
         THEN format($o$COALESCE((headers ->> 'x-pgferry-priority')::integer, 0) DESC, msg_id %s$o$, dir)
         ELSE format('msg_id %s', dir) END,
    CASE WHEN NOT grouped THEN ''
         WHEN group_n <= 1 THEN format($g$ AND msg_id IN (
             SELECT DISTINCT ON (COALESCE(headers ->> 'x-pgmq-group', '_default_fifo_group')) msg_id FROM %1$s
              ORDER BY COALESCE(headers ->> 'x-pgmq-group', '_default_fifo_group'), msg_id %2$s)$g$, rel, dir)
         ELSE format($g$ AND msg_id IN (
             SELECT msg_id FROM (SELECT msg_id, row_number() OVER (
                 PARTITION BY COALESCE(headers ->> 'x-pgmq-group', '_default_fifo_group') ORDER BY msg_id %2$s) AS rn
               FROM %1$s) g WHERE g.rn <= %3$s)$g$, rel, dir, group_n) END,
    CASE WHEN rate_key IS NULL THEN '' ELSE format(', %s AS k', rate_key) END,
    CASE WHEN rate_key IS NULL THEN '' ELSE format(' AND %s <> ALL($2)', rate_key) END);
END;
$$;
REVOKE ALL ON FUNCTION @schema@._candidates(regclass, boolean, boolean, boolean, integer, text) FROM PUBLIC;

-- The rate-limited lease: candidates with their rate keys, then the keys'
-- buckets locked in key order (no deadlock between fetchers), each bucket's
-- log trimmed to the period, at most rate_limit - used leased per key, and
-- the lease times appended, all in the fetch's transaction. A key whose
-- bucket is full is skipped in the candidate query, so one busy key does not
-- starve the others. A lease counts as a start (a job handed back by a
-- stopping worker still used its slot).
CREATE FUNCTION @schema@._fetch_rated(
  queue_name text, rel regclass, n integer, lease_ms integer, lifo boolean, grouped boolean,
  by_priority boolean, group_n integer, lim integer, period interval, per_key boolean)
RETURNS SETOF @queue_schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  key_expr text := CASE WHEN per_key THEN $k$COALESCE(headers ->> 'x-pgferry-rate-key', '')$k$ ELSE $k$''$k$ END;
  full_keys text[];
  ids bigint[] := '{}';
  keys text[] := '{}';
  picked bigint[] := '{}';
  picked_keys text[] := '{}';
  budget jsonb := '{}';
  r record;
  k text;
  s timestamptz[];
  left_n integer;
BEGIN
  SELECT coalesce(array_agg(b.rate_key), '{}') INTO full_keys
    FROM @schema@.rate_buckets b
   WHERE b.queue_name = _fetch_rated.queue_name
     AND (SELECT count(*) FROM unnest(b.starts) x WHERE x > clock_timestamp() - period) >= lim;
  FOR r IN EXECUTE @schema@._candidates(rel, lifo, grouped, by_priority, group_n, key_expr)
           USING least(n, CASE WHEN per_key THEN n ELSE lim END), full_keys
  LOOP
    ids := ids || r.msg_id;
    keys := keys || r.k;
  END LOOP;
  IF cardinality(ids) = 0 THEN
    RETURN;
  END IF;
  FOR k IN SELECT DISTINCT u FROM unnest(keys) u ORDER BY u LOOP
    LOOP
      INSERT INTO @schema@.rate_buckets (queue_name, rate_key) VALUES (_fetch_rated.queue_name, k)
      ON CONFLICT ON CONSTRAINT rate_buckets_pkey DO NOTHING;
      SELECT b.starts INTO s FROM @schema@.rate_buckets b
       WHERE b.queue_name = _fetch_rated.queue_name AND b.rate_key = k FOR UPDATE;
      EXIT WHEN FOUND; -- else pruned in between: insert again
    END LOOP;
    left_n := lim - (SELECT count(*) FROM unnest(s) x WHERE x > clock_timestamp() - period);
    budget := budget || jsonb_build_object(k, left_n);
  END LOOP;
  FOR i IN 1 .. cardinality(ids) LOOP
    IF (budget ->> keys[i])::integer > 0 THEN
      picked := picked || ids[i];
      picked_keys := picked_keys || keys[i];
      budget := budget || jsonb_build_object(keys[i], (budget ->> keys[i])::integer - 1);
    END IF;
  END LOOP;
  IF cardinality(picked) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY EXECUTE format(
    'UPDATE %s m
        SET vt = clock_timestamp() + make_interval(secs => $2 / 1000.0),
            read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
      WHERE m.msg_id = ANY($1)
     RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers', rel)
    USING picked, lease_ms;
  -- Logged after the lease, so a logged time is never earlier than the lease.
  UPDATE @schema@.rate_buckets b
     SET starts = ARRAY(SELECT x FROM unnest(b.starts) x WHERE x > clock_timestamp() - period ORDER BY x)
                  || array_fill(clock_timestamp(), ARRAY[c.n])
    FROM (SELECT u AS k, count(*)::integer AS n FROM unnest(picked_keys) u GROUP BY u) c
   WHERE b.queue_name = _fetch_rated.queue_name AND b.rate_key = c.k;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._fetch_rated(text, regclass, integer, integer, boolean, boolean, boolean, integer, integer, interval, boolean) FROM PUBLIC;

-- fetch() of migration 1 plus the controls: a paused task leases nothing;
-- group_concurrency and the rate limit come from the registry row (one
-- primary-key lookup). Without controls the lease statement is the one of
-- migration 1.
CREATE OR REPLACE FUNCTION @schema@.fetch(
  queue_name text, qty integer, lease_ms integer,
  lifo boolean DEFAULT false, grouped boolean DEFAULT false, by_priority boolean DEFAULT false,
  concurrency_limit integer DEFAULT NULL)
RETURNS SETOF @queue_schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  n integer := qty;
  busy integer;
  ctl record;
BEGIN
  IF qty IS NULL OR qty < 0 OR lease_ms IS NULL OR lease_ms < 0 THEN
    RAISE EXCEPTION 'fetch: qty and lease_ms must be non-negative' USING ERRCODE = 'PF301';
  END IF;
  SELECT q.paused, q.group_concurrency, q.rate_limit, q.rate_period_ms, q.rate_per_key INTO ctl
    FROM @schema@.queues q WHERE q.queue_name = $1; -- $1: queue_name ("fetch" is a PL/pgSQL keyword)
  IF ctl.paused THEN
    RETURN;
  END IF;
  IF concurrency_limit IS NOT NULL THEN
    PERFORM pg_advisory_xact_lock(hashtextextended('@schema_name@.limit.' || queue_name, 0));
    EXECUTE format('SELECT count(*) FROM %s WHERE vt > clock_timestamp() AND last_read_at IS NOT NULL', rel) INTO busy;
    n := least(n, concurrency_limit - busy);
  END IF;
  IF n <= 0 THEN
    RETURN;
  END IF;
  IF ctl.rate_limit IS NOT NULL THEN
    RETURN QUERY SELECT * FROM @schema@._fetch_rated(queue_name, rel, n, lease_ms, lifo, grouped, by_priority,
      coalesce(ctl.group_concurrency, 1), ctl.rate_limit, make_interval(secs => ctl.rate_period_ms / 1000.0),
      ctl.rate_per_key);
    RETURN;
  END IF;
  -- `= ANY(ARRAY(…))` rather than a join with the candidates: with a join
  -- the planner hashes the whole queue table (a seq scan per fetch; measured
  -- 9 ms against 2 ms for 500 jobs out of 20,000).
  RETURN QUERY EXECUTE format(
    'UPDATE %1$s m
        SET vt = clock_timestamp() + make_interval(secs => $2 / 1000.0),
            read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
      WHERE m.msg_id = ANY(ARRAY(%2$s))
     RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers',
    rel, @schema@._candidates(rel, lifo, grouped, by_priority, coalesce(ctl.group_concurrency, 1), NULL))
    USING n, lease_ms;
END;
$$;

-- idle() of migration 1, plus: a paused task sleeps until resume() (no
-- waiting flag, so inserts stay quiet), and a rate-limited task wakes when
-- the oldest lease of its log leaves the period (a slot frees).
CREATE OR REPLACE FUNCTION @schema@.idle(queue_name text)
RETURNS timestamptz LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  nxt timestamptz;
  slot timestamptz;
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
    SELECT min(x) + make_interval(secs => ctl.rate_period_ms / 1000.0) INTO slot
      FROM @schema@.rate_buckets b, unnest(b.starts) x
     WHERE b.queue_name = idle.queue_name
       AND x > clock_timestamp() - make_interval(secs => ctl.rate_period_ms / 1000.0);
    nxt := least(nxt, slot);
  END IF;
  RETURN nxt;
END;
$$;

-- ---------------------------------------------------------------------------
-- Unique and debounced enqueues
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@._check_window(fn text, key text, window_ms integer)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF key IS NULL OR key = '' OR window_ms IS NULL OR window_ms < 1 THEN
    RAISE EXCEPTION '%: a non-empty key and a positive window_ms are needed', fn USING ERRCODE = 'PF301';
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._check_window(text, text, integer) FROM PUBLIC;

-- Enqueues unless a job with the same unique key was enqueued in the last
-- window_ms (counted from that first enqueue): then returns that job
-- (duplicate = true), whether it is still queued, running or long finished.
-- Concurrent enqueues of one key wait for each other on the key's row.
CREATE FUNCTION @schema@.enqueue_unique(
  queue_name text, input jsonb, unique_key text, window_ms integer,
  headers jsonb DEFAULT NULL, run_at timestamptz DEFAULT NULL)
RETURNS TABLE (msg_id bigint, duplicate boolean) LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._q(queue_name);
  mine boolean;
  id bigint;
BEGIN
  PERFORM @schema@._check_window('enqueue_unique', unique_key, window_ms);
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
REVOKE ALL ON FUNCTION @schema@.enqueue_unique(text, jsonb, text, integer, jsonb, timestamptz) FROM PUBLIC;

-- Trailing-edge debounce: the job runs window_ms after the last enqueue of
-- its key. An enqueue within the window while the job has not started
-- replaces its input and headers and pushes its run time (duplicate = true,
-- same id); otherwise (no job, window over, or the job started) a new job is
-- enqueued window_ms from now.
CREATE FUNCTION @schema@.enqueue_debounced(
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
REVOKE ALL ON FUNCTION @schema@.enqueue_debounced(text, jsonb, text, integer, jsonb) FROM PUBLIC;

-- prune() of migration 1, plus: expired unique/debounce keys and rate
-- buckets whose log is over are deleted (not counted in the result).
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
  DELETE FROM @schema@.job_keys k WHERE k.queue_name = prune.queue_name AND k.expires_at <= clock_timestamp();
  DELETE FROM @schema@.rate_buckets b USING @schema@.queues q
   WHERE b.queue_name = prune.queue_name AND q.queue_name = b.queue_name
     AND (q.rate_period_ms IS NULL OR cardinality(b.starts) = 0
          OR b.starts[cardinality(b.starts)] <= clock_timestamp() - make_interval(secs => q.rate_period_ms / 1000.0));
  RETURN n + m;
END;
$$;

-- ---------------------------------------------------------------------------
-- Bulk operations by filter
-- ---------------------------------------------------------------------------
-- Filters: states (job states as ops_job_state names them), body (jsonb
-- containment on the input), hdrs (containment on the headers). Each
-- returns how many jobs it changed.
CREATE FUNCTION @schema@._check_states(fn text, states text[], allowed text[])
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF states IS NULL OR cardinality(states) = 0 OR NOT states <@ allowed OR array_position(states, NULL) IS NOT NULL THEN
    RAISE EXCEPTION '%: states must be a non-empty list of %, got %', fn, allowed, states USING ERRCODE = 'PF301';
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._check_states(text, text[], text[]) FROM PUBLIC;

-- 'retrying': run now (the retry delay is dropped, attempts stay counted);
-- 'dead': the matching dead letters are requeued as new jobs (reschedule_dead).
CREATE FUNCTION @schema@.bulk_retry(
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
REVOKE ALL ON FUNCTION @schema@.bulk_retry(text, text[], jsonb, jsonb) FROM PUBLIC;

-- Cancels live jobs (archived as cancelled, like cancel()); running ones'
-- workers are told on <schema>_cancel and abort their handlers.
CREATE FUNCTION @schema@.bulk_cancel(
  queue_name text, states text[] DEFAULT '{queued,scheduled,retrying}', body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  running bigint[];
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
      SELECT count(*), coalesce(array_agg(msg_id) FILTER (WHERE was = 'running'), '{}') FROM gone$f$,
    @schema@._q(queue_name), @schema@._q(queue_name, 'a'))
    INTO n, running USING body, hdrs, states;
  PERFORM pg_notify('@schema_name@_cancel', queue_name || ':' || r) FROM unnest(running) r;
  RETURN n;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.bulk_cancel(text, text[], jsonb, jsonb) FROM PUBLIC;

-- Deletes jobs for good, live and archived, by state (the dead-letter queue
-- is left alone: see purge_dead). Running ones' handlers are aborted.
CREATE FUNCTION @schema@.bulk_delete(
  queue_name text, states text[], body jsonb DEFAULT NULL, hdrs jsonb DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint := 0;
  m bigint := 0;
  running bigint[] := '{}';
BEGIN
  PERFORM @schema@._check_states('bulk_delete', states,
    '{queued,scheduled,running,retrying,completed,cancelled,dead}');
  IF states && '{queued,scheduled,running,retrying}'::text[] THEN
    EXECUTE format($f$WITH gone AS (
          DELETE FROM %s m
           WHERE @schema@.ops_job_state(false, m.last_read_at, m.vt, m.read_ct, m.headers) = ANY($3)
             AND ($1::jsonb IS NULL OR m.message @> $1) AND ($2::jsonb IS NULL OR m.headers @> $2)
          RETURNING m.msg_id, @schema@.ops_job_state(false, m.last_read_at, m.vt, m.read_ct, m.headers) AS was)
        SELECT count(*), coalesce(array_agg(msg_id) FILTER (WHERE was = 'running'), '{}') FROM gone$f$,
      @schema@._q(queue_name)) INTO n, running USING body, hdrs, states;
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
REVOKE ALL ON FUNCTION @schema@.bulk_delete(text, text[], jsonb, jsonb) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Listing: ops_tasks() with the controls (a new column list, so recreated).
-- The EXECUTE grants an administrator gave on it (a monitoring role, see
-- docs/operations.md) are carried over to the new function.
-- ---------------------------------------------------------------------------
CREATE TEMPORARY TABLE pf_ops_tasks_grantees ON COMMIT DROP AS
  SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee
    FROM pg_catalog.pg_proc p
   CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
    LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
   WHERE p.oid = '@schema@.ops_tasks()'::regprocedure
     AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner;
DROP FUNCTION @schema@.ops_tasks();
CREATE FUNCTION @schema@.ops_tasks()
RETURNS TABLE (queue_name text, grouped boolean, by_priority boolean, paused boolean,
               group_concurrency integer, rate_limit integer, rate_period_ms integer, rate_per_key boolean)
LANGUAGE sql STABLE AS $$
  SELECT q.queue_name, q.grouped, q.by_priority, q.paused, q.group_concurrency, q.rate_limit,
         q.rate_period_ms, q.rate_per_key
    FROM @schema@.queues q ORDER BY q.queue_name;
$$;
REVOKE ALL ON FUNCTION @schema@.ops_tasks() FROM PUBLIC;
DO $$
DECLARE
  g text;
BEGIN
  FOR g IN SELECT grantee FROM pf_ops_tasks_grantees LOOP
    EXECUTE format('GRANT EXECUTE ON FUNCTION @schema@.ops_tasks() TO %s', g);
  END LOOP;
END;
$$;
