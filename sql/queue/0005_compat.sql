-- pgferry queue engine, migration 5: PGMQ edge cases and the overload sets of
-- the read forms. Pinned by test/queue/compat-edge-cases.test.ts and
-- test/compat/untyped-parameters.test.ts.

-- ---------------------------------------------------------------------------
-- drop_queue(NULL): no table to drop, so the reference's NOTICE and false
-- (its table-name lookup yields NULL instead of failing on the identifier).
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@.drop_queue(queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  qtable text;
  atable text;
BEGIN
  IF queue_name IS NULL THEN
    RAISE NOTICE 'pgmq queue `%` does not exist', queue_name;
    RETURN false;
  END IF;
  qtable := @schema@.format_table_name(queue_name, 'q');
  atable := @schema@.format_table_name(queue_name, 'a');
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

-- ---------------------------------------------------------------------------
-- detach_archive: still a no-op, but the name is checked like everywhere else.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@.detach_archive(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM @schema@.format_table_name(queue_name, 'q');
  RAISE WARNING 'detach_archive(queue_name) is deprecated and is a no-op. It will be removed in PGMQ v2.0. Archive tables are no longer member objects.';
END;
$$;

-- ---------------------------------------------------------------------------
-- Negative qty in group reads. The reference's read_grouped_rr selects
-- `rank <= qty` (no LIMIT), so a negative qty returns nothing; read_grouped
-- returns nothing when no message is visible and raises LIMIT's error
-- otherwise; read_grouped_head applies LIMIT and raises. The group-read body
-- moves to _read_grouped_core unchanged; _read_grouped is now this gate.
-- ---------------------------------------------------------------------------
ALTER FUNCTION @schema@._read_grouped(text, timestamp with time zone, integer, text) RENAME TO _read_grouped_core;

CREATE FUNCTION @schema@._read_grouped(
  queue_name text, vt timestamp with time zone, qty integer, mode text)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  visible boolean;
BEGIN
  IF qty < 0 AND mode IN ('rr', 'grouped') THEN
    -- A missing queue still raises 42P01 first, as there.
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE vt <= clock_timestamp())',
                   @schema@._queue_table(queue_name))
      INTO visible;
    IF mode = 'rr' OR NOT visible THEN
      RETURN;
    END IF;
  END IF;
  RETURN QUERY SELECT * FROM @schema@._read_grouped_core(queue_name, vt, qty, mode);
END;
$$;

-- ---------------------------------------------------------------------------
-- Overload sets of the polling reads.
--
-- PostgreSQL resolves an unknown-typed argument (an untyped parameter, as
-- node-postgres and asyncpg send them) to the string category when any
-- candidate takes text there, and reports "not unique" when the candidates
-- take different categories (integer, timestamptz). A named-notation call
-- only considers functions whose parameter names match. So:
--   * read_with_poll and the group poll reads keep PGMQ's parameter names
--     only on the integer form. The timestamptz form (PGMQ 1.12) and the text
--     shim become positional-only (unnamed parameters). An untyped named
--     call, as pgmq-py 1.0's asyncpg client makes
--     (`read_with_poll(queue_name=>$1, vt=>$2, qty=>$3, max_poll_seconds=>$4,
--     poll_interval_ms=>$5)`), then resolves to the integer form and its
--     parameters are inferred as (text, integer, integer, integer, integer);
--     untyped positional calls still reach the text shim; typed calls reach
--     the form of their type.
--   * read, the group reads and set_vt keep every form named: typed
--     timestamptz calls by name (pgmq-py 1.1 sends them) keep working.
-- ---------------------------------------------------------------------------
ALTER FUNCTION @schema@.read_with_poll(text, timestamp with time zone, integer, integer, integer, jsonb)
  RENAME TO _read_with_poll_at;

DROP FUNCTION @schema@.read_with_poll(text, text, integer, integer, integer, jsonb);

CREATE FUNCTION @schema@.read_with_poll(
  text, timestamp with time zone, integer, integer DEFAULT 5, integer DEFAULT 100, jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_with_poll_at($1, $2, $3, $4, $5, $6);
$$;

CREATE FUNCTION @schema@.read_with_poll(
  text, text, integer, integer DEFAULT 5, integer DEFAULT 100, jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_with_poll_at($1, @schema@._vt_from_text($2), $3, $4, $5, $6);
$$;

CREATE OR REPLACE FUNCTION @schema@.read_with_poll(
  queue_name text, vt integer, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100,
  conditional jsonb DEFAULT '{}'::jsonb)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_with_poll_at(
    queue_name, @schema@._delay_to_vt(vt), qty, max_poll_seconds, poll_interval_ms, conditional);
$$;

DROP FUNCTION @schema@.read_grouped_with_poll(text, timestamp with time zone, integer, integer, integer);
DROP FUNCTION @schema@.read_grouped_with_poll(text, text, integer, integer, integer);
DROP FUNCTION @schema@.read_grouped_rr_with_poll(text, timestamp with time zone, integer, integer, integer);
DROP FUNCTION @schema@.read_grouped_rr_with_poll(text, text, integer, integer, integer);
DROP FUNCTION @schema@.read_grouped_head_with_poll(text, timestamp with time zone, integer, integer, integer);
DROP FUNCTION @schema@.read_grouped_head_with_poll(text, text, integer, integer, integer);

CREATE FUNCTION @schema@.read_grouped_with_poll(
  text, timestamp with time zone, integer, integer DEFAULT 5, integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll($1, $2, $3, $4, $5, 'grouped');
$$;

CREATE FUNCTION @schema@.read_grouped_with_poll(text, text, integer, integer DEFAULT 5, integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll($1, @schema@._vt_from_text($2), $3, $4, $5, 'grouped');
$$;

CREATE FUNCTION @schema@.read_grouped_rr_with_poll(
  text, timestamp with time zone, integer, integer DEFAULT 5, integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll($1, $2, $3, $4, $5, 'rr');
$$;

CREATE FUNCTION @schema@.read_grouped_rr_with_poll(text, text, integer, integer DEFAULT 5, integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll($1, @schema@._vt_from_text($2), $3, $4, $5, 'rr');
$$;

CREATE FUNCTION @schema@.read_grouped_head_with_poll(
  text, timestamp with time zone, integer, integer DEFAULT 5, integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll($1, $2, $3, $4, $5, 'head');
$$;

CREATE FUNCTION @schema@.read_grouped_head_with_poll(text, text, integer, integer DEFAULT 5, integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll($1, @schema@._vt_from_text($2), $3, $4, $5, 'head');
$$;
