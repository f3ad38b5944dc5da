-- pgferry queue engine, migration 12: PGMQ edge cases found by the
-- compatibility audit of 2026-12. Pinned by
-- test/queue/compat-audit-convert.test.ts and
-- test/queue/compat-audit-grouped.test.ts.

-- ---------------------------------------------------------------------------
-- convert_archive_partitioned: PGMQ returns normally, with a NOTICE, both when
-- the archive is already partitioned and when there is no archive table at
-- all (migration 3 raised 42P01 for the latter). PGMQ quirk, reproduced: its
-- notices are written 'Table %s …', where only % is a placeholder, so the
-- table name is followed by a stray "s" ("Table a_jobss is already
-- partitioned", "Table a_nopes does not exists"); its regression test output
-- shows exactly that. The conversion itself moves to
-- _convert_archive_partitioned unchanged (the TypeScript client calls it
-- directly, so a missing queue stays a QueueNotFoundError there).
-- ---------------------------------------------------------------------------
ALTER FUNCTION @schema@.convert_archive_partitioned(text, text, text, integer)
  RENAME TO _convert_archive_partitioned;

CREATE FUNCTION @schema@.convert_archive_partitioned(
  table_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  leading_partition integer DEFAULT 10)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  -- Invalid characters raise P0001 here, and a NULL name 22004 (as in PGMQ,
  -- whose declarations format the qualified name the same way).
  atable text := @schema@.format_table_name(table_name, 'a');
  rel regclass := to_regclass(format('@schema@.%I', atable));
BEGIN
  IF rel IS NOT NULL AND EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = rel) THEN
    RAISE NOTICE 'Table %s is already partitioned', atable;
    RETURN;
  END IF;
  IF rel IS NULL THEN
    RAISE NOTICE 'Table %s does not exists', atable;
    RETURN;
  END IF;
  PERFORM @schema@._convert_archive_partitioned(
    table_name, partition_interval, retention_interval, leading_partition);
END;
$$;

-- ---------------------------------------------------------------------------
-- A NULL qty in read_grouped / read_grouped_rr (and their polling forms):
-- no rows, as in PGMQ (see the comment in the gate). _read_grouped is
-- migration 7's, with that one check added at the top.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@._read_grouped(
  queue_name text, vt timestamp with time zone, qty integer, mode text)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  visible boolean;
  prefix_len bigint;
  complete boolean;
  g record;
  cand bigint[];
  ids bigint[];
  prios integer[];
  ranks integer[];
  ngroups integer;
  have bigint;
  take integer;
BEGIN
  -- PGMQ quirk, reproduced: read_grouped and read_grouped_rr keep the picks
  -- whose rank is <= qty, never true for NULL, so a NULL qty takes nothing
  -- (after the 42P01 check above, in rel's declaration). read_grouped_head
  -- uses LIMIT there, so NULL is every head.
  IF qty IS NULL AND mode IN ('rr', 'grouped') THEN
    RETURN;
  END IF;
  IF qty < 0 AND mode IN ('rr', 'grouped') THEN
    -- A missing queue still raises 42P01 first, as there.
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE vt <= clock_timestamp())', rel)
      INTO visible;
    IF mode = 'rr' OR NOT visible THEN
      RETURN;
    END IF;
  END IF;
  IF qty IS NULL OR qty <= 0 OR (mode = 'grouped' AND NOT EXISTS (
       SELECT 1 FROM pg_catalog.pg_class i JOIN pg_catalog.pg_index x ON x.indexrelid = i.oid
        WHERE x.indrelid = rel
          AND i.relname = @schema@.format_table_name(queue_name, 'q') || '_fifo_grp_idx')) THEN
    -- read_grouped cannot list a group's messages without a scan when the
    -- group-key index is missing: the full pass.
    RETURN QUERY SELECT * FROM @schema@._read_grouped_core(queue_name, vt, qty, mode);
    RETURN;
  END IF;
  PERFORM @schema@._before_read(queue_name);

  -- A prefix of a few rows per wanted message, 8 times longer on each retry.
  prefix_len := greatest(qty::bigint * 4, 64);
  LOOP
    ids := '{}'; prios := '{}'; ranks := '{}'; ngroups := 0; have := 0;
    -- The group key is compared and grouped in the "C" collation: equality
    -- is the same, and it sorts and hashes several times faster.
    FOR g IN EXECUTE format(
      'SELECT grp, head FROM (
         SELECT DISTINCT ON (grp) grp, msg_id AS head, vis
           FROM (SELECT COALESCE(headers ->> ''x-pgmq-group'', ''_default_fifo_group'') COLLATE "C" AS grp,
                        msg_id, vt <= $1 AS vis
                   FROM %s ORDER BY msg_id LIMIT $2) p
          ORDER BY grp, msg_id) s
        WHERE vis
        ORDER BY head', rel)
      USING clock_timestamp(), prefix_len
    LOOP
      IF pg_try_advisory_xact_lock(hashtextextended(g.grp, 0)) THEN
        IF mode <> 'grouped' THEN
          -- head: heads only; rr: only the first round is used when qty
          -- groups are found (when fewer are, the full pass runs, below).
          cand := ARRAY[g.head];
        ELSE
          EXECUTE format(
            'SELECT ARRAY(SELECT msg_id FROM %s
                           WHERE COALESCE(headers ->> ''x-pgmq-group'', ''_default_fifo_group'') = $1
                             AND msg_id >= $2 AND vt <= clock_timestamp()
                           ORDER BY msg_id LIMIT $3)', rel)
            INTO cand USING g.grp, g.head, qty;
          IF cand[1] IS DISTINCT FROM g.head THEN
            CONTINUE; -- the group moved on since the prefix was read: skip it
          END IF;
        END IF;
        ngroups := ngroups + 1;
        take := cardinality(cand);
        ids := ids || cand;
        prios := prios || array_fill(ngroups, ARRAY[take]);
        ranks := ranks || ARRAY(SELECT generate_series(1, take));
        have := have + CASE WHEN mode = 'grouped' THEN take ELSE 1 END;
        EXIT WHEN have >= qty;
      END IF;
    END LOOP;
    EXIT WHEN have >= qty;
    -- Short of groups: was the prefix the whole queue?
    EXECUTE format('SELECT count(*) < $1 FROM (SELECT 1 FROM %s ORDER BY msg_id LIMIT $1) p', rel)
      INTO complete USING prefix_len;
    IF complete AND mode = 'rr' AND ngroups > 0 THEN
      -- Fewer groups than qty: later rounds are needed; the queue is small.
      RETURN QUERY SELECT * FROM @schema@._read_grouped_core(queue_name, vt, qty, mode);
      RETURN;
    END IF;
    -- head and grouped have every message they can take.
    EXIT WHEN complete;
    IF prefix_len >= 100000 THEN
      -- Groups are sparse in msg_id order: the full pass (it re-takes the
      -- same groups first; advisory locks are re-entrant).
      RETURN QUERY SELECT * FROM @schema@._read_grouped_core(queue_name, vt, qty, mode);
      RETURN;
    END IF;
    prefix_len := prefix_len * 8;
  END LOOP;
  IF ngroups = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT * FROM @schema@._read_grouped_take(rel, ids, prios, ranks, qty, vt, mode);
END;
$$;

-- ---------------------------------------------------------------------------
-- create_fifo_index on a queue that already has its indexes: one NOTICE
-- (`relation "q_<name>_fifo_idx" already exists, skipping`), as in PGMQ,
-- which has only that index. pgferry's second index (the group key, migration
-- 7) is made only when missing, so it adds no notice of its own.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION @schema@._create_fifo_index_if_not_exists(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  qtable text := @schema@.format_table_name(queue_name, 'q');
BEGIN
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (headers)', qtable || '_fifo_idx', rel);
  IF to_regclass(format('@schema@.%I', qtable || '_fifo_grp_idx')) IS NULL THEN
    -- IF NOT EXISTS still: a concurrent call may have made it meanwhile.
    EXECUTE format(
      'CREATE INDEX IF NOT EXISTS %I ON %s ((COALESCE(headers ->> ''x-pgmq-group'', ''_default_fifo_group'')), msg_id)',
      qtable || '_fifo_grp_idx', rel);
  END IF;
END;
$$;
