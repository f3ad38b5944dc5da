-- pgferry queue engine, migration 3: reliability.
--
--   * partitioned queues without pg_partman (create_partitioned,
--     convert_archive_partitioned) — native declarative range partitions by
--     msg_id or by time, a default partition, partitions made ahead,
--     retention;
--   * dead-letter policies (pgferry addition), enforced in _before_read;
--   * archive retention (pgferry addition);
--   * fast exact metrics (pgferry addition, opt-in per queue);
--   * one maintenance entry point, run_maintenance(), that does the periodic
--     work of all of the above.
--
-- pgferry's own errors here use SQLSTATEs PF201 (bad argument) and PF202
-- (queue not found); the PGMQ functions raise P0001 as PGMQ does.

-- ===========================================================================
-- Bookkeeping (every table references meta, so drop_queue's DELETE FROM meta
-- cleans it up by cascade; drop_queue itself needs no change)
-- ===========================================================================
CREATE TABLE @schema@._partition_config (
  queue_name varchar NOT NULL REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE,
  -- 'q' = the queue table, 'a' = the archive
  prefix text NOT NULL CHECK (prefix IN ('q', 'a')),
  -- 'id' (msg_id ranges) or 'time' (enqueued_at / archived_at ranges)
  kind text NOT NULL CHECK (kind IN ('id', 'time')),
  control_column text NOT NULL,
  partition_interval text NOT NULL,
  retention_interval text,
  premake integer NOT NULL CHECK (premake >= 1),
  PRIMARY KEY (queue_name, prefix)
);

CREATE TABLE @schema@._dead_letter_policy (
  queue_name varchar NOT NULL PRIMARY KEY REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE,
  -- The physical table (lower-cased), which is what _before_read looks up.
  queue_table text NOT NULL UNIQUE,
  -- Dropping the dead-letter queue removes the policy (documented).
  dead_letter_queue varchar NOT NULL REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE,
  max_read_count integer NOT NULL CHECK (max_read_count >= 1),
  created_at timestamp with time zone NOT NULL DEFAULT now()
);
CREATE INDEX _dead_letter_policy_dlq_idx ON @schema@._dead_letter_policy (dead_letter_queue);

-- When a queue with a policy next has a message to dead-letter: a trigger
-- appends (queue table, vt) whenever a message reaches the read limit, so
-- _before_read answers "nothing due" with one index probe instead of a
-- query on the queue table (measured: 280 us -> a few us per read).
-- Append-only, so it never makes readers wait on each other or fail under
-- REPEATABLE READ; _before_read deletes the entries it has handled.
CREATE TABLE @schema@._dead_letter_due (
  queue_table text NOT NULL,
  due_at timestamp with time zone NOT NULL
);
CREATE INDEX _dead_letter_due_idx ON @schema@._dead_letter_due (queue_table, due_at);

CREATE TABLE @schema@._archive_retention (
  queue_name varchar NOT NULL PRIMARY KEY REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE,
  retention interval NOT NULL CHECK (retention > interval '0')
);

-- Fast metrics: a base count per queue table plus append-only deltas written
-- by statement-level triggers. Append-only (never UPDATE a shared counter
-- row) so that concurrent senders never wait on each other's row lock and
-- REPEATABLE READ callers never get serialization failures; maintenance
-- folds the deltas into base_count.
CREATE TABLE @schema@._fast_metrics (
  queue_name varchar NOT NULL PRIMARY KEY REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE,
  relid oid NOT NULL UNIQUE,
  base_count bigint NOT NULL DEFAULT 0
);
CREATE TABLE @schema@._fast_metrics_delta (
  relid oid NOT NULL,
  delta bigint NOT NULL
);
CREATE INDEX _fast_metrics_delta_relid_idx ON @schema@._fast_metrics_delta (relid);

GRANT SELECT ON @schema@._fast_metrics, @schema@._fast_metrics_delta TO pg_monitor;

CREATE TYPE @schema@.maintenance_result AS (
  queue_name text,
  -- another session was maintaining this queue; nothing done
  skipped boolean,
  partitions_created integer,
  partitions_dropped integer,
  -- rows lost with dropped partitions or deleted from the default partition by retention
  rows_dropped bigint,
  archive_rows_deleted bigint,
  -- archive retention stopped at batch_size: call again
  more_pending boolean
);

-- ===========================================================================
-- Partitioning helpers
-- ===========================================================================
-- Bounds are handled as numeric positions: the msg_id itself, or epoch
-- seconds for time partitions (block starts are computed on timestamps, so
-- month intervals align to calendar months, in UTC).
CREATE FUNCTION @schema@._partition_kind(partition_interval text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  iv interval;
BEGIN
  IF partition_interval ~ '^\s*[0-9]+\s*$' THEN
    IF partition_interval::numeric < 1 THEN
      RAISE EXCEPTION 'partition_interval must be at least 1, got %', partition_interval;
    END IF;
    RETURN 'id';
  END IF;
  BEGIN
    iv := partition_interval::interval;
  EXCEPTION WHEN others THEN
    RAISE EXCEPTION 'partition_interval must be an integer (msg_id range) or an interval, got %',
      coalesce(partition_interval, 'NULL');
  END;
  IF iv <= interval '0' THEN
    RAISE EXCEPTION 'partition_interval must be positive, got %', partition_interval;
  END IF;
  IF extract(month FROM iv) + extract(year FROM iv) * 12 <> 0
     AND (extract(day FROM iv) <> 0 OR iv - date_trunc('month', iv) <> interval '0') THEN
    RAISE EXCEPTION 'partition_interval must be whole months or have no month part, got %', partition_interval;
  END IF;
  RETURN 'time';
END;
$$;

-- pg_partman 4 keywords (what PGMQ users on older partman wrote) as intervals.
CREATE FUNCTION @schema@._normalize_interval(value text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE lower(btrim(value))
    WHEN 'hourly' THEN '1 hour' WHEN 'daily' THEN '1 day' WHEN 'weekly' THEN '1 week'
    WHEN 'monthly' THEN '1 month' WHEN 'quarterly' THEN '3 months' WHEN 'yearly' THEN '1 year'
    ELSE btrim(value) END;
$$;

CREATE FUNCTION @schema@._check_retention(kind text, retention_interval text)
RETURNS void LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF retention_interval IS NULL THEN
    RETURN;
  END IF;
  IF kind = 'id' AND retention_interval !~ '^\s*[0-9]+\s*$' THEN
    RAISE EXCEPTION 'retention_interval must be an integer for msg_id partitions, got %', retention_interval;
  END IF;
  IF kind = 'time' THEN
    BEGIN
      PERFORM retention_interval::interval;
    EXCEPTION WHEN others THEN
      RAISE EXCEPTION 'retention_interval must be an interval for time partitions, got %', retention_interval;
    END;
  END IF;
END;
$$;

CREATE FUNCTION @schema@._block_start(kind text, partition_interval text, pos numeric)
RETURNS numeric LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  n numeric;
  iv interval;
  months integer;
  ts timestamp;
  total integer;
BEGIN
  IF kind = 'id' THEN
    n := partition_interval::numeric;
    RETURN floor(pos / n) * n;
  END IF;
  iv := partition_interval::interval;
  months := (extract(year FROM iv) * 12 + extract(month FROM iv))::integer;
  ts := to_timestamp(pos) AT TIME ZONE 'UTC';
  IF months > 0 THEN
    total := extract(year FROM ts)::integer * 12 + extract(month FROM ts)::integer - 1;
    total := total - (((total % months) + months) % months);
    RETURN extract(epoch FROM make_timestamptz(total / 12, total % 12 + 1, 1, 0, 0, 0, 'UTC'));
  END IF;
  RETURN extract(epoch FROM date_bin(iv, ts, timestamp '2000-01-01') AT TIME ZONE 'UTC');
END;
$$;

CREATE FUNCTION @schema@._block_next(kind text, partition_interval text, lo numeric)
RETURNS numeric LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN kind = 'id' THEN lo + partition_interval::numeric
              ELSE extract(epoch FROM ((to_timestamp(lo) AT TIME ZONE 'UTC') + partition_interval::interval)
                                      AT TIME ZONE 'UTC') END;
$$;

-- A bound as an SQL literal for DDL and WHERE clauses (ISO, UTC: unambiguous
-- whatever the session's DateStyle).
CREATE FUNCTION @schema@._bound_literal(kind text, pos numeric)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN kind = 'id' THEN quote_literal(pos::bigint::text)
              ELSE quote_literal(to_char(to_timestamp(pos) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00') END;
$$;

CREATE FUNCTION @schema@._bound_suffix(kind text, pos numeric)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT 'p' || CASE WHEN kind = 'id' THEN pos::bigint::text
                     ELSE to_char(to_timestamp(pos) AT TIME ZONE 'UTC', 'YYYYMMDD"t"HH24MISS') END;
$$;

-- parent || '_' || suffix, shortened with a hash when it would pass
-- PostgreSQL's 63-byte identifier limit (47-character queue names do).
CREATE FUNCTION @schema@._partition_name(parent text, suffix text)
RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  full_name text := parent || '_' || suffix;
  tag text := '_' || left(md5(parent), 8) || '_' || suffix;
  n integer;
BEGIN
  IF octet_length(full_name) <= 63 THEN
    RETURN full_name;
  END IF;
  n := length(parent);
  WHILE octet_length(left(parent, n) || tag) > 63 LOOP
    n := n - 1;
  END LOOP;
  RETURN left(parent, n) || tag;
END;
$$;

-- The partitions of a partitioned table with their bounds as positions.
CREATE FUNCTION @schema@._partitions(parent regclass, kind text)
RETURNS TABLE (part regclass, lo numeric, hi numeric) LANGUAGE plpgsql STABLE AS $$
DECLARE
  r record;
  m text[];
BEGIN
  FOR r IN
    SELECT c.oid::regclass AS rel, pg_get_expr(c.relpartbound, c.oid) AS bound
      FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
     WHERE i.inhparent = parent
  LOOP
    m := regexp_match(r.bound, 'FROM \(''?([^'')]*)''?\) TO \(''?([^'')]*)''?\)');
    CONTINUE WHEN m IS NULL; -- the default partition
    part := r.rel;
    IF kind = 'id' THEN
      lo := m[1]::numeric;
      hi := m[2]::numeric;
    ELSE
      lo := extract(epoch FROM m[1]::timestamp with time zone);
      hi := extract(epoch FROM m[2]::timestamp with time zone);
    END IF;
    RETURN NEXT;
  END LOOP;
END;
$$;

CREATE FUNCTION @schema@._default_partition(parent regclass)
RETURNS regclass LANGUAGE sql STABLE AS $$
  SELECT nullif(partdefid, 0)::regclass FROM pg_partitioned_table WHERE partrelid = parent;
$$;

-- Where a queue's numbering or clock is now, as a position.
CREATE FUNCTION @schema@._current_position(queue_rel regclass, kind text)
RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE
  seq text := pg_get_serial_sequence(queue_rel::text, 'msg_id');
  v numeric;
BEGIN
  IF kind = 'time' THEN
    RETURN extract(epoch FROM now());
  END IF;
  EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s', seq) INTO v;
  RETURN v;
END;
$$;

-- Adds a delta to a fast-metrics counter when the table has one (rows that
-- leave a queue without a DELETE through the parent: dropped partitions).
CREATE FUNCTION @schema@._fast_metrics_adjust(rel regclass, delta bigint)
RETURNS void LANGUAGE sql AS $$
  INSERT INTO @schema@._fast_metrics_delta (relid, delta)
  SELECT rel, delta WHERE delta <> 0 AND EXISTS (SELECT 1 FROM @schema@._fast_metrics f WHERE f.relid = rel);
$$;

-- Makes the partition for block [b, next) unless one overlaps it: made
-- standalone, filled from the default partition, then attached (CREATE ...
-- PARTITION OF would fail when the default partition holds rows of the
-- range: a burst larger than the premade partitions).
--
-- The parent is locked SHARE ROW EXCLUSIVE first, which waits for the
-- writers in flight and holds new ones (sends, reads, deletes) until commit.
-- ATTACH alone needs only SHARE UPDATE EXCLUSIVE, but then an INSERT that
-- had already chosen its partitions routes a row of the new range to the
-- default partition and fails ("violates partition constraint", PostgreSQL
-- re-checks the default partition's changed constraint) — seen in
-- test/queue/partition-maintenance.test.ts. Taking the parent first also
-- keeps the lock order of readers (parent, then partitions): no deadlock.
CREATE FUNCTION @schema@._make_partition(
  parent regclass, parent_name text, def regclass, kind text, col text, partition_interval text,
  b numeric, col_list text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  nb numeric := @schema@._block_next(kind, partition_interval, b);
  newtab text;
  lo text := @schema@._bound_literal(kind, b);
  hi text := @schema@._bound_literal(kind, nb);
BEGIN
  IF EXISTS (SELECT 1 FROM @schema@._partitions(parent, kind) x WHERE x.lo < nb AND x.hi > b) THEN
    RETURN false;
  END IF;
  newtab := @schema@._partition_name(parent_name, @schema@._bound_suffix(kind, b));
  EXECUTE format('LOCK TABLE ONLY %s IN SHARE ROW EXCLUSIVE MODE', parent);
  EXECUTE format('CREATE TABLE @schema@.%I (LIKE %s INCLUDING DEFAULTS INCLUDING STORAGE)', newtab, parent);
  -- The CHECK lets ATTACH skip its validation scan of the new table.
  EXECUTE format('ALTER TABLE @schema@.%I ADD CONSTRAINT %I CHECK (%I >= %s AND %I < %s)',
    newtab, left(newtab, 50) || '_bound', col, lo, col, hi);
  IF def IS NOT NULL THEN
    EXECUTE format(
      'WITH moved AS (DELETE FROM %1$s WHERE %2$I >= %3$s AND %2$I < %4$s RETURNING %5$s)
       INSERT INTO @schema@.%6$I (%5$s) SELECT %5$s FROM moved',
      def, col, lo, hi, col_list, newtab);
  END IF;
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION @schema@.%I FOR VALUES FROM (%s) TO (%s)', parent, newtab, lo, hi);
  EXECUTE format('ALTER TABLE @schema@.%I DROP CONSTRAINT %I', newtab, left(newtab, 50) || '_bound');
  RETURN true;
END;
$$;

-- One maintenance pass over one partitioned table: make the partitions that
-- hold rows waiting in the default partition behind the current position,
-- and every partition from the current block to `premake` blocks ahead,
-- moving rows out of the default partition into them; drop partitions
-- entirely older than the retention; delete rows older than the retention
-- from the default partition.
CREATE FUNCTION @schema@._maintain_partitioned(
  parent regclass, kind text, col text, partition_interval text, retention_interval text,
  premake integer, cur numeric,
  OUT created integer, OUT dropped integer, OUT rows_dropped bigint)
LANGUAGE plpgsql AS $$
DECLARE
  def regclass := @schema@._default_partition(parent);
  parent_name text;
  cutoff numeric;
  def_min numeric;
  def_max numeric;
  b numeric;
  start_cur numeric;
  floor_b numeric;
  next_pos numeric;
  stop_at numeric;
  n bigint;
  p record;
  col_list text;
BEGIN
  created := 0;
  dropped := 0;
  rows_dropped := 0;
  SELECT c.relname INTO parent_name FROM pg_class c WHERE c.oid = parent;

  IF retention_interval IS NOT NULL THEN
    cutoff := CASE WHEN kind = 'id' THEN cur - retention_interval::numeric
                   ELSE extract(epoch FROM now() - retention_interval::interval) END;
  END IF;

  IF def IS NOT NULL THEN
    EXECUTE format('SELECT %s, %s FROM %s',
      CASE WHEN kind = 'id' THEN format('min(%I)', col) ELSE format('extract(epoch FROM min(%I))', col) END,
      CASE WHEN kind = 'id' THEN format('max(%I)', col) ELSE format('extract(epoch FROM max(%I))', col) END,
      def) INTO def_min, def_max;
  END IF;

  SELECT string_agg(format('%I', attname), ', ' ORDER BY attnum) INTO col_list
    FROM pg_attribute WHERE attrelid = parent AND attnum > 0 AND NOT attisdropped;

  start_cur := @schema@._block_start(kind, partition_interval, cur);
  IF cutoff IS NOT NULL THEN
    -- Blocks wholly older than the retention are not made (their rows, if
    -- any wait in the default partition, are deleted below).
    floor_b := @schema@._block_start(kind, partition_interval, cutoff);
  END IF;

  -- Behind the current position: only the blocks that hold rows waiting in
  -- the default partition (found through its index, block by block), so a
  -- stray old row does not make every partition in between.
  IF def_min IS NOT NULL THEN
    b := greatest(@schema@._block_start(kind, partition_interval, def_min), floor_b);
    WHILE b < start_cur LOOP
      EXECUTE format('SELECT %s FROM %s WHERE %I >= %s',
        CASE WHEN kind = 'id' THEN format('min(%I)', col) ELSE format('extract(epoch FROM min(%I))', col) END,
        def, col, @schema@._bound_literal(kind, b)) INTO next_pos;
      EXIT WHEN next_pos IS NULL OR next_pos >= start_cur;
      b := @schema@._block_start(kind, partition_interval, next_pos);
      IF @schema@._make_partition(parent, parent_name, def, kind, col, partition_interval, b, col_list) THEN
        created := created + 1;
      END IF;
      b := @schema@._block_next(kind, partition_interval, b);
    END LOOP;
  END IF;

  -- From the current block to `premake` blocks ahead (further when a burst
  -- already went past them).
  stop_at := start_cur;
  FOR i IN 1..premake LOOP
    stop_at := @schema@._block_next(kind, partition_interval, stop_at);
  END LOOP;
  IF def_max IS NOT NULL THEN
    stop_at := greatest(stop_at, @schema@._block_start(kind, partition_interval, def_max));
  END IF;
  b := greatest(start_cur, floor_b);
  WHILE b <= stop_at LOOP
    IF @schema@._make_partition(parent, parent_name, def, kind, col, partition_interval, b, col_list) THEN
      created := created + 1;
    END IF;
    b := @schema@._block_next(kind, partition_interval, b);
  END LOOP;

  IF cutoff IS NOT NULL THEN
    FOR p IN SELECT x.part FROM @schema@._partitions(parent, kind) x WHERE x.hi <= cutoff ORDER BY x.lo LOOP
      IF dropped = 0 THEN
        -- Parent first: DROP of a partition locks it and then the parent,
        -- which could deadlock with a reader holding the parent.
        EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', parent);
      END IF;
      EXECUTE format('SELECT count(*) FROM %s', p.part) INTO n;
      rows_dropped := rows_dropped + n;
      EXECUTE format('DROP TABLE %s', p.part);
      dropped := dropped + 1;
    END LOOP;
    IF def IS NOT NULL THEN
      EXECUTE format('WITH d AS (DELETE FROM %s WHERE %I < %s RETURNING 1) SELECT count(*) FROM d',
        def, col, @schema@._bound_literal(kind, cutoff)) INTO n;
      rows_dropped := rows_dropped + n;
    END IF;
  END IF;
END;
$$;

-- The columns and indexes of a partitioned queue / archive table.
CREATE FUNCTION @schema@._create_partitioned_table(
  queue_name text, prefix text, kind text, col text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tbl text := @schema@.format_table_name(queue_name, prefix);
BEGIN
  IF prefix = 'q' THEN
    -- BY DEFAULT (PGMQ 1.12.1) so rows can be moved between partitions
    -- with their msg_id.
    EXECUTE format(
      'CREATE TABLE @schema@.%I (
         msg_id bigint NOT NULL GENERATED BY DEFAULT AS IDENTITY,
         read_ct integer NOT NULL DEFAULT 0,
         enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
         last_read_at timestamp with time zone,
         vt timestamp with time zone NOT NULL,
         message jsonb,
         headers jsonb%s)
       PARTITION BY RANGE (%I)',
      tbl, CASE WHEN kind = 'id' THEN ', PRIMARY KEY (msg_id)' ELSE '' END, col);
    EXECUTE format('CREATE INDEX %I ON @schema@.%I (vt)', tbl || '_vt_idx', tbl);
  ELSE
    EXECUTE format(
      'CREATE TABLE @schema@.%I (
         msg_id bigint NOT NULL,
         read_ct integer NOT NULL DEFAULT 0,
         enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
         last_read_at timestamp with time zone,
         archived_at timestamp with time zone NOT NULL DEFAULT now(),
         vt timestamp with time zone NOT NULL,
         message jsonb,
         headers jsonb%s)
       PARTITION BY RANGE (%I)',
      tbl, CASE WHEN kind = 'id' THEN ', PRIMARY KEY (msg_id)' ELSE '' END, col);
    -- PGMQ names this index after the queue name as given.
    IF col <> 'archived_at' THEN
      EXECUTE format('CREATE INDEX %I ON @schema@.%I (archived_at)', 'archived_at_idx_' || queue_name, tbl);
    END IF;
  END IF;
  -- PGMQ's index on the partition column; a time-partitioned table also
  -- needs msg_id looked up (delete/archive/set_vt by id, reads in id order).
  IF kind = 'time' THEN
    EXECUTE format('CREATE INDEX %I ON @schema@.%I (%I)',
      CASE WHEN col = 'archived_at' THEN 'archived_at_idx_' || queue_name ELSE tbl || '_part_idx' END, tbl, col);
    EXECUTE format('CREATE INDEX %I ON @schema@.%I (msg_id)', tbl || '_msg_id_idx', tbl);
  END IF;
  EXECUTE format('CREATE TABLE @schema@.%I PARTITION OF @schema@.%I DEFAULT',
    @schema@._partition_name(tbl, 'default'), tbl);
END;
$$;

-- Runs the partition maintenance of one configured table (no locks taken).
CREATE FUNCTION @schema@._maintain_config(cfg @schema@._partition_config,
  OUT created integer, OUT dropped integer, OUT rows_dropped bigint)
LANGUAGE plpgsql AS $$
DECLARE
  qrel regclass := to_regclass(format('@schema@.%I', @schema@.format_table_name(cfg.queue_name, 'q')));
  rel regclass := to_regclass(format('@schema@.%I', @schema@.format_table_name(cfg.queue_name, cfg.prefix)));
  r record;
BEGIN
  created := 0;
  dropped := 0;
  rows_dropped := 0;
  IF rel IS NULL OR qrel IS NULL
     OR NOT EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = rel) THEN
    RETURN;
  END IF;
  SELECT * INTO r FROM @schema@._maintain_partitioned(
    rel, cfg.kind, cfg.control_column, cfg.partition_interval, cfg.retention_interval, cfg.premake,
    @schema@._current_position(qrel, cfg.kind));
  created := r.created;
  dropped := r.dropped;
  rows_dropped := r.rows_dropped;
  IF cfg.prefix = 'q' THEN
    PERFORM @schema@._fast_metrics_adjust(rel, -r.rows_dropped);
  END IF;
END;
$$;

-- ===========================================================================
-- Partitioned queues (PGMQ API, without pg_partman)
-- ===========================================================================
CREATE FUNCTION @schema@.create_partitioned(
  queue_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  premake integer DEFAULT 4)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  qtable text := @schema@.format_table_name(queue_name, 'q');
  atable text := @schema@.format_table_name(queue_name, 'a');
  kind text;
  cfg @schema@._partition_config;
BEGIN
  PERFORM @schema@.validate_queue_name(queue_name);
  IF premake IS NULL OR premake < 1 THEN
    RAISE EXCEPTION 'premake must be at least 1, got %', coalesce(premake::text, 'NULL');
  END IF;
  partition_interval := @schema@._normalize_interval(partition_interval);
  retention_interval := @schema@._normalize_interval(retention_interval);
  kind := @schema@._partition_kind(partition_interval);
  PERFORM @schema@._check_retention(kind, retention_interval);
  PERFORM @schema@.acquire_queue_lock(queue_name);

  INSERT INTO @schema@.meta (queue_name, is_partitioned, is_unlogged)
  SELECT queue_name, true, false
  WHERE NOT EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = create_partitioned.queue_name);

  -- Like create(): an existing queue is left as it is.
  IF to_regclass(format('@schema@.%I', qtable)) IS NULL THEN
    PERFORM @schema@._create_partitioned_table(queue_name, 'q', kind,
      CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'enqueued_at' END);
    EXECUTE format('GRANT SELECT (vt, enqueued_at) ON @schema@.%I TO pg_monitor', qtable);
    EXECUTE format('GRANT SELECT ON SEQUENCE @schema@.%I TO pg_monitor', qtable || '_msg_id_seq');
    INSERT INTO @schema@._partition_config AS c
    VALUES (queue_name, 'q', kind, CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'enqueued_at' END,
            btrim(partition_interval), btrim(retention_interval), premake)
    ON CONFLICT ON CONSTRAINT _partition_config_pkey DO NOTHING
    RETURNING * INTO cfg;
    IF cfg.queue_name IS NOT NULL THEN
      PERFORM @schema@._maintain_config(cfg);
    END IF;
  END IF;
  IF to_regclass(format('@schema@.%I', atable)) IS NULL THEN
    cfg := NULL;
    PERFORM @schema@._create_partitioned_table(queue_name, 'a', kind,
      CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'archived_at' END);
    INSERT INTO @schema@._partition_config AS c
    VALUES (queue_name, 'a', kind, CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'archived_at' END,
            btrim(partition_interval), btrim(retention_interval), premake)
    ON CONFLICT ON CONSTRAINT _partition_config_pkey DO NOTHING
    RETURNING * INTO cfg;
    IF cfg.queue_name IS NOT NULL THEN
      PERFORM @schema@._maintain_config(cfg);
    END IF;
  END IF;
END;
$$;

-- Replaces an existing queue's plain archive with a partitioned one. Unlike
-- PGMQ (which leaves the old rows in a_<name>_old), the archived rows are
-- moved into the new table in the same transaction.
CREATE FUNCTION @schema@.convert_archive_partitioned(
  table_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  leading_partition integer DEFAULT 10)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  atable text := @schema@.format_table_name(table_name, 'a');
  rel regclass := @schema@._queue_table(table_name, 'a');
  kind text;
  col text;
  old_name text;
  idx record;
  cfg @schema@._partition_config;
  cols text := 'msg_id, read_ct, enqueued_at, last_read_at, archived_at, vt, message, headers';
BEGIN
  IF EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = rel) THEN
    RAISE NOTICE 'Table % is already partitioned', atable;
    RETURN;
  END IF;
  IF leading_partition IS NULL OR leading_partition < 1 THEN
    RAISE EXCEPTION 'leading_partition must be at least 1, got %', coalesce(leading_partition::text, 'NULL');
  END IF;
  IF NOT EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = table_name) THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using pgmq.create()', table_name
      USING ERRCODE = 'PF202';
  END IF;
  partition_interval := @schema@._normalize_interval(partition_interval);
  retention_interval := @schema@._normalize_interval(retention_interval);
  kind := @schema@._partition_kind(partition_interval);
  PERFORM @schema@._check_retention(kind, retention_interval);
  col := CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'archived_at' END;
  PERFORM @schema@.acquire_queue_lock(table_name);
  EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', rel);

  -- Move the old table and its indexes out of the way of the new names.
  old_name := @schema@._partition_name(atable, 'old');
  EXECUTE format('ALTER TABLE %s RENAME TO %I', rel, old_name);
  FOR idx IN SELECT i.indexrelid::regclass AS r, i.indexrelid AS o FROM pg_index i WHERE i.indrelid = rel LOOP
    EXECUTE format('ALTER INDEX %s RENAME TO %I', idx.r, 'pgferry_old_idx_' || idx.o);
  END LOOP;

  PERFORM @schema@._create_partitioned_table(table_name, 'a', kind, col);
  INSERT INTO @schema@._partition_config
  VALUES (table_name, 'a', kind, col, btrim(partition_interval), btrim(retention_interval), leading_partition)
  ON CONFLICT ON CONSTRAINT _partition_config_pkey DO UPDATE
    SET kind = excluded.kind, control_column = excluded.control_column,
        partition_interval = excluded.partition_interval,
        retention_interval = excluded.retention_interval, premake = excluded.premake
  RETURNING * INTO cfg;
  PERFORM @schema@._maintain_config(cfg);
  EXECUTE format('INSERT INTO @schema@.%I (%s) SELECT %s FROM %s', atable, cols, cols, rel);
  -- Partitions for the moved rows, and retention over them.
  PERFORM @schema@._maintain_config(cfg);
  EXECUTE format('DROP TABLE %s', rel);
END;
$$;

-- metrics with PGMQ 1.12.1's default_partition_length, and the fast exact
-- path for queues with fast metrics enabled (see enable_fast_metrics).
CREATE OR REPLACE FUNCTION @schema@.metrics(queue_name text)
RETURNS @schema@.metrics_result LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  seq text := pg_get_serial_sequence(rel::text, 'msg_id');
  def regclass := @schema@._default_partition(rel);
  fast boolean := EXISTS (SELECT 1 FROM @schema@._fast_metrics f WHERE f.relid = rel);
  result @schema@.metrics_result;
BEGIN
  IF fast THEN
    -- One statement, so every figure comes from the same snapshot.
    -- queue_length: the counter (no scan). queue_visible_length: the length
    -- minus the invisible rows, counted on the vt index (cost grows with the
    -- messages in flight or delayed, not with the backlog). Ages: the
    -- enqueued_at index, first and last entry.
    EXECUTE format(
      'WITH n AS MATERIALIZED (
         SELECT f.base_count + coalesce((SELECT sum(d.delta) FROM @schema@._fast_metrics_delta d
                                          WHERE d.relid = f.relid), 0) AS len
           FROM @schema@._fast_metrics f WHERE f.relid = $2)
       SELECT $1, n.len,
              round(extract(epoch FROM now() - (SELECT max(enqueued_at) FROM %1$s)))::integer,
              round(extract(epoch FROM now() - (SELECT min(enqueued_at) FROM %1$s)))::integer,
              0::bigint, now(),
              n.len - (SELECT count(*) FROM %1$s WHERE vt > now()),
              %2$s
         FROM n',
      rel, CASE WHEN def IS NULL THEN 'NULL::bigint' ELSE format('(SELECT count(*) FROM %s)', def) END)
      INTO result USING queue_name, rel;
  ELSE
    EXECUTE format(
      'SELECT $1,
              count(*),
              round(extract(epoch FROM now() - max(enqueued_at)))::integer,
              round(extract(epoch FROM now() - min(enqueued_at)))::integer,
              0::bigint,
              now(),
              count(*) FILTER (WHERE vt <= now()),
              %s
         FROM %s',
      CASE WHEN def IS NULL THEN 'NULL::bigint' ELSE format('(SELECT count(*) FROM %s)', def) END, rel)
      INTO result USING queue_name;
  END IF;
  -- The highest msg_id ever issued (0 before the first send).
  EXECUTE format('SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM %s', seq)
    INTO result.total_messages;
  RETURN result;
END;
$$;

-- ===========================================================================
-- Fast metrics (pgferry addition, opt-in per queue)
-- ===========================================================================
CREATE FUNCTION @schema@._fast_metrics_on_insert()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO @schema@._fast_metrics_delta (relid, delta)
  SELECT TG_RELID, n FROM (SELECT count(*) AS n FROM new_rows) c WHERE n > 0;
  RETURN NULL;
END;
$$;

CREATE FUNCTION @schema@._fast_metrics_on_delete()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO @schema@._fast_metrics_delta (relid, delta)
  SELECT TG_RELID, -n FROM (SELECT count(*) AS n FROM old_rows) c WHERE n > 0;
  RETURN NULL;
END;
$$;

-- TRUNCATE holds ACCESS EXCLUSIVE, so no uncommitted delta can exist.
CREATE FUNCTION @schema@._fast_metrics_on_truncate()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM @schema@._fast_metrics_delta WHERE relid = TG_RELID;
  UPDATE @schema@._fast_metrics SET base_count = 0 WHERE relid = TG_RELID;
  RETURN NULL;
END;
$$;

CREATE FUNCTION @schema@._fast_metrics_forget()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM @schema@._fast_metrics_delta WHERE relid = OLD.relid;
  RETURN NULL;
END;
$$;

CREATE TRIGGER _fast_metrics_forget AFTER DELETE ON @schema@._fast_metrics
  FOR EACH ROW EXECUTE FUNCTION @schema@._fast_metrics_forget();

-- Counts the queue once (under a SHARE lock: writers wait, briefly) and
-- from then on keeps the count with statement-level triggers, so metrics()
-- is exact without scanning the table.
CREATE FUNCTION @schema@.enable_fast_metrics(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  tbl text := @schema@.format_table_name(queue_name, 'q');
  meta_name varchar;
  n bigint;
BEGIN
  SELECT m.queue_name INTO meta_name FROM @schema@.meta m WHERE m.queue_name = enable_fast_metrics.queue_name;
  IF meta_name IS NULL THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using pgmq.create()', queue_name
      USING ERRCODE = 'PF202';
  END IF;
  PERFORM @schema@.acquire_queue_lock(queue_name);
  IF EXISTS (SELECT 1 FROM @schema@._fast_metrics f WHERE f.relid = rel) THEN
    RETURN;
  END IF;
  EXECUTE format('LOCK TABLE %s IN SHARE MODE', rel);
  EXECUTE format('SELECT count(*) FROM %s', rel) INTO n;
  EXECUTE format('CREATE TRIGGER pgferry_fast_metrics_ins AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows
                  FOR EACH STATEMENT EXECUTE FUNCTION @schema@._fast_metrics_on_insert()', rel);
  EXECUTE format('CREATE TRIGGER pgferry_fast_metrics_del AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows
                  FOR EACH STATEMENT EXECUTE FUNCTION @schema@._fast_metrics_on_delete()', rel);
  EXECUTE format('CREATE TRIGGER pgferry_fast_metrics_trunc AFTER TRUNCATE ON %s
                  FOR EACH STATEMENT EXECUTE FUNCTION @schema@._fast_metrics_on_truncate()', rel);
  -- min/max(enqueued_at) without a scan; a time-partitioned queue has one.
  IF NOT EXISTS (
    SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
     WHERE i.indrelid = rel AND a.attname = 'enqueued_at') THEN
    EXECUTE format('CREATE INDEX %I ON %s (enqueued_at)', tbl || '_enqueued_at_idx', rel);
  END IF;
  DELETE FROM @schema@._fast_metrics_delta d WHERE d.relid = rel;
  INSERT INTO @schema@._fast_metrics (queue_name, relid, base_count) VALUES (meta_name, rel, n);
END;
$$;

CREATE FUNCTION @schema@.disable_fast_metrics(queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  tbl text := @schema@.format_table_name(queue_name, 'q');
BEGIN
  PERFORM @schema@.acquire_queue_lock(queue_name);
  IF NOT EXISTS (SELECT 1 FROM @schema@._fast_metrics f WHERE f.relid = rel) THEN
    RETURN false;
  END IF;
  EXECUTE format('DROP TRIGGER IF EXISTS pgferry_fast_metrics_ins ON %s', rel);
  EXECUTE format('DROP TRIGGER IF EXISTS pgferry_fast_metrics_del ON %s', rel);
  EXECUTE format('DROP TRIGGER IF EXISTS pgferry_fast_metrics_trunc ON %s', rel);
  EXECUTE format('DROP INDEX IF EXISTS @schema@.%I', tbl || '_enqueued_at_idx');
  DELETE FROM @schema@._fast_metrics f WHERE f.relid = rel;
  RETURN true;
END;
$$;

CREATE FUNCTION @schema@.fast_metrics_enabled(queue_name text)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM @schema@._fast_metrics f WHERE f.relid = @schema@._queue_table(queue_name));
$$;

-- ===========================================================================
-- Dead letters (pgferry addition)
-- ===========================================================================
-- Headers added to a dead-lettered message (prefix x-pgferry-dlq-):
--   x-pgferry-dlq-source-queue   queue it came from (policy's queue name)
--   x-pgferry-dlq-source-msg-id  its msg_id there
--   x-pgferry-dlq-read-count     how often it had been read
--   x-pgferry-dlq-enqueued-at    when it was first enqueued
--   x-pgferry-dlq-moved-at       when it was moved
--   x-pgferry-dlq-headers        its original headers, only when they were
--                                not a JSON object (NULL, array, scalar)
CREATE FUNCTION @schema@._dead_letter_headers(
  headers jsonb, source_queue text, msg_id bigint, read_ct integer, enqueued_at timestamp with time zone)
RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN jsonb_typeof(headers) = 'object' THEN headers
              ELSE jsonb_build_object('x-pgferry-dlq-headers', coalesce(headers, 'null'::jsonb)) END
         || jsonb_build_object(
              'x-pgferry-dlq-source-queue', source_queue,
              'x-pgferry-dlq-source-msg-id', msg_id,
              'x-pgferry-dlq-read-count', read_ct,
              'x-pgferry-dlq-enqueued-at', enqueued_at,
              'x-pgferry-dlq-moved-at', clock_timestamp());
$$;

-- The headers a message had before it was dead-lettered.
CREATE FUNCTION @schema@._dead_letter_original_headers(headers jsonb)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE
    WHEN jsonb_typeof(headers) <> 'object' THEN headers
    WHEN headers ? 'x-pgferry-dlq-headers' THEN nullif(headers -> 'x-pgferry-dlq-headers', 'null'::jsonb)
    ELSE (SELECT coalesce(jsonb_object_agg(k, v), '{}'::jsonb)
            FROM jsonb_each(headers) AS e(k, v) WHERE k NOT LIKE 'x-pgferry-dlq-%')
  END;
$$;

-- Moves up to `batch` visible messages read max_read_count times or more.
-- SKIP LOCKED: a message another transaction is reading is left to it.
CREATE FUNCTION @schema@._move_dead_letters(
  queue_name text, dead_letter_queue text, max_read_count integer, batch integer)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  -- max_read_count is spliced as an integer literal so the planner can match
  -- the partial index q_<name>_dlq_idx (vt) WHERE read_ct >= max, and the
  -- clock is a parameter (not the volatile clock_timestamp() in the WHERE) so
  -- `vt <= $3` is an index condition: exhausted messages still in flight are
  -- not even visited. ORDER BY vt (the longest waiting first), which that
  -- index returns as is: with ORDER BY msg_id, or none, the planner, misled
  -- by the correlation of read_ct and vt, walked the whole table under the
  -- LIMIT (17 ms per read on 200,000 messages, against 0.1 ms). The moved
  -- messages are inserted in msg_id order.
  EXECUTE format(
    'WITH c AS (
       SELECT msg_id FROM %1$s
        WHERE read_ct >= %3$s AND vt <= $3
        ORDER BY vt LIMIT $1 FOR UPDATE SKIP LOCKED),
     moved AS (
       DELETE FROM %1$s m USING c WHERE m.msg_id = c.msg_id
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.message, m.headers),
     ins AS (
       INSERT INTO %2$s (vt, message, headers)
       SELECT clock_timestamp(), message,
              @schema@._dead_letter_headers(headers, $2, msg_id, read_ct, enqueued_at)
         FROM moved ORDER BY msg_id
       RETURNING 1)
     SELECT count(*) FROM ins',
    @schema@._queue_table(queue_name), @schema@._queue_table(dead_letter_queue), max_read_count::integer)
    INTO n USING batch, queue_name, clock_timestamp();
  RETURN n;
END;
$$;

-- Run by read (and every group read) before it selects messages. Without a
-- policy this is one primary-key probe of a tiny table.
CREATE OR REPLACE FUNCTION @schema@._before_read(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tbl text := lower('q_' || _before_read.queue_name);
  due timestamp with time zone;
  p record;
BEGIN
  -- The common case, policy or not: one probe of an index, nothing due.
  SELECT min(d.due_at) INTO due FROM @schema@._dead_letter_due d WHERE d.queue_table = tbl;
  IF due IS NULL OR due > clock_timestamp() THEN
    RETURN;
  END IF;
  SELECT d.queue_name, d.dead_letter_queue, d.max_read_count INTO p
    FROM @schema@._dead_letter_policy d WHERE d.queue_table = tbl;
  IF NOT FOUND THEN
    RETURN; -- entries outlive a policy only when its queue was dropped under another name's case
  END IF;
  PERFORM @schema@._move_dead_letters(p.queue_name, p.dead_letter_queue, p.max_read_count, 1000);
  -- Forget the handled entries and note when the next exhausted message
  -- (one still in flight, or one another reader holds) falls due. Under
  -- REPEATABLE READ the entries are left for a READ COMMITTED reader: the
  -- DELETE could meet rows deleted after the snapshot and fail.
  IF current_setting('transaction_isolation') = 'read committed' THEN
    DELETE FROM @schema@._dead_letter_due d
     WHERE d.ctid IN (SELECT x.ctid FROM @schema@._dead_letter_due x
                       WHERE x.queue_table = tbl AND x.due_at <= clock_timestamp()
                         FOR UPDATE SKIP LOCKED);
    EXECUTE format(
      'INSERT INTO @schema@._dead_letter_due (queue_table, due_at)
       SELECT $1, m.v FROM (SELECT min(vt) AS v FROM @schema@.%I WHERE read_ct >= %s) m
        WHERE m.v IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM @schema@._dead_letter_due d WHERE d.queue_table = $1 AND d.due_at <= m.v)',
      tbl, p.max_read_count::integer) USING tbl;
  END IF;
END;
$$;

-- Fires only for rows at or past the read limit (WHEN), i.e. once per
-- exhausted message (and on set_vt of one): appends when it falls due.
CREATE FUNCTION @schema@._dead_letter_exhausted()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO @schema@._dead_letter_due (queue_table, due_at) VALUES (TG_ARGV[0], NEW.vt);
  RETURN NULL;
END;
$$;

-- Sets (or replaces) the queue's policy: a message read max_read_count
-- times that becomes visible again is moved to dead_letter_queue by the next
-- read. A BEFORE UPDATE trigger guarantees no read ever hands it out an
-- extra time, even when its visibility runs out between _before_read and
-- the read's own selection.
CREATE FUNCTION @schema@.set_dead_letter_policy(
  queue_name text, dead_letter_queue text, max_read_count integer)
RETURNS void LANGUAGE plpgsql
-- quiet the DROP ... IF EXISTS notices
SET client_min_messages = warning AS $$
DECLARE
  rel regclass;
  tbl text;
  src varchar;
  dst varchar;
BEGIN
  IF max_read_count IS NULL OR max_read_count < 1 THEN
    RAISE EXCEPTION 'max_read_count must be at least 1, got %', coalesce(max_read_count::text, 'NULL')
      USING ERRCODE = 'PF201';
  END IF;
  SELECT m.queue_name INTO src FROM @schema@.meta m WHERE m.queue_name = set_dead_letter_policy.queue_name;
  IF src IS NULL THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using pgmq.create()', queue_name
      USING ERRCODE = 'PF202';
  END IF;
  SELECT m.queue_name INTO dst FROM @schema@.meta m WHERE m.queue_name = set_dead_letter_policy.dead_letter_queue;
  IF dst IS NULL THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using pgmq.create()', dead_letter_queue
      USING ERRCODE = 'PF202';
  END IF;
  rel := @schema@._queue_table(queue_name);
  PERFORM @schema@._queue_table(dead_letter_queue);
  tbl := @schema@.format_table_name(queue_name, 'q');
  IF tbl = @schema@.format_table_name(dead_letter_queue, 'q') THEN
    RAISE EXCEPTION 'a queue cannot be its own dead-letter queue: %', queue_name USING ERRCODE = 'PF201';
  END IF;
  PERFORM @schema@.acquire_queue_lock(queue_name);

  EXECUTE format('DROP TRIGGER IF EXISTS pgferry_dlq_guard ON %s', rel);
  EXECUTE format('DROP TRIGGER IF EXISTS pgferry_dlq_exhausted ON %s', rel);
  EXECUTE format('DROP INDEX IF EXISTS @schema@.%I', tbl || '_dlq_idx');
  EXECUTE format(
    'CREATE TRIGGER pgferry_dlq_exhausted AFTER INSERT OR UPDATE OF read_ct, vt ON %s FOR EACH ROW
       WHEN (NEW.read_ct >= %s)
       EXECUTE FUNCTION @schema@._dead_letter_exhausted(%L)', rel, max_read_count, tbl);
  -- Messages already at the (new) limit are looked at by the next read.
  INSERT INTO @schema@._dead_letter_due (queue_table, due_at) VALUES (tbl, '-infinity');
  -- WHEN is evaluated without calling the function: free for every update
  -- that does not push read_ct past the limit.
  EXECUTE format(
    'CREATE TRIGGER pgferry_dlq_guard BEFORE UPDATE OF read_ct ON %s FOR EACH ROW
       WHEN (OLD.read_ct >= %s AND NEW.read_ct > OLD.read_ct)
       EXECUTE FUNCTION @schema@._dead_letter_guard()', rel, max_read_count);
  -- Only exhausted messages enter this index, so finding them is a probe.
  EXECUTE format('CREATE INDEX %I ON %s (vt) WHERE read_ct >= %s', tbl || '_dlq_idx', rel, max_read_count);

  INSERT INTO @schema@._dead_letter_policy (queue_name, queue_table, dead_letter_queue, max_read_count)
  VALUES (src, tbl, dst, max_read_count)
  ON CONFLICT ON CONSTRAINT _dead_letter_policy_pkey DO UPDATE
    SET dead_letter_queue = excluded.dead_letter_queue, max_read_count = excluded.max_read_count,
        queue_table = excluded.queue_table;
END;
$$;

CREATE FUNCTION @schema@._dead_letter_guard()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Skip the update: the read does not return this row; the next read's
  -- _before_read moves it to the dead-letter queue.
  RETURN NULL;
END;
$$;

CREATE FUNCTION @schema@.get_dead_letter_policy(queue_name text)
RETURNS TABLE (queue_name text, dead_letter_queue text, max_read_count integer)
LANGUAGE sql STABLE AS $$
  SELECT d.queue_name::text, d.dead_letter_queue::text, d.max_read_count
    FROM @schema@._dead_letter_policy d WHERE d.queue_name = get_dead_letter_policy.queue_name;
$$;

CREATE FUNCTION @schema@.list_dead_letter_policies()
RETURNS TABLE (queue_name text, dead_letter_queue text, max_read_count integer)
LANGUAGE sql STABLE AS $$
  SELECT d.queue_name::text, d.dead_letter_queue::text, d.max_read_count
    FROM @schema@._dead_letter_policy d ORDER BY d.queue_name;
$$;

CREATE FUNCTION @schema@.clear_dead_letter_policy(queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  tbl text;
BEGIN
  SELECT d.queue_table INTO tbl FROM @schema@._dead_letter_policy d
   WHERE d.queue_name = clear_dead_letter_policy.queue_name;
  IF tbl IS NULL THEN
    RETURN false;
  END IF;
  PERFORM @schema@.acquire_queue_lock(queue_name);
  -- The guard trigger and index go with the row (_dead_letter_policy_gone).
  DELETE FROM @schema@._dead_letter_policy d WHERE d.queue_name = clear_dead_letter_policy.queue_name;
  RETURN true;
END;
$$;

-- A policy row also disappears by cascade when its dead-letter queue is
-- dropped: the guard must go with it, or exhausted messages could never be
-- read again.
CREATE FUNCTION @schema@._dead_letter_policy_gone()
RETURNS trigger LANGUAGE plpgsql SET client_min_messages = warning AS $$
DECLARE
  rel regclass := to_regclass(format('@schema@.%I', OLD.queue_table));
BEGIN
  IF rel IS NOT NULL THEN
    EXECUTE format('DROP TRIGGER IF EXISTS pgferry_dlq_guard ON %s', rel);
    EXECUTE format('DROP TRIGGER IF EXISTS pgferry_dlq_exhausted ON %s', rel);
    EXECUTE format('DROP INDEX IF EXISTS @schema@.%I', OLD.queue_table || '_dlq_idx');
  END IF;
  DELETE FROM @schema@._dead_letter_due d WHERE d.queue_table = OLD.queue_table;
  RETURN NULL;
END;
$$;

CREATE TRIGGER _dead_letter_policy_gone AFTER DELETE ON @schema@._dead_letter_policy
  FOR EACH ROW EXECUTE FUNCTION @schema@._dead_letter_policy_gone();

-- Dead letters in msg_id order, unchanged (no read_ct, no vt change).
CREATE FUNCTION @schema@.list_dead_letters(
  dead_letter_queue text, qty integer DEFAULT 100, after_msg_id bigint DEFAULT 0,
  source_queue text DEFAULT NULL)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM %s
      WHERE msg_id > $2 AND ($3 IS NULL OR headers ->> ''x-pgferry-dlq-source-queue'' = $3)
      ORDER BY msg_id LIMIT $1', @schema@._queue_table(dead_letter_queue))
    USING qty, coalesce(after_msg_id, 0), source_queue;
END;
$$;

-- Moves dead letters back to the queue they came from (read_ct 0, visible
-- now, original headers), in msg_id order; returns (dead-letter id, new id).
CREATE FUNCTION @schema@._requeue_dead_letters(
  dead_letter_queue text, msg_ids bigint[], source_queue text, max_count integer)
RETURNS TABLE (dead_letter_msg_id bigint, queue_name text, new_msg_id bigint) LANGUAGE plpgsql AS $$
DECLARE
  dlq regclass := @schema@._queue_table(dead_letter_queue);
  r record;
  new_id bigint;
BEGIN
  FOR r IN EXECUTE format(
    'DELETE FROM %1$s m USING (
       SELECT msg_id FROM %1$s
        WHERE ($1 IS NULL OR msg_id = ANY($1))
          AND ($2 IS NULL OR headers ->> ''x-pgferry-dlq-source-queue'' = $2)
          AND headers ? ''x-pgferry-dlq-source-queue''
        ORDER BY msg_id LIMIT $3 FOR UPDATE SKIP LOCKED) c
      WHERE m.msg_id = c.msg_id
     RETURNING m.msg_id, m.message, m.headers', dlq)
    USING msg_ids, source_queue, max_count
  LOOP
    EXECUTE format('INSERT INTO %s (vt, message, headers) VALUES (clock_timestamp(), $1, $2) RETURNING msg_id',
      @schema@._queue_table(r.headers ->> 'x-pgferry-dlq-source-queue'))
      INTO new_id USING r.message, @schema@._dead_letter_original_headers(r.headers);
    dead_letter_msg_id := r.msg_id;
    queue_name := r.headers ->> 'x-pgferry-dlq-source-queue';
    new_msg_id := new_id;
    RETURN NEXT;
  END LOOP;
END;
$$;

-- One dead letter back to its queue; the new msg_id, or NULL when there is no
-- such dead letter (or another transaction holds it).
CREATE FUNCTION @schema@.requeue_dead_letter(dead_letter_queue text, msg_id bigint)
RETURNS bigint LANGUAGE sql AS $$
  SELECT r.new_msg_id FROM @schema@._requeue_dead_letters(dead_letter_queue, ARRAY[msg_id], NULL, 1) r;
$$;

-- All dead letters (optionally only those from source_queue) back to their
-- queues; returns how many moved.
CREATE FUNCTION @schema@.requeue_dead_letters(dead_letter_queue text, source_queue text DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
  SELECT count(*) FROM @schema@._requeue_dead_letters(dead_letter_queue, NULL, source_queue, NULL);
$$;

-- Deletes dead letters (optionally only those from source_queue); returns how many.
CREATE FUNCTION @schema@.purge_dead_letters(dead_letter_queue text, source_queue text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE format(
    'WITH d AS (DELETE FROM %s WHERE $1 IS NULL OR headers ->> ''x-pgferry-dlq-source-queue'' = $1 RETURNING 1)
     SELECT count(*) FROM d', @schema@._queue_table(dead_letter_queue))
    INTO n USING source_queue;
  RETURN n;
END;
$$;

-- ===========================================================================
-- Archive retention (pgferry addition)
-- ===========================================================================
-- NULL clears it. Applied by run_maintenance, in batches.
CREATE FUNCTION @schema@.set_archive_retention(queue_name text, retention interval)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  name varchar;
BEGIN
  PERFORM @schema@._queue_table(queue_name, 'a');
  SELECT m.queue_name INTO name FROM @schema@.meta m WHERE m.queue_name = set_archive_retention.queue_name;
  IF name IS NULL THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using pgmq.create()', queue_name
      USING ERRCODE = 'PF202';
  END IF;
  IF retention IS NULL THEN
    DELETE FROM @schema@._archive_retention r WHERE r.queue_name = name;
    RETURN;
  END IF;
  IF retention <= interval '0' THEN
    RAISE EXCEPTION 'retention must be positive, got %', retention USING ERRCODE = 'PF201';
  END IF;
  INSERT INTO @schema@._archive_retention AS r (queue_name, retention) VALUES (name, retention)
  ON CONFLICT ON CONSTRAINT _archive_retention_pkey DO UPDATE SET retention = excluded.retention;
END;
$$;

CREATE FUNCTION @schema@.get_archive_retention(queue_name text)
RETURNS interval LANGUAGE sql STABLE AS $$
  SELECT r.retention FROM @schema@._archive_retention r WHERE r.queue_name = get_archive_retention.queue_name;
$$;

-- ===========================================================================
-- Maintenance entry point
-- ===========================================================================
-- One queue's periodic work: partitions (made ahead, filled from the default
-- partition, dropped per retention), archive retention (one batch of at most
-- batch_size rows: call again while more_pending), fast-metrics compaction.
-- Concurrent callers are safe: a transaction-scoped advisory lock per queue
-- makes the second one return skipped = true (works behind poolers, unlike a
-- session lock).
CREATE FUNCTION @schema@.run_maintenance(queue_name text, batch_size integer DEFAULT 10000)
RETURNS @schema@.maintenance_result LANGUAGE plpgsql AS $$
DECLARE
  res @schema@.maintenance_result;
  cfg @schema@._partition_config;
  r record;
  ret interval;
  arel regclass;
  fm @schema@._fast_metrics;
BEGIN
  IF batch_size IS NULL OR batch_size < 1 THEN
    RAISE EXCEPTION 'batch_size must be at least 1, got %', coalesce(batch_size::text, 'NULL')
      USING ERRCODE = 'PF201';
  END IF;
  res := ROW(queue_name, false, 0, 0, 0, 0, false);
  IF NOT pg_try_advisory_xact_lock(hashtext('pgferry.maintenance'), hashtext(lower(queue_name))) THEN
    res.skipped := true;
    RETURN res;
  END IF;
  PERFORM @schema@.acquire_queue_lock(queue_name);

  FOR cfg IN SELECT * FROM @schema@._partition_config c WHERE c.queue_name = run_maintenance.queue_name
             ORDER BY c.prefix DESC LOOP
    SELECT * INTO r FROM @schema@._maintain_config(cfg);
    res.partitions_created := res.partitions_created + r.created;
    res.partitions_dropped := res.partitions_dropped + r.dropped;
    res.rows_dropped := res.rows_dropped + r.rows_dropped;
  END LOOP;

  SELECT a.retention INTO ret FROM @schema@._archive_retention a WHERE a.queue_name = run_maintenance.queue_name;
  arel := to_regclass(format('@schema@.%I', @schema@.format_table_name(queue_name, 'a')));
  IF ret IS NOT NULL AND arel IS NOT NULL THEN
    -- Oldest first, through the archived_at index.
    EXECUTE format(
      'WITH c AS (SELECT msg_id FROM %1$s WHERE archived_at < now() - $1 ORDER BY archived_at LIMIT $2),
            d AS (DELETE FROM %1$s a USING c WHERE a.msg_id = c.msg_id RETURNING 1)
       SELECT count(*) FROM d', arel)
      INTO res.archive_rows_deleted USING ret, batch_size;
    res.more_pending := res.archive_rows_deleted >= batch_size;
  END IF;

  SELECT f.* INTO fm FROM @schema@._fast_metrics f WHERE f.queue_name = run_maintenance.queue_name;
  IF fm.relid IS NOT NULL THEN
    WITH d AS (DELETE FROM @schema@._fast_metrics_delta x WHERE x.relid = fm.relid RETURNING x.delta)
    UPDATE @schema@._fast_metrics f SET base_count = f.base_count + (SELECT coalesce(sum(delta), 0) FROM d)
     WHERE f.relid = fm.relid;
  END IF;
  RETURN res;
END;
$$;

-- The queues that have periodic work (what a scheduler should iterate).
CREATE FUNCTION @schema@.list_maintained_queues()
RETURNS SETOF text LANGUAGE sql STABLE AS $$
  SELECT queue_name::text FROM @schema@._partition_config
  UNION SELECT queue_name::text FROM @schema@._archive_retention
  UNION SELECT queue_name::text FROM @schema@._fast_metrics
  ORDER BY 1;
$$;

-- Every maintained queue, each with one call of run_maintenance (all in the
-- caller's transaction: a scheduler should rather call run_maintenance(q)
-- per queue, which keeps each transaction short).
CREATE FUNCTION @schema@.run_maintenance()
RETURNS SETOF @schema@.maintenance_result LANGUAGE plpgsql AS $$
DECLARE
  q text;
BEGIN
  FOR q IN SELECT * FROM @schema@.list_maintained_queues() LOOP
    RETURN NEXT @schema@.run_maintenance(q);
  END LOOP;
END;
$$;
