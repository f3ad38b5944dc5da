-- pgferry queue engine, migration 7: fast FIFO group reads.
--
-- Until now every group read aggregated the whole queue (one pass, a hash
-- aggregate of every group) before picking: ~4 ms at 10,000 messages in
-- 1,000 groups against ~0.6 ms for a plain read. Two changes, same results:
--
-- 1. Groups are found from a PREFIX of the queue in msg_id order (the
--    primary key), not the whole table. The prefix holds every message with
--    a msg_id up to its last one, so a group whose first row in the prefix
--    is its head (lowest msg_id) is known exactly, and groups whose head lies
--    in the prefix come, in head order, before every other group: the
--    prefix's eligible groups are exactly the first ones of the full pass.
--    When the prefix does not yield enough groups and does not cover the
--    queue, the read falls back to the full pass (_read_grouped_core,
--    unchanged), so results never depend on the prefix size.
-- 2. A group's visible messages beyond its head come from a btree index on
--    (group key, msg_id), `q_<name>_fifo_grp_idx`, which create_fifo_index
--    now makes next to the reference's GIN index. Only read_grouped needs it
--    (read_grouped_head takes heads; read_grouped_rr takes one message per
--    group when it finds qty groups, and reads the whole queue otherwise);
--    read_grouped uses the full pass on a queue without it.
--
-- The prefix starts at max(4 * qty, 64) rows and grows 8 times per retry up
-- to 100,000 rows, then the full pass is used.
--
-- Concurrency: the group's advisory lock is taken before its messages are
-- listed (a fresh snapshot, after any reader that held the group committed),
-- and the group is used only if the head found in the prefix is still its
-- first visible message then; otherwise it is skipped for this read, as a
-- group another reader holds is. The final re-check, lock and update is the
-- same statement as before (_read_grouped_take).

CREATE OR REPLACE FUNCTION @schema@._create_fifo_index_if_not_exists(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  qtable text := @schema@.format_table_name(queue_name, 'q');
BEGIN
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (headers)', qtable || '_fifo_idx', rel);
  -- pgferry: the group key in msg_id order, for group reads (see above).
  EXECUTE format(
    'CREATE INDEX IF NOT EXISTS %I ON %s ((COALESCE(headers ->> ''x-pgmq-group'', ''_default_fifo_group'')), msg_id)',
    qtable || '_fifo_grp_idx', rel);
END;
$$;

-- Statement 2 of a group read: re-check the candidates (ids with their group
-- priority and rank) by primary key under a fresh snapshot, lock, update and
-- return them in selection order. The general statement is the one of
-- _read_grouped_core, unchanged.
CREATE FUNCTION @schema@._read_grouped_take(
  rel regclass, ids bigint[], prios integer[], ranks integer[], qty integer,
  vt timestamp with time zone, mode text)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  locked bigint;
BEGIN
  IF mode = 'grouped' AND cardinality(ids) > qty THEN
    -- The statement below takes the first qty in (group, msg_id) order, which
    -- is the array's order; a candidate can only be blocked by earlier ones.
    ids := ids[1:qty];
    prios := prios[1:qty];
    ranks := ranks[1:qty];
  END IF;
  IF mode = 'grouped' THEN
    -- Lock every candidate that is still visible. When all of them are, none
    -- was taken since it was listed, so nothing is blocked and the short
    -- statement below does what the general one would (the rows are ours
    -- now; the general statement, if needed, re-locks them without waiting).
    EXECUTE format(
      'SELECT count(*) FROM (SELECT 1 FROM unnest($1::bigint[]) AS c(msg_id)
                               JOIN %s m ON m.msg_id = c.msg_id
                              WHERE m.vt <= clock_timestamp()
                              FOR UPDATE OF m SKIP LOCKED) x', rel)
      INTO locked USING ids;
  END IF;
  IF (mode = 'grouped' AND locked = cardinality(ids))
     OR (cardinality(ids) <= qty AND cardinality(ids) = cardinality(ARRAY(SELECT DISTINCT unnest(prios)))) THEN
    -- One candidate per group and no more than qty of them (read_grouped_head,
    -- read_grouped_rr's first round), or every candidate locked and visible
    -- (read_grouped, above): nothing can block a candidate and the LIMIT cuts
    -- nothing, so the general statement reduces to this one.
    RETURN QUERY EXECUTE format(
      'WITH lk AS (
         SELECT m.msg_id, c.ord
           FROM unnest($1::bigint[]) WITH ORDINALITY AS c(msg_id, ord)
           JOIN %1$s m ON m.msg_id = c.msg_id
          WHERE m.vt <= clock_timestamp()
          FOR UPDATE OF m SKIP LOCKED),
       upd AS (
         UPDATE %1$s m
            SET vt = $2, read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
           FROM lk
          WHERE m.msg_id = lk.msg_id
         RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers, lk.ord)
       SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM upd ORDER BY ord',
      rel)
      USING ids, vt;
    RETURN;
  END IF;
  RETURN QUERY EXECUTE format(
    'WITH c AS (
       SELECT c.msg_id, c.prio, c.rnk,
              m.msg_id IS NOT NULL AND m.vt > clock_timestamp() AS taken,
              m.msg_id IS NOT NULL AND m.vt <= clock_timestamp() AS vis
         FROM unnest($1::bigint[], $2::integer[], $3::integer[]) AS c(msg_id, prio, rnk)
         LEFT JOIN %1$s m ON m.msg_id = c.msg_id),
     ok AS (
       SELECT msg_id, prio, rnk, vis,
              bool_or(taken) OVER (PARTITION BY prio ORDER BY rnk
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS blocked
         FROM c),
     sel AS (
       SELECT msg_id, row_number() OVER (ORDER BY %2$s) AS ord
         FROM ok
        WHERE vis AND blocked IS NOT TRUE
        ORDER BY %2$s
        LIMIT $4),
     lk AS (
       SELECT m.msg_id, sel.ord
         FROM %1$s m JOIN sel ON sel.msg_id = m.msg_id
        WHERE m.vt <= clock_timestamp()
        FOR UPDATE OF m SKIP LOCKED),
     upd AS (
       UPDATE %1$s m
          SET vt = $5, read_ct = m.read_ct + 1, last_read_at = clock_timestamp()
         FROM lk
        WHERE m.msg_id = lk.msg_id
       RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.last_read_at, m.vt, m.message, m.headers, lk.ord)
     SELECT msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers FROM upd ORDER BY ord',
    rel,
    CASE mode WHEN 'grouped' THEN 'prio, msg_id' WHEN 'rr' THEN 'rnk, prio' ELSE 'prio' END)
    USING ids, prios, ranks, qty, vt;
END;
$$;

-- The gate of 0005 (negative qty) stays; the body after it becomes the
-- prefix path, falling back to _read_grouped_core.
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
