-- pgferry queue engine, migration 1: the core of the PGMQ SQL API (1.13).
--
-- Written from scratch against ../shared/reference/pgmq-api.md. `@schema@` is
-- replaced by the migrator with the quoted target schema (default "pgmq").
-- Every identifier built from a queue name goes through format('%I'); no
-- queue name is ever spliced into SQL text.

-- ---------------------------------------------------------------------------
-- Types (field order is part of the API: clients bind by position)
-- ---------------------------------------------------------------------------
CREATE TYPE @schema@.message_record AS (
  msg_id bigint,
  read_ct integer,
  enqueued_at timestamp with time zone,
  last_read_at timestamp with time zone,
  vt timestamp with time zone,
  message jsonb,
  headers jsonb
);

CREATE TYPE @schema@.queue_record AS (
  queue_name varchar,
  is_partitioned boolean,
  is_unlogged boolean,
  created_at timestamp with time zone
);

-- 1.12.1+ appends default_partition_length.
CREATE TYPE @schema@.metrics_result AS (
  queue_name text,
  queue_length bigint,
  newest_msg_age_sec integer,
  oldest_msg_age_sec integer,
  total_messages bigint,
  scrape_time timestamp with time zone,
  queue_visible_length bigint,
  default_partition_length bigint
);

-- ---------------------------------------------------------------------------
-- Catalogue
-- ---------------------------------------------------------------------------
CREATE TABLE @schema@.meta (
  queue_name varchar NOT NULL,
  is_partitioned boolean NOT NULL,
  is_unlogged boolean NOT NULL,
  created_at timestamp with time zone NOT NULL DEFAULT now(),
  CONSTRAINT meta_queue_name_key UNIQUE (queue_name)
);

-- pg_monitor may look at the catalogue (PGMQ 1.13.1 privileges).
GRANT USAGE ON SCHEMA @schema@ TO pg_monitor;
GRANT SELECT ON @schema@.meta TO pg_monitor;

-- ---------------------------------------------------------------------------
-- Names
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@.format_table_name(queue_name text, prefix text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  -- The message really ends in a backslash and a quote (PGMQ's wording).
  IF queue_name ~ '\$|;|--|''' THEN
    RAISE EXCEPTION 'queue name contains invalid characters: $, ;, --, or \''';
  END IF;
  RETURN lower(prefix || '_' || queue_name);
END;
$$;

CREATE FUNCTION @schema@.validate_queue_name(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF length(queue_name) > 47 THEN
    RAISE EXCEPTION 'queue name is too long, maximum length is 47 characters';
  END IF;
END;
$$;

CREATE FUNCTION @schema@.acquire_queue_lock(queue_name text)
RETURNS void LANGUAGE sql AS $$
  SELECT pg_advisory_xact_lock(hashtext('pgmq.queue_' || queue_name));
$$;

-- The queue table's regclass, or an undefined_table error worded as
-- PostgreSQL words it (what PGMQ clients see when a queue is missing).
CREATE FUNCTION @schema@._queue_table(queue_name text, prefix text DEFAULT 'q')
RETURNS regclass LANGUAGE plpgsql STABLE AS $$
DECLARE
  tbl text := @schema@.format_table_name(queue_name, prefix);
  rel regclass;
BEGIN
  rel := to_regclass(format('@schema@.%I', tbl));
  IF rel IS NULL THEN
    RAISE EXCEPTION 'relation "%.%" does not exist', '@schema_name@', tbl
      USING ERRCODE = 'undefined_table';
  END IF;
  RETURN rel;
END;
$$;

-- ---------------------------------------------------------------------------
-- Queue lifecycle
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@._create_queue(queue_name text, unlogged boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  qtable text := @schema@.format_table_name(queue_name, 'q');
  atable text := @schema@.format_table_name(queue_name, 'a');
BEGIN
  PERFORM @schema@.validate_queue_name(queue_name);
  PERFORM @schema@.acquire_queue_lock(queue_name);

  EXECUTE format(
    'CREATE %s TABLE IF NOT EXISTS @schema@.%I (
       msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
       read_ct integer NOT NULL DEFAULT 0,
       enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
       last_read_at timestamp with time zone,
       vt timestamp with time zone NOT NULL,
       message jsonb,
       headers jsonb)',
    CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END, qtable);

  EXECUTE format(
    'CREATE TABLE IF NOT EXISTS @schema@.%I (
       msg_id bigint PRIMARY KEY,
       read_ct integer NOT NULL DEFAULT 0,
       enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
       last_read_at timestamp with time zone,
       archived_at timestamp with time zone NOT NULL DEFAULT now(),
       vt timestamp with time zone NOT NULL,
       message jsonb,
       headers jsonb)',
    atable);

  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON @schema@.%I (vt)', qtable || '_vt_idx', qtable);
  -- PGMQ names this index after the queue name as given (not lower-cased).
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON @schema@.%I (archived_at)',
                 'archived_at_idx_' || queue_name, atable);

  -- pg_monitor sees only what metrics need (PGMQ 1.13.1).
  EXECUTE format('GRANT SELECT (vt, enqueued_at) ON @schema@.%I TO pg_monitor', qtable);
  EXECUTE format('GRANT SELECT ON SEQUENCE @schema@.%I TO pg_monitor', qtable || '_msg_id_seq');

  INSERT INTO @schema@.meta (queue_name, is_partitioned, is_unlogged)
  SELECT queue_name, false, unlogged
  WHERE NOT EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = _create_queue.queue_name);
END;
$$;

CREATE FUNCTION @schema@.create_non_partitioned(queue_name text)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._create_queue(queue_name, false);
$$;

CREATE FUNCTION @schema@."create"(queue_name text)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._create_queue(queue_name, false);
$$;

CREATE FUNCTION @schema@.create_unlogged(queue_name text)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._create_queue(queue_name, true);
$$;

CREATE FUNCTION @schema@.drop_queue(queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  qtable text := @schema@.format_table_name(queue_name, 'q');
  atable text := @schema@.format_table_name(queue_name, 'a');
BEGIN
  PERFORM @schema@.acquire_queue_lock(queue_name);
  IF to_regclass(format('@schema@.%I', qtable)) IS NULL THEN
    RAISE NOTICE 'pgmq queue `%` does not exist', queue_name;
    RETURN false;
  END IF;
  EXECUTE format('DROP TABLE IF EXISTS @schema@.%I', qtable);
  EXECUTE format('DROP TABLE IF EXISTS @schema@.%I', atable);
  -- Matched exactly, as PGMQ does; cascades to bindings and throttles.
  DELETE FROM @schema@.meta m WHERE m.queue_name = drop_queue.queue_name;
  RETURN true;
END;
$$;

CREATE FUNCTION @schema@.drop_queue(queue_name text, partitioned boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  RAISE WARNING 'drop_queue(queue_name, partitioned) is deprecated and will be removed in PGMQ v2.0. Use drop_queue(queue_name) instead';
  PERFORM @schema@.drop_queue(queue_name);
  RETURN true;
END;
$$;

CREATE FUNCTION @schema@.purge_queue(queue_name text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  n bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM %s', rel) INTO n;
  -- The identity is not restarted: numbering continues after a purge.
  EXECUTE format('TRUNCATE TABLE %s', rel);
  RETURN n;
END;
$$;

CREATE FUNCTION @schema@.detach_archive(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE WARNING 'detach_archive(queue_name) is deprecated and is a no-op. It will be removed in PGMQ v2.0. Archive tables are no longer member objects.';
END;
$$;

CREATE FUNCTION @schema@.list_queues()
RETURNS SETOF @schema@.queue_record LANGUAGE sql AS $$
  SELECT queue_name, is_partitioned, is_unlogged, created_at FROM @schema@.meta;
$$;

-- ---------------------------------------------------------------------------
-- Sending
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@._send_batch(
  queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
BEGIN
  PERFORM @schema@._validate_batch_params(msgs, headers);
  RETURN QUERY EXECUTE format(
    'WITH ins AS (
       INSERT INTO %s (vt, message, headers)
       SELECT $1, m.msg, m.hdr
         FROM unnest($2, $3) WITH ORDINALITY AS m(msg, hdr, ord)
        ORDER BY m.ord
       RETURNING msg_id)
     SELECT msg_id FROM ins ORDER BY msg_id', rel)
    USING delay, msgs, headers;
END;
$$;

CREATE FUNCTION @schema@._validate_batch_params(msgs jsonb[], headers jsonb[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF msgs IS NULL OR cardinality(msgs) = 0 THEN
    RAISE EXCEPTION 'msgs cannot be NULL or empty';
  END IF;
  IF headers IS NOT NULL AND cardinality(headers) <> cardinality(msgs) THEN
    RAISE EXCEPTION 'headers array length (%) must match msgs array length (%)',
      cardinality(headers), cardinality(msgs);
  END IF;
END;
$$;

CREATE FUNCTION @schema@._send(
  queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone)
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'INSERT INTO %s (vt, message, headers) VALUES ($1, $2, $3) RETURNING msg_id',
    @schema@._queue_table(queue_name))
    USING delay, msg, headers;
END;
$$;

-- Integer delays are seconds from the clock (negative: visible at once).
CREATE FUNCTION @schema@._delay_to_vt(delay integer)
RETURNS timestamp with time zone LANGUAGE sql VOLATILE AS $$
  SELECT clock_timestamp() + make_interval(secs => delay);
$$;

CREATE FUNCTION @schema@.send(queue_name text, msg jsonb)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send(queue_name, msg, NULL, clock_timestamp());
$$;

CREATE FUNCTION @schema@.send(queue_name text, msg jsonb, headers jsonb)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send(queue_name, msg, headers, clock_timestamp());
$$;

CREATE FUNCTION @schema@.send(queue_name text, msg jsonb, delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send(queue_name, msg, NULL, @schema@._delay_to_vt(delay));
$$;

CREATE FUNCTION @schema@.send(queue_name text, msg jsonb, delay timestamp with time zone)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send(queue_name, msg, NULL, delay);
$$;

CREATE FUNCTION @schema@.send(queue_name text, msg jsonb, headers jsonb, delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send(queue_name, msg, headers, @schema@._delay_to_vt(delay));
$$;

CREATE FUNCTION @schema@.send(
  queue_name text, msg jsonb, headers jsonb, delay timestamp with time zone)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send(queue_name, msg, headers, delay);
$$;

CREATE FUNCTION @schema@.send_batch(queue_name text, msgs jsonb[])
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch(queue_name, msgs, NULL, clock_timestamp());
$$;

CREATE FUNCTION @schema@.send_batch(queue_name text, msgs jsonb[], headers jsonb[])
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch(queue_name, msgs, headers, clock_timestamp());
$$;

CREATE FUNCTION @schema@.send_batch(queue_name text, msgs jsonb[], delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch(queue_name, msgs, NULL, @schema@._delay_to_vt(delay));
$$;

CREATE FUNCTION @schema@.send_batch(
  queue_name text, msgs jsonb[], delay timestamp with time zone)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch(queue_name, msgs, NULL, delay);
$$;

CREATE FUNCTION @schema@.send_batch(
  queue_name text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch(queue_name, msgs, headers, @schema@._delay_to_vt(delay));
$$;

CREATE FUNCTION @schema@.send_batch(
  queue_name text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
RETURNS SETOF bigint LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch(queue_name, msgs, headers, delay);
$$;

-- ---------------------------------------------------------------------------
-- Reading
-- ---------------------------------------------------------------------------
-- Extension point run by every read function (read, the group reads) before
-- it selects messages: later migrations replace it (dead-letter policies).
CREATE FUNCTION @schema@._before_read(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RETURN;
END;
$$;

-- Lowest visible msg_ids first, SKIP LOCKED so concurrent readers never take
-- the same row; the UPDATE makes them invisible until `vt`. Rows come back
-- in no defined order, as in PGMQ.
CREATE FUNCTION @schema@.read(
  queue_name text, vt timestamp with time zone, qty integer,
  conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
BEGIN
  PERFORM @schema@._before_read(queue_name);
  RETURN QUERY EXECUTE format(
    -- The picked ids go back in as an array rather than a join: on a
    -- partitioned queue a join makes the planner visit every partition
    -- (12 ms for 100 rows over 11 partitions, 1.5 ms this way); on a plain
    -- queue it is no slower.
    'WITH cte AS (
       SELECT msg_id FROM %1$s
        WHERE vt <= clock_timestamp()
          AND ($2 IS NULL OR $2 = ''{}''::jsonb OR message @> $2)
        ORDER BY msg_id
        LIMIT $1
        FOR UPDATE SKIP LOCKED)
     UPDATE %1$s m
        SET vt = $3, read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
      WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM cte))
     RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers',
    rel)
    USING qty, conditional, read.vt;
END;
$$;

-- The integer form computes clock + vt seconds once, at call start (1.12+).
CREATE FUNCTION @schema@.read(
  queue_name text, vt integer, qty integer, conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.read(queue_name, @schema@._delay_to_vt(vt), qty, conditional);
$$;

CREATE FUNCTION @schema@.read_with_poll(
  queue_name text, vt timestamp with time zone, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100,
  conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  deadline timestamp with time zone := clock_timestamp() + make_interval(secs => max_poll_seconds);
  found_any boolean;
  r @schema@.message_record;
BEGIN
  LOOP
    IF clock_timestamp() >= deadline THEN
      RETURN;
    END IF;
    found_any := false;
    FOR r IN SELECT * FROM @schema@.read(queue_name, vt, qty, conditional) LOOP
      found_any := true;
      RETURN NEXT r;
    END LOOP;
    IF found_any THEN
      RETURN;
    END IF;
    PERFORM pg_sleep(poll_interval_ms / 1000.0);
  END LOOP;
END;
$$;

CREATE FUNCTION @schema@.read_with_poll(
  queue_name text, vt integer, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100,
  conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.read_with_poll(
    queue_name, @schema@._delay_to_vt(vt), qty, max_poll_seconds, poll_interval_ms, conditional);
$$;

CREATE FUNCTION @schema@.pop(queue_name text, qty integer DEFAULT 1)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH cte AS (
       SELECT msg_id FROM %1$s
        WHERE vt <= clock_timestamp()
        ORDER BY msg_id
        LIMIT $1
        FOR UPDATE SKIP LOCKED)
     DELETE FROM %1$s m USING cte
      WHERE m.msg_id = cte.msg_id
     RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers',
    @schema@._queue_table(queue_name))
    USING qty;
END;
$$;

-- ---------------------------------------------------------------------------
-- Visibility
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@.set_vt(queue_name text, msg_ids bigint[], vt timestamp with time zone)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'UPDATE %s SET vt = $2 WHERE msg_id = ANY($1)
     RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers',
    @schema@._queue_table(queue_name))
    USING msg_ids, set_vt.vt;
END;
$$;

CREATE FUNCTION @schema@.set_vt(queue_name text, msg_ids bigint[], vt integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.set_vt(queue_name, msg_ids, @schema@._delay_to_vt(vt));
$$;

CREATE FUNCTION @schema@.set_vt(queue_name text, msg_id bigint, vt timestamp with time zone)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.set_vt(queue_name, ARRAY[msg_id], vt);
$$;

CREATE FUNCTION @schema@.set_vt(queue_name text, msg_id bigint, vt integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.set_vt(queue_name, ARRAY[msg_id], @schema@._delay_to_vt(vt));
$$;

-- ---------------------------------------------------------------------------
-- Archive and delete
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@.archive(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'WITH moved AS (
       DELETE FROM %s WHERE msg_id = ANY($1)
       RETURNING msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
     INSERT INTO %s (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
     SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM moved
     RETURNING msg_id',
    @schema@._queue_table(queue_name), @schema@._queue_table(queue_name, 'a'))
    USING msg_ids;
END;
$$;

CREATE FUNCTION @schema@.archive(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM @schema@.archive(queue_name, ARRAY[msg_id]));
$$;

CREATE FUNCTION @schema@.delete(queue_name text, msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'DELETE FROM %s WHERE msg_id = ANY($1) RETURNING msg_id',
    @schema@._queue_table(queue_name))
    USING msg_ids;
END;
$$;

CREATE FUNCTION @schema@.delete(queue_name text, msg_id bigint)
RETURNS boolean LANGUAGE sql AS $$
  SELECT EXISTS (SELECT 1 FROM @schema@.delete(queue_name, ARRAY[msg_id]));
$$;

-- ---------------------------------------------------------------------------
-- Metrics
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@.metrics(queue_name text)
RETURNS @schema@.metrics_result LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  seq text := pg_get_serial_sequence(rel::text, 'msg_id');
  result @schema@.metrics_result;
BEGIN
  EXECUTE format(
    'SELECT $1,
            count(*),
            round(extract(epoch FROM now() - max(enqueued_at)))::integer,
            round(extract(epoch FROM now() - min(enqueued_at)))::integer,
            0::bigint,
            now(),
            count(*) FILTER (WHERE vt <= now()),
            NULL::bigint
       FROM %s', rel)
    INTO result USING queue_name;
  -- The highest msg_id ever issued (0 before the first send).
  EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s', seq)
    INTO result.total_messages;
  RETURN result;
END;
$$;

CREATE FUNCTION @schema@.metrics_all()
RETURNS SETOF @schema@.metrics_result LANGUAGE plpgsql AS $$
DECLARE
  q record;
BEGIN
  FOR q IN SELECT queue_name FROM @schema@.meta LOOP
    RETURN NEXT @schema@.metrics(q.queue_name);
  END LOOP;
END;
$$;

-- ---------------------------------------------------------------------------
-- Untyped-parameter shims (pgferry addition)
-- ---------------------------------------------------------------------------
-- Drivers such as node-postgres send parameters untyped. With the integer and
-- timestamptz overloads above, `read($1, $2, $3)` and `set_vt($1, $2, $3)`
-- are ambiguous (42725) in PostgreSQL's overload resolution, which breaks
-- clients like the npm `pgmq-js` package. An overload whose ambiguous
-- arguments are text wins for unknown-typed arguments (PostgreSQL prefers the
-- string category) and never matches typed calls, so these only give a
-- meaning to calls that were errors before: the text is read as an integer
-- (seconds) when it looks like one, else as a timestamptz.
CREATE FUNCTION @schema@._vt_from_text(vt text)
RETURNS timestamp with time zone LANGUAGE sql VOLATILE AS $$
  SELECT CASE WHEN vt ~ '^\s*[-+]?[0-9]+\s*$'
              THEN @schema@._delay_to_vt(vt::integer)
              ELSE vt::timestamp with time zone END;
$$;

CREATE FUNCTION @schema@.read(
  queue_name text, vt text, qty integer, conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.read(queue_name, @schema@._vt_from_text(vt), qty, conditional);
$$;

CREATE FUNCTION @schema@.read_with_poll(
  queue_name text, vt text, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100,
  conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.read_with_poll(
    queue_name, @schema@._vt_from_text(vt), qty, max_poll_seconds, poll_interval_ms, conditional);
$$;

CREATE FUNCTION @schema@.set_vt(queue_name text, msg_id text, vt text)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.set_vt(
    queue_name,
    CASE WHEN btrim(msg_id) LIKE '{%' THEN msg_id::bigint[] ELSE ARRAY[msg_id::bigint] END,
    @schema@._vt_from_text(vt));
$$;

-- ---------------------------------------------------------------------------
-- Transaction-held reads (pgferry addition)
-- ---------------------------------------------------------------------------
-- The visible messages `read` would pick, locked FOR UPDATE SKIP LOCKED but
-- not updated: vt, read_ct and last_read_at stay as they are. Only useful
-- inside a transaction: the caller handles the messages, deletes or archives
-- them and commits, or rolls back and they are visible again at once. It
-- skips the UPDATE that a visibility timeout costs (a new row version and
-- its index entries), which is most of the price of read + delete; the
-- trade-off is that read_ct does not count these deliveries.
CREATE FUNCTION @schema@.read_locked(
  queue_name text, qty integer, conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers
       FROM %s
      WHERE vt <= clock_timestamp()
        AND ($2 IS NULL OR $2 = ''{}''::jsonb OR message @> $2)
      ORDER BY msg_id
      LIMIT $1
      FOR UPDATE SKIP LOCKED',
    @schema@._queue_table(queue_name))
    USING qty, conditional;
END;
$$;
