-- pgferry queue engine, migration 2: FIFO groups, topics, insert/delete
-- notifications (PGMQ 1.13 API, reference §8–§10 and §12), plus pgferry's own
-- additions: stale-read protection (`*_if_held`) and `next_visible_at` for
-- wake-ups on delayed and expired messages.
--
-- Written from scratch against ../shared/reference/pgmq-api.md. Identifiers
-- built from queue names always go through format('%I') or a regclass.

-- ===========================================================================
-- FIFO groups (§8)
-- ===========================================================================
-- Group key: the text of header x-pgmq-group (a number 5 and a string "5"
-- are the same group), '_default_fifo_group' when absent or headers is NULL.
--
-- Why two statements and advisory locks (a pgferry hardening of the
-- reference's algorithm; single-reader results are identical):
-- one statement that computes "the group's head is visible" and then locks
-- rows with SKIP LOCKED is racy under concurrency. Reader 2 may compute its
-- snapshot while reader 1 is taking messages 1 and 2 of group A; reader 2
-- then skips 1 and 2 (locked, or no longer visible after re-check) and takes
-- 3 — handing out 3 while 1 is in flight. So every group read first
-- try-locks the groups it wants (pg_try_advisory_xact_lock on
-- hashtextextended(group, 0), the key read_grouped_rr uses in the
-- reference; shared by all queues, as there), and only then re-checks its
-- candidates with a NEW snapshot (each PL/pgSQL statement takes one in READ
-- COMMITTED). A reader that got a group's lock after another reader
-- committed sees that reader's updates, so a group is never handed out past
-- an in-flight message. Groups locked by a concurrent reader are skipped, so different
-- groups progress in parallel. Under REPEATABLE READ/SERIALIZABLE the
-- snapshot is fixed for the transaction and this guarantee does not hold.
--
-- Only as many groups are locked as the batch can use (advisory locks live
-- in the shared lock table; locking every group of a big queue per read, as
-- the reference's rr does, can exhaust it).
CREATE FUNCTION @schema@._read_grouped(
  queue_name text, vt timestamp with time zone, qty integer, mode text)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  g record;
  ids bigint[] := '{}';
  prios integer[] := '{}';
  ranks integer[] := '{}';
  ngroups integer := 0;
  have bigint := 0;
  take integer;
  order_by text;
BEGIN
  PERFORM @schema@._before_read(queue_name);
  IF qty < 0 THEN
    -- What LIMIT raises in the reference.
    RAISE EXCEPTION 'LIMIT must not be negative' USING ERRCODE = '2201W';
  END IF;
  IF qty = 0 THEN
    RETURN;
  END IF;

  -- Statement 1 (one pass over the queue): eligible groups — head (lowest
  -- msg_id regardless of visibility) is visible — oldest head first, each
  -- with its visible msg_ids in order. Lock as many groups as the batch can
  -- use and collect their candidates with (group priority, rank in group).
  --
  -- Measured on 10,000 messages in 1,000 groups: a hash aggregate with an
  -- unordered array_agg takes ~3 ms; array_agg(... ORDER BY msg_id) forces a
  -- sort-based aggregate and takes ~17 ms, so only the arrays of the groups we
  -- lock are sorted, below. head needs no array at all.
  FOR g IN EXECUTE format(
    'SELECT grp, visible_ids FROM (
       SELECT COALESCE(headers ->> ''x-pgmq-group'', ''_default_fifo_group'') AS grp,
              min(msg_id) AS head,
              min(msg_id) FILTER (WHERE vt <= $1) AS first_visible,
              %s AS visible_ids
         FROM %s GROUP BY 1) s
      WHERE head = first_visible
      ORDER BY head',
    CASE WHEN mode = 'head' THEN 'ARRAY[min(msg_id) FILTER (WHERE vt <= $1)]'
         ELSE 'array_agg(msg_id) FILTER (WHERE vt <= $1)' END,
    rel)
    USING clock_timestamp()
  LOOP
    IF pg_try_advisory_xact_lock(hashtextextended(g.grp, 0)) THEN
      ngroups := ngroups + 1;
      take := cardinality(g.visible_ids);
      IF qty IS NOT NULL THEN
        take := least(take, qty);
      END IF;
      ids := ids || ARRAY(SELECT x FROM unnest(g.visible_ids) AS x ORDER BY x LIMIT take);
      prios := prios || array_fill(ngroups, ARRAY[take]);
      ranks := ranks || ARRAY(SELECT generate_series(1, take));
      -- grouped: a group gives all its visible messages; rr/head: one per
      -- round, so qty groups are enough.
      have := have + CASE WHEN mode = 'grouped' THEN take ELSE 1 END;
      EXIT WHEN qty IS NOT NULL AND have >= qty;
    END IF;
  END LOOP;
  IF ngroups = 0 THEN
    RETURN;
  END IF;

  IF mode = 'grouped' THEN
    -- "Fill the batch from the oldest group": all visible messages of the
    -- first group, then the second, ... Quirk kept: visible messages after
    -- an invisible one that is later than the head are still taken
    -- (A = 1 visible, 2 in flight, 5 visible -> 1 and 5).
    order_by := 'prio, msg_id';
  ELSIF mode = 'rr' THEN
    -- Layered round robin: first message of every group, then the second...
    order_by := 'rnk, prio';
  ELSE
    -- head: at most one message per group, heads in msg_id order.
    order_by := 'prio';
  END IF;

  -- Statement 2 (fresh snapshot, groups held): re-check the candidates by
  -- primary key. A reader that held a group before us and committed in
  -- between took that group's first candidates, so within each group we keep
  -- only the candidates before the first one that is no longer visible
  -- (candidates deleted meanwhile were finished and are skipped). Then lock,
  -- update, and return in selection order (the reference defines the order
  -- for rr only; the other two may return any order, so we use the same).
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
    rel, order_by)
    USING ids, prios, ranks, qty, vt;
END;
$$;

-- Polling loop of read_with_poll around a group read: deadline first, so
-- max_poll_seconds = 0 returns empty at once without reading (reference quirk).
CREATE FUNCTION @schema@._read_grouped_with_poll(
  queue_name text, vt timestamp with time zone, qty integer,
  max_poll_seconds integer, poll_interval_ms integer, mode text)
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
    FOR r IN SELECT * FROM @schema@._read_grouped(queue_name, vt, qty, mode) LOOP
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

-- Public group reads. The timestamptz forms (1.12) set vt to exactly that
-- time; the integer forms are clock + vt seconds computed once at call start
-- (for the poll forms: before polling, not at the moment of the read).
CREATE FUNCTION @schema@.read_grouped(queue_name text, vt timestamp with time zone, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, vt, qty, 'grouped');
$$;

CREATE FUNCTION @schema@.read_grouped(queue_name text, vt integer, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, @schema@._delay_to_vt(vt), qty, 'grouped');
$$;

CREATE FUNCTION @schema@.read_grouped_rr(queue_name text, vt timestamp with time zone, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, vt, qty, 'rr');
$$;

CREATE FUNCTION @schema@.read_grouped_rr(queue_name text, vt integer, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, @schema@._delay_to_vt(vt), qty, 'rr');
$$;

CREATE FUNCTION @schema@.read_grouped_head(queue_name text, vt timestamp with time zone, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, vt, qty, 'head');
$$;

CREATE FUNCTION @schema@.read_grouped_head(queue_name text, vt integer, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, @schema@._delay_to_vt(vt), qty, 'head');
$$;

CREATE FUNCTION @schema@.read_grouped_with_poll(
  queue_name text, vt timestamp with time zone, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, vt, qty, max_poll_seconds, poll_interval_ms, 'grouped');
$$;

CREATE FUNCTION @schema@.read_grouped_with_poll(
  queue_name text, vt integer, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, @schema@._delay_to_vt(vt), qty, max_poll_seconds, poll_interval_ms, 'grouped');
$$;

CREATE FUNCTION @schema@.read_grouped_rr_with_poll(
  queue_name text, vt timestamp with time zone, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, vt, qty, max_poll_seconds, poll_interval_ms, 'rr');
$$;

CREATE FUNCTION @schema@.read_grouped_rr_with_poll(
  queue_name text, vt integer, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, @schema@._delay_to_vt(vt), qty, max_poll_seconds, poll_interval_ms, 'rr');
$$;

-- 1.11.2. The reference has only the integer form; the timestamptz form is
-- a pgferry addition so every group read takes an absolute vt.
CREATE FUNCTION @schema@.read_grouped_head_with_poll(
  queue_name text, vt timestamp with time zone, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, vt, qty, max_poll_seconds, poll_interval_ms, 'head');
$$;

CREATE FUNCTION @schema@.read_grouped_head_with_poll(
  queue_name text, vt integer, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, @schema@._delay_to_vt(vt), qty, max_poll_seconds, poll_interval_ms, 'head');
$$;

-- Untyped-parameter shims (pgferry addition, see the end of 0001_core.sql):
-- node-postgres sends untyped parameters, which makes the integer and
-- timestamptz overloads ambiguous (42725). A text vt wins for unknown
-- arguments and never matches typed calls.
CREATE FUNCTION @schema@.read_grouped(queue_name text, vt text, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, @schema@._vt_from_text(vt), qty, 'grouped');
$$;

CREATE FUNCTION @schema@.read_grouped_rr(queue_name text, vt text, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, @schema@._vt_from_text(vt), qty, 'rr');
$$;

CREATE FUNCTION @schema@.read_grouped_head(queue_name text, vt text, qty integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped(queue_name, @schema@._vt_from_text(vt), qty, 'head');
$$;

CREATE FUNCTION @schema@.read_grouped_with_poll(
  queue_name text, vt text, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, @schema@._vt_from_text(vt), qty, max_poll_seconds, poll_interval_ms, 'grouped');
$$;

CREATE FUNCTION @schema@.read_grouped_rr_with_poll(
  queue_name text, vt text, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, @schema@._vt_from_text(vt), qty, max_poll_seconds, poll_interval_ms, 'rr');
$$;

CREATE FUNCTION @schema@.read_grouped_head_with_poll(
  queue_name text, vt text, qty integer,
  max_poll_seconds integer DEFAULT 5, poll_interval_ms integer DEFAULT 100)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@._read_grouped_with_poll(
    queue_name, @schema@._vt_from_text(vt), qty, max_poll_seconds, poll_interval_ms, 'head');
$$;

-- GIN index on headers, q_<lower(name)>_fifo_idx, as the reference makes it.
CREATE FUNCTION @schema@._create_fifo_index_if_not_exists(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := @schema@._queue_table(queue_name);
  qtable text := @schema@.format_table_name(queue_name, 'q');
BEGIN
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON %s USING gin (headers)', qtable || '_fifo_idx', rel);
END;
$$;

CREATE FUNCTION @schema@.create_fifo_index(queue_name text)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._create_fifo_index_if_not_exists(queue_name);
$$;

CREATE FUNCTION @schema@.create_fifo_indexes_all()
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  q record;
BEGIN
  FOR q IN SELECT m.queue_name FROM @schema@.meta m LOOP
    PERFORM @schema@._create_fifo_index_if_not_exists(q.queue_name);
  END LOOP;
END;
$$;

-- ===========================================================================
-- Topics (§9)
-- ===========================================================================
CREATE FUNCTION @schema@.validate_routing_key(routing_key text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF routing_key IS NULL OR routing_key = '' THEN
    RAISE EXCEPTION 'routing_key cannot be NULL or empty';
  END IF;
  IF length(routing_key) > 255 THEN
    RAISE EXCEPTION 'routing_key length cannot exceed 255 characters, got % characters', length(routing_key);
  END IF;
  IF routing_key !~ '^[a-zA-Z0-9._-]+$' THEN
    RAISE EXCEPTION 'routing_key contains invalid characters. Only alphanumeric, dots, hyphens, and underscores are allowed. Got: %', routing_key;
  END IF;
  IF left(routing_key, 1) = '.' THEN
    RAISE EXCEPTION 'routing_key cannot start with a dot. Got: %', routing_key;
  END IF;
  IF right(routing_key, 1) = '.' THEN
    RAISE EXCEPTION 'routing_key cannot end with a dot. Got: %', routing_key;
  END IF;
  IF strpos(routing_key, '..') > 0 THEN
    RAISE EXCEPTION 'routing_key cannot contain consecutive dots. Got: %', routing_key;
  END IF;
  RETURN true;
END;
$$;

-- Wildcards inside a segment (`a*`, `x#y`) are accepted, as in the reference.
CREATE FUNCTION @schema@.validate_topic_pattern(pattern text)
RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF pattern IS NULL OR pattern = '' THEN
    RAISE EXCEPTION 'pattern cannot be NULL or empty';
  END IF;
  IF length(pattern) > 255 THEN
    RAISE EXCEPTION 'pattern length cannot exceed 255 characters, got % characters', length(pattern);
  END IF;
  IF pattern !~ '^[a-zA-Z0-9._\-*#]+$' THEN
    RAISE EXCEPTION 'pattern contains invalid characters. Only alphanumeric, dots, hyphens, underscores, *, and # are allowed. Got: %', pattern;
  END IF;
  IF left(pattern, 1) = '.' THEN
    RAISE EXCEPTION 'pattern cannot start with a dot. Got: %', pattern;
  END IF;
  IF right(pattern, 1) = '.' THEN
    RAISE EXCEPTION 'pattern cannot end with a dot. Got: %', pattern;
  END IF;
  IF strpos(pattern, '..') > 0 THEN
    RAISE EXCEPTION 'pattern cannot contain consecutive dots. Got: %', pattern;
  END IF;
  IF strpos(pattern, '**') > 0 THEN
    RAISE EXCEPTION 'pattern cannot contain consecutive stars (**). Use # for multi-segment matching. Got: %', pattern;
  END IF;
  IF strpos(pattern, '##') > 0 THEN
    RAISE EXCEPTION 'pattern cannot contain consecutive hashes (##). A single # already matches zero or more segments. Got: %', pattern;
  END IF;
  IF strpos(pattern, '*#') > 0 OR strpos(pattern, '#*') > 0 THEN
    RAISE EXCEPTION 'pattern cannot contain adjacent wildcards (*# or #*). Separate wildcards with dots. Got: %', pattern;
  END IF;
  RETURN true;
END;
$$;

-- compiled_regex: escape . + ? { } ( ) | [ ] \ ^ $, then * -> [^.]+ and
-- # -> .*, wrapped in ^…$. Quirk kept: the dot before # is literal, so
-- `fz.#` does not match `fz` (only `fz.<anything>`), and `#.b` does not
-- match `b`.
CREATE TABLE @schema@.topic_bindings (
  pattern text NOT NULL,
  queue_name text NOT NULL,
  bound_at timestamp with time zone NOT NULL DEFAULT now(),
  compiled_regex text GENERATED ALWAYS AS (
    '^' || replace(replace(
             regexp_replace(pattern, '([.+?{}()|\[\]\\^$])', '\\\1', 'g'),
             '*', '[^.]+'),
           '#', '.*') || '$') STORED,
  CONSTRAINT topic_bindings_unique_pattern_queue UNIQUE (pattern, queue_name),
  CONSTRAINT topic_bindings_meta_queue_name_fk FOREIGN KEY (queue_name)
    REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE
);

CREATE INDEX idx_topic_bindings_covering
  ON @schema@.topic_bindings (pattern) INCLUDE (queue_name, compiled_regex);

GRANT SELECT ON @schema@.topic_bindings TO pg_monitor;

CREATE FUNCTION @schema@.bind_topic(pattern text, queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM @schema@.validate_topic_pattern(pattern);
  IF queue_name IS NULL OR queue_name = '' THEN
    RAISE EXCEPTION 'queue_name cannot be NULL or empty';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = bind_topic.queue_name) THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using %.create()',
      queue_name, '@schema_name@';
  END IF;
  -- An identical binding is silently kept (no error, no new row).
  INSERT INTO @schema@.topic_bindings (pattern, queue_name)
  VALUES (bind_topic.pattern, bind_topic.queue_name)
  ON CONFLICT ON CONSTRAINT topic_bindings_unique_pattern_queue DO NOTHING;
END;
$$;

-- No pattern validation beyond NULL/'' (as in the reference).
CREATE FUNCTION @schema@.unbind_topic(pattern text, queue_name text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  IF pattern IS NULL OR pattern = '' THEN
    RAISE EXCEPTION 'pattern cannot be NULL or empty';
  END IF;
  IF queue_name IS NULL OR queue_name = '' THEN
    RAISE EXCEPTION 'queue_name cannot be NULL or empty';
  END IF;
  DELETE FROM @schema@.topic_bindings b
   WHERE b.pattern = unbind_topic.pattern AND b.queue_name = unbind_topic.queue_name;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END;
$$;

CREATE FUNCTION @schema@.test_routing(routing_key text)
RETURNS TABLE (pattern text, queue_name text, compiled_regex text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM @schema@.validate_routing_key(routing_key);
  RETURN QUERY
    SELECT b.pattern, b.queue_name, b.compiled_regex
      FROM @schema@.topic_bindings b
     WHERE test_routing.routing_key ~ b.compiled_regex
     ORDER BY b.pattern, b.queue_name;
END;
$$;

CREATE FUNCTION @schema@.list_topic_bindings()
RETURNS TABLE (pattern text, queue_name text, bound_at timestamp with time zone, compiled_regex text)
LANGUAGE sql STABLE AS $$
  SELECT b.pattern, b.queue_name, b.bound_at, b.compiled_regex
    FROM @schema@.topic_bindings b
   ORDER BY b.bound_at DESC, b.pattern, b.queue_name;
$$;

CREATE FUNCTION @schema@.list_topic_bindings(queue_name text)
RETURNS TABLE (pattern text, queue_name text, bound_at timestamp with time zone, compiled_regex text)
LANGUAGE sql STABLE AS $$
  SELECT b.pattern, b.queue_name, b.bound_at, b.compiled_regex
    FROM @schema@.topic_bindings b
   WHERE b.queue_name = $1
   ORDER BY b.bound_at DESC, b.pattern;
$$;

-- The distinct queues a routing key reaches, in queue_name order.
CREATE FUNCTION @schema@._topic_queues(routing_key text)
RETURNS SETOF text LANGUAGE sql STABLE AS $$
  SELECT DISTINCT b.queue_name FROM @schema@.topic_bindings b
   WHERE $1 ~ b.compiled_regex
   ORDER BY 1;
$$;

-- Returns how many queues got the message (0 when nothing matches: not an
-- error). Runs in the caller's transaction: one failing queue rolls back all.
CREATE FUNCTION @schema@.send_topic(routing_key text, msg jsonb, headers jsonb, delay integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  q text;
  n integer := 0;
  vt timestamp with time zone;
BEGIN
  PERFORM @schema@.validate_routing_key(routing_key);
  IF msg IS NULL THEN
    RAISE EXCEPTION 'msg cannot be NULL';
  END IF;
  IF delay < 0 THEN
    RAISE EXCEPTION 'delay cannot be negative, got: %', delay;
  END IF;
  vt := @schema@._delay_to_vt(delay);
  FOR q IN SELECT * FROM @schema@._topic_queues(routing_key) LOOP
    PERFORM @schema@._send(q, msg, headers, vt);
    n := n + 1;
  END LOOP;
  RETURN n;
END;
$$;

CREATE FUNCTION @schema@.send_topic(routing_key text, msg jsonb)
RETURNS integer LANGUAGE sql AS $$
  SELECT @schema@.send_topic(routing_key, msg, NULL::jsonb, 0);
$$;

CREATE FUNCTION @schema@.send_topic(routing_key text, msg jsonb, delay integer)
RETURNS integer LANGUAGE sql AS $$
  SELECT @schema@.send_topic(routing_key, msg, NULL::jsonb, delay);
$$;

-- Validates the key, then the batch (raised even when nothing matches), then
-- inserts the whole batch into each distinct matching queue, in queue_name
-- order. Negative integer delays are allowed here (unlike send_topic).
CREATE FUNCTION @schema@._send_batch_topic(
  routing_key text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE plpgsql AS $$
DECLARE
  q text;
BEGIN
  PERFORM @schema@.validate_routing_key(routing_key);
  PERFORM @schema@._validate_batch_params(msgs, headers);
  FOR q IN SELECT * FROM @schema@._topic_queues(routing_key) LOOP
    RETURN QUERY SELECT q, s.id FROM @schema@._send_batch(q, msgs, headers, delay) AS s(id);
  END LOOP;
END;
$$;

CREATE FUNCTION @schema@.send_batch_topic(routing_key text, msgs jsonb[])
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch_topic(routing_key, msgs, NULL, clock_timestamp());
$$;

CREATE FUNCTION @schema@.send_batch_topic(routing_key text, msgs jsonb[], headers jsonb[])
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch_topic(routing_key, msgs, headers, clock_timestamp());
$$;

CREATE FUNCTION @schema@.send_batch_topic(routing_key text, msgs jsonb[], delay integer)
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch_topic(routing_key, msgs, NULL, @schema@._delay_to_vt(delay));
$$;

CREATE FUNCTION @schema@.send_batch_topic(
  routing_key text, msgs jsonb[], delay timestamp with time zone)
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch_topic(routing_key, msgs, NULL, delay);
$$;

CREATE FUNCTION @schema@.send_batch_topic(
  routing_key text, msgs jsonb[], headers jsonb[], delay integer)
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch_topic(routing_key, msgs, headers, @schema@._delay_to_vt(delay));
$$;

CREATE FUNCTION @schema@.send_batch_topic(
  routing_key text, msgs jsonb[], headers jsonb[], delay timestamp with time zone)
RETURNS TABLE (queue_name text, msg_id bigint) LANGUAGE sql AS $$
  SELECT * FROM @schema@._send_batch_topic(routing_key, msgs, headers, delay);
$$;

-- ===========================================================================
-- Insert and delete notifications (§10, §12: 1.11.3 and 1.13.1)
-- ===========================================================================
-- Channel: '<schema>.q_<queue name as given>.INSERT' / '.DELETE'. In the
-- default schema that is exactly PGMQ 1.13.1's 'pgmq.q_<name>.INSERT'; under
-- another schema the schema name replaces 'pgmq.' so two installations in
-- one database never wake each other's listeners.
--
-- Cost (../shared/PERFORMANCE.md): a transaction that issued NOTIFY takes a
-- cluster-wide lock at commit. The trigger therefore notifies at most once
-- per queue per transaction (a transaction-local flag skips the throttle
-- update for the remaining rows of a batch; PostgreSQL would fold the
-- duplicates anyway, but the UPDATE per row is what we save), and the
-- throttle (default 250 ms) bounds notifications per queue across
-- transactions.
CREATE UNLOGGED TABLE @schema@.notify_insert_throttle (
  queue_name varchar NOT NULL,
  throttle_interval_ms integer NOT NULL DEFAULT 0,
  last_notified_at timestamp with time zone NOT NULL DEFAULT to_timestamp(0),
  CONSTRAINT notify_insert_throttle_queue_name_key UNIQUE (queue_name),
  CONSTRAINT notify_insert_throttle_meta_queue_name_fk FOREIGN KEY (queue_name)
    REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE
);
CREATE INDEX idx_notify_throttle_active
  ON @schema@.notify_insert_throttle (queue_name, last_notified_at)
  WHERE throttle_interval_ms > 0;

CREATE UNLOGGED TABLE @schema@.notify_delete_throttle (
  queue_name varchar NOT NULL,
  throttle_interval_ms integer NOT NULL DEFAULT 0,
  last_notified_at timestamp with time zone NOT NULL DEFAULT to_timestamp(0),
  CONSTRAINT notify_delete_throttle_queue_name_key UNIQUE (queue_name),
  CONSTRAINT notify_delete_throttle_meta_queue_name_fk FOREIGN KEY (queue_name)
    REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE
);
CREATE INDEX idx_notify_delete_throttle_active
  ON @schema@.notify_delete_throttle (queue_name, last_notified_at)
  WHERE throttle_interval_ms > 0;

-- Shared body of both trigger functions. The queue name comes from the
-- trigger argument (1.13.1: as given, so mixed-case names notify); triggers
-- without an argument fall back to the table name minus 'q_' (pre-1.13.1).
CREATE FUNCTION @schema@._notify_listeners(
  queue_name text, event text, throttle regclass)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  channel text := '@schema_name@.q_' || queue_name || '.' || event;
  -- A valid custom GUC name per channel, local to the transaction.
  flag text := 'pgferry.notified_' || md5(channel);
  n integer;
BEGIN
  IF current_setting(flag, true) = '1' THEN
    RETURN;  -- this transaction already notifies on this channel
  END IF;
  EXECUTE format(
    'UPDATE %s t SET last_notified_at = clock_timestamp()
      WHERE t.queue_name = $1
        AND (t.throttle_interval_ms = 0
             OR clock_timestamp() - t.last_notified_at
                >= make_interval(secs => t.throttle_interval_ms / 1000.0))', throttle)
    USING queue_name;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n > 0 THEN
    PERFORM pg_notify(channel, NULL);
    PERFORM set_config(flag, '1', true);
  END IF;
END;
$$;

CREATE FUNCTION @schema@.notify_queue_listeners()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM @schema@._notify_listeners(
    CASE WHEN TG_NARGS > 0 THEN TG_ARGV[0] ELSE substr(TG_TABLE_NAME, 3) END,
    'INSERT', '@schema@.notify_insert_throttle'::regclass);
  RETURN NULL;
END;
$$;

CREATE FUNCTION @schema@.notify_queue_delete_listeners()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM @schema@._notify_listeners(
    CASE WHEN TG_NARGS > 0 THEN TG_ARGV[0] ELSE substr(TG_TABLE_NAME, 3) END,
    'DELETE', '@schema@.notify_delete_throttle'::regclass);
  RETURN NULL;
END;
$$;

-- Shared bodies of enable/disable/update for both events ('insert'/'delete').
CREATE FUNCTION @schema@._disable_notify(queue_name text, event text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  rel regclass := to_regclass(format('@schema@.%I', @schema@.format_table_name(queue_name, 'q')));
BEGIN
  -- Checked first so that disabling something never enabled stays quiet
  -- (DROP TRIGGER IF EXISTS would raise a NOTICE).
  IF rel IS NOT NULL AND EXISTS (
       SELECT 1 FROM pg_trigger
        WHERE tgrelid = rel AND tgname = 'trigger_notify_queue_' || event || '_listeners') THEN
    EXECUTE format('DROP TRIGGER %I ON %s', 'trigger_notify_queue_' || event || '_listeners', rel);
  END IF;
  EXECUTE format('DELETE FROM @schema@.%I t WHERE t.queue_name = $1', 'notify_' || event || '_throttle')
    USING queue_name;
END;
$$;

CREATE FUNCTION @schema@._enable_notify(queue_name text, throttle_interval_ms integer, event text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  qtable text := @schema@.format_table_name(queue_name, 'q');
  rel regclass;
BEGIN
  IF throttle_interval_ms < 0 THEN
    RAISE EXCEPTION 'throttle_interval_ms must be non-negative';
  END IF;
  rel := to_regclass(format('@schema@.%I', qtable));
  IF rel IS NULL THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create it first using %.create()',
      queue_name, '@schema_name@';
  END IF;
  PERFORM @schema@._disable_notify(queue_name, event);
  EXECUTE format(
    'INSERT INTO @schema@.%I (queue_name, throttle_interval_ms, last_notified_at)
     VALUES ($1, $2, to_timestamp(0))
     ON CONFLICT (queue_name) DO UPDATE
       SET throttle_interval_ms = EXCLUDED.throttle_interval_ms,
           last_notified_at = EXCLUDED.last_notified_at',
    'notify_' || event || '_throttle')
    USING queue_name, throttle_interval_ms;
  EXECUTE format(
    'CREATE CONSTRAINT TRIGGER %I AFTER %s ON %s
       DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW
       EXECUTE FUNCTION @schema@.%I(%L)',
    'trigger_notify_queue_' || event || '_listeners', upper(event), rel,
    CASE event WHEN 'insert' THEN 'notify_queue_listeners' ELSE 'notify_queue_delete_listeners' END,
    queue_name);
END;
$$;

CREATE FUNCTION @schema@._update_notify(queue_name text, throttle_interval_ms integer, event text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  IF throttle_interval_ms < 0 THEN
    RAISE EXCEPTION 'throttle_interval_ms must be non-negative, got: %', throttle_interval_ms;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = _update_notify.queue_name) THEN
    RAISE EXCEPTION 'Queue "%" does not exist. Create the queue first using %.create()',
      queue_name, '@schema_name@';
  END IF;
  EXECUTE format(
    'UPDATE @schema@.%I t SET throttle_interval_ms = $2, last_notified_at = to_timestamp(0)
      WHERE t.queue_name = $1', 'notify_' || event || '_throttle')
    USING queue_name, throttle_interval_ms;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n = 0 THEN
    RAISE EXCEPTION 'Queue "%" does not have notify_% enabled. Enable it first using %.enable_notify_%()',
      queue_name, event, '@schema_name@', event;
  END IF;
END;
$$;

CREATE FUNCTION @schema@.enable_notify_insert(queue_name text, throttle_interval_ms integer DEFAULT 250)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._enable_notify(queue_name, throttle_interval_ms, 'insert');
$$;

CREATE FUNCTION @schema@.disable_notify_insert(queue_name text)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._disable_notify(queue_name, 'insert');
$$;

CREATE FUNCTION @schema@.update_notify_insert(queue_name text, throttle_interval_ms integer)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._update_notify(queue_name, throttle_interval_ms, 'insert');
$$;

CREATE FUNCTION @schema@.list_notify_insert_throttles()
RETURNS TABLE (queue_name text, throttle_interval_ms integer, last_notified_at timestamp with time zone)
LANGUAGE sql STABLE AS $$
  SELECT t.queue_name, t.throttle_interval_ms, t.last_notified_at
    FROM @schema@.notify_insert_throttle t ORDER BY t.queue_name;
$$;

CREATE FUNCTION @schema@.enable_notify_delete(queue_name text, throttle_interval_ms integer DEFAULT 250)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._enable_notify(queue_name, throttle_interval_ms, 'delete');
$$;

CREATE FUNCTION @schema@.disable_notify_delete(queue_name text)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._disable_notify(queue_name, 'delete');
$$;

CREATE FUNCTION @schema@.update_notify_delete(queue_name text, throttle_interval_ms integer)
RETURNS void LANGUAGE sql AS $$
  SELECT @schema@._update_notify(queue_name, throttle_interval_ms, 'delete');
$$;

CREATE FUNCTION @schema@.list_notify_delete_throttles()
RETURNS TABLE (queue_name text, throttle_interval_ms integer, last_notified_at timestamp with time zone)
LANGUAGE sql STABLE AS $$
  SELECT t.queue_name, t.throttle_interval_ms, t.last_notified_at
    FROM @schema@.notify_delete_throttle t ORDER BY t.queue_name;
$$;

-- ===========================================================================
-- pgferry additions: stale-read protection and wake-up times
-- ===========================================================================
-- A read's receipt is the read_ct it returned: every read increments it, so
-- a message whose read_ct still equals the receipt has not been read by
-- anyone since. These succeed only for that current holder; a consumer
-- whose visibility timeout ran out and whose message was read again gets
-- false / no row, and the message stays with the new holder. (A holder whose
-- vt ran out but whom nobody has replaced still holds the message.) A
-- concurrent re-read holds the row lock; we wait for it and then re-check
-- read_ct on the new row version (READ COMMITTED), so the race is safe.
CREATE FUNCTION @schema@.delete_if_held(queue_name text, msg_id bigint, read_ct integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  EXECUTE format('DELETE FROM %s WHERE msg_id = $1 AND read_ct = $2', @schema@._queue_table(queue_name))
    USING msg_id, read_ct;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END;
$$;

CREATE FUNCTION @schema@.archive_if_held(queue_name text, msg_id bigint, read_ct integer)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  EXECUTE format(
    'WITH moved AS (
       DELETE FROM %s WHERE msg_id = $1 AND read_ct = $2
       RETURNING msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
     INSERT INTO %s (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
     SELECT msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers FROM moved',
    @schema@._queue_table(queue_name), @schema@._queue_table(queue_name, 'a'))
    USING msg_id, read_ct;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END;
$$;

CREATE FUNCTION @schema@.set_vt_if_held(
  queue_name text, msg_id bigint, read_ct integer, vt timestamp with time zone)
RETURNS SETOF @schema@.message_record LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE format(
    'UPDATE %s SET vt = $3 WHERE msg_id = $1 AND read_ct = $2
     RETURNING msg_id, read_ct, enqueued_at, last_read_at, vt, message, headers',
    @schema@._queue_table(queue_name))
    USING msg_id, read_ct, set_vt_if_held.vt;
END;
$$;

CREATE FUNCTION @schema@.set_vt_if_held(queue_name text, msg_id bigint, read_ct integer, vt integer)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.set_vt_if_held(queue_name, msg_id, read_ct, @schema@._delay_to_vt(vt));
$$;

CREATE FUNCTION @schema@.set_vt_if_held(queue_name text, msg_id bigint, read_ct integer, vt text)
RETURNS SETOF @schema@.message_record LANGUAGE sql AS $$
  SELECT * FROM @schema@.set_vt_if_held(queue_name, msg_id, read_ct, @schema@._vt_from_text(vt));
$$;

-- The earliest future vt in the queue (a delayed message or one in flight
-- becoming visible again), or NULL. A waiting consumer sleeps until then
-- instead of polling: one index probe on q_<name>_vt_idx.
CREATE FUNCTION @schema@.next_visible_at(queue_name text)
RETURNS timestamp with time zone LANGUAGE plpgsql AS $$
DECLARE
  t timestamp with time zone;
BEGIN
  EXECUTE format(
    'SELECT vt FROM %s WHERE vt > clock_timestamp() ORDER BY vt LIMIT 1',
    @schema@._queue_table(queue_name))
    INTO t;
  RETURN t;
END;
$$;
