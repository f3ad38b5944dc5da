-- pgferry bus, migration 7: a listening isolated member's reads write nothing.
--
-- Every IsolatedBackend read went through bus_read, which hides what it
-- returns (vt, read_ct: an UPDATE of each row) and archives what the member
-- handled before: every delivery wrote rows and committed, and the ten
-- readers of a ten-member channel did that nine times per publish. The
-- direct backend's listening reader writes nothing (DirectStatements.peek):
-- the member is its queue's only reader and skips by id what it handled and
-- has not archived yet, so the visibility timeout has nothing to guard. Now
-- the isolated backend does the same:
--
--   bus_peek(p_my_queue text, p_channel text, p_qty integer,
--            p_archive bigint[], p_skip bigint[])
--     → TABLE(msg_id bigint, message jsonb, headers jsonb): archives
--       p_archive (NULL or {} for none), then returns up to p_qty visible
--       messages in msg_id order, leaving out p_skip, without hiding or
--       counting them. The same membership check as bus_read (PF502, nothing
--       archived; PF501 for a missing or negative p_qty), the same lease
--       renewal when due. Without an archive and with the lease not due, a
--       call writes nothing (no transaction id, no commit to wait for).
--
-- The member's statement is generated like its others (migration 6):
--
--   _pgferry_bus_peek_<32 hex>(p_qty integer, p_archive bigint[], p_skip bigint[])
--     → TABLE(msg_id bigint, message jsonb, headers jsonb)
--
-- its archive part is archive(queue, ids); its read part is
-- DirectStatements.peek's (test/bus/member-sql-parity.test.ts). Not SECURITY
-- DEFINER, EXECUTE revoked from PUBLIC, only reached through bus_peek after
-- the membership check, as migration 6's.
--
-- A reader that does not listen (a transaction pooler, no LISTEN) keeps
-- bus_read: nothing tells it what it already has but its own list, and it
-- relies on the visibility timeout as before.
--
-- Upgrade: members that joined before this migration get their peek
-- function here; roles that may execute bus_read may execute bus_peek.

-- As 0006, and a fourth function: _pgferry_bus_peek_<32 hex>. Owner only.
CREATE OR REPLACE FUNCTION @schema@._pgferry_bus_member_sql(p_queue text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  id text;
  qt text;
  at text;
BEGIN
  IF p_queue IS NULL OR p_queue !~ '^bus_[0-9a-f]{32}$' THEN
    RAISE EXCEPTION 'not a bus member queue name: %', p_queue USING ERRCODE = 'PF501';
  END IF;
  id := pg_catalog.substr(p_queue, 5);
  qt := 'q_' || p_queue;
  at := 'a_' || p_queue;
  -- send(queue, message, headers): one row, visible at once.
  EXECUTE pg_catalog.format($gen$
    CREATE OR REPLACE FUNCTION @schema@.%1$I(p_message jsonb, p_headers jsonb)
    RETURNS bigint LANGUAGE plpgsql AS $fn$
    DECLARE
      new_id bigint;
    BEGIN
      INSERT INTO @queue_schema@.%2$I (vt, message, headers)
      VALUES (pg_catalog.clock_timestamp(), p_message, p_headers)
      RETURNING msg_id INTO new_id;
      RETURN new_id;
    END;
    $fn$ $gen$, '_pgferry_bus_send_' || id, qt);
  -- archive(queue, p_archive) when given, then read(queue, p_vt, p_qty) in
  -- msg_id order.
  EXECUTE pg_catalog.format($gen$
    CREATE OR REPLACE FUNCTION @schema@.%1$I(p_vt integer, p_qty integer, p_archive bigint[])
    RETURNS TABLE(msg_id bigint, message jsonb, headers jsonb) LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    DECLARE
      until timestamp with time zone;
    BEGIN
      IF p_archive IS NOT NULL AND pg_catalog.cardinality(p_archive) > 0 THEN
        WITH moved AS (
          DELETE FROM @queue_schema@.%2$I d WHERE d.msg_id = ANY(p_archive)
          RETURNING d.msg_id, d.vt, d.read_ct, d.enqueued_at, d.last_read_at, d.message, d.headers)
        INSERT INTO @queue_schema@.%3$I (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
        SELECT mv.msg_id, mv.vt, mv.read_ct, mv.enqueued_at, mv.last_read_at, mv.message, mv.headers
          FROM moved mv;
      END IF;
      until := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_vt);
      PERFORM @queue_schema@._before_read(%4$L);
      RETURN QUERY
        WITH cte AS (
          SELECT c.msg_id FROM @queue_schema@.%2$I c
           WHERE c.vt <= pg_catalog.clock_timestamp()
           ORDER BY c.msg_id
           LIMIT p_qty
           FOR UPDATE SKIP LOCKED),
        upd AS (
          UPDATE @queue_schema@.%2$I m
             SET vt = until, read_ct = m.read_ct + 1, last_read_at = pg_catalog.clock_timestamp()
           WHERE m.msg_id = ANY(ARRAY(SELECT cte.msg_id FROM cte))
          RETURNING m.msg_id, m.message, m.headers)
        SELECT u.msg_id, u.message, u.headers FROM upd u ORDER BY u.msg_id;
    END;
    $fn$ $gen$, '_pgferry_bus_read_' || id, qt, at, p_queue);
  -- archive(queue, ids): the ids moved.
  EXECUTE pg_catalog.format($gen$
    CREATE OR REPLACE FUNCTION @schema@.%1$I(p_msg_ids bigint[])
    RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$
    BEGIN
      RETURN QUERY
        WITH moved AS (
          DELETE FROM @queue_schema@.%2$I d WHERE d.msg_id = ANY(p_msg_ids)
          RETURNING d.msg_id, d.vt, d.read_ct, d.enqueued_at, d.last_read_at, d.message, d.headers)
        INSERT INTO @queue_schema@.%3$I AS t (msg_id, vt, read_ct, enqueued_at, last_read_at, message, headers)
        SELECT mv.msg_id, mv.vt, mv.read_ct, mv.enqueued_at, mv.last_read_at, mv.message, mv.headers
          FROM moved mv
        RETURNING t.msg_id;
    END;
    $fn$ $gen$, '_pgferry_bus_archive_' || id, qt, at);
  -- archive(queue, p_archive) when given (the member's archive function,
  -- above), then up to p_qty visible messages in msg_id order but p_skip,
  -- nothing hidden or counted (the archive is its own statement, so the read
  -- no longer sees what it moved).
  EXECUTE pg_catalog.format($gen$
    CREATE OR REPLACE FUNCTION @schema@.%1$I(p_qty integer, p_archive bigint[], p_skip bigint[])
    RETURNS TABLE(msg_id bigint, message jsonb, headers jsonb) LANGUAGE plpgsql AS $fn$
    #variable_conflict use_column
    BEGIN
      IF p_archive IS NOT NULL AND pg_catalog.cardinality(p_archive) > 0 THEN
        PERFORM @schema@.%3$I(p_archive);
      END IF;
      RETURN QUERY
        SELECT c.msg_id, c.message, c.headers FROM @queue_schema@.%2$I c
         WHERE c.vt <= pg_catalog.clock_timestamp()
           AND c.msg_id <> ALL(COALESCE(p_skip, '{}'::bigint[]))
         ORDER BY c.msg_id
         LIMIT p_qty;
    END;
    $fn$ $gen$, '_pgferry_bus_peek_' || id, qt, '_pgferry_bus_archive_' || id);
  EXECUTE pg_catalog.format(
    'REVOKE ALL ON FUNCTION @schema@.%I(jsonb, jsonb) FROM PUBLIC', '_pgferry_bus_send_' || id);
  EXECUTE pg_catalog.format(
    'REVOKE ALL ON FUNCTION @schema@.%I(integer, integer, bigint[]) FROM PUBLIC', '_pgferry_bus_read_' || id);
  EXECUTE pg_catalog.format(
    'REVOKE ALL ON FUNCTION @schema@.%I(bigint[]) FROM PUBLIC', '_pgferry_bus_archive_' || id);
  EXECUTE pg_catalog.format(
    'REVOKE ALL ON FUNCTION @schema@.%I(integer, bigint[], bigint[]) FROM PUBLIC', '_pgferry_bus_peek_' || id);
END;
$$;

-- As 0006, and the peek function too.
CREATE OR REPLACE FUNCTION @schema@._pgferry_bus_member_sql_drop(p_queue text)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  id text := pg_catalog.substr(p_queue, 5);
BEGIN
  IF p_queue IS NULL OR p_queue !~ '^bus_[0-9a-f]{32}$' THEN
    RETURN;
  END IF;
  EXECUTE pg_catalog.format(
    'DROP FUNCTION IF EXISTS @schema@.%I(jsonb, jsonb)', '_pgferry_bus_send_' || id);
  EXECUTE pg_catalog.format(
    'DROP FUNCTION IF EXISTS @schema@.%I(integer, integer, bigint[])', '_pgferry_bus_read_' || id);
  EXECUTE pg_catalog.format(
    'DROP FUNCTION IF EXISTS @schema@.%I(bigint[])', '_pgferry_bus_archive_' || id);
  EXECUTE pg_catalog.format(
    'DROP FUNCTION IF EXISTS @schema@.%I(integer, bigint[], bigint[])', '_pgferry_bus_peek_' || id);
END;
$$;

CREATE FUNCTION @schema@.bus_peek(
  p_my_queue text, p_channel text, p_qty integer, p_archive bigint[], p_skip bigint[])
RETURNS TABLE(msg_id bigint, message jsonb, headers jsonb) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ttl integer;
  lease timestamp with time zone;
BEGIN
  -- The membership check of bus_read (migration 6), written out.
  SELECT c.member_ttl_seconds, m.lease_until INTO ttl, lease
    FROM @schema@._pgferry_bus_member m, @schema@._pgferry_bus_config c
   WHERE m.queue_name = p_my_queue
     AND m.channel_hash = pg_catalog.sha256(pg_catalog.convert_to(p_channel, 'UTF8'))
     AND m.owner_role = session_user;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'queue is not a member of this bus channel' USING ERRCODE = 'PF502';
  END IF;
  IF p_qty IS NULL OR p_qty < 0 THEN
    RAISE EXCEPTION 'p_qty must be given (p_qty >= 0)' USING ERRCODE = 'PF501';
  END IF;
  RETURN QUERY EXECUTE pg_catalog.format('SELECT * FROM @schema@.%I($1, $2, $3)',
                                         '_pgferry_bus_peek_' || pg_catalog.substr(p_my_queue, 5))
    USING p_qty, p_archive, p_skip;
  -- The lease renewal (_pgferry_bus_touch written out), when due.
  IF lease < pg_catalog.now() + pg_catalog.make_interval(secs => ttl * 0.75) THEN
    UPDATE @schema@._pgferry_bus_member m
       SET lease_until = pg_catalog.now() + pg_catalog.make_interval(secs => ttl)
     WHERE m.queue_name = p_my_queue
       AND m.lease_until < pg_catalog.now() + pg_catalog.make_interval(secs => ttl * 0.75);
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.bus_peek(text, text, integer, bigint[], bigint[]) FROM PUBLIC;

-- As 0005, and bus_peek.
CREATE OR REPLACE FUNCTION @schema@._pgferry_bus_grant(p_role name)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  fn text;
BEGIN
  IF p_role IS NULL OR p_role = '' THEN
    RAISE EXCEPTION 'bus role name must not be empty' USING ERRCODE = 'PF501';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = p_role) THEN
    BEGIN
      EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', p_role);
    EXCEPTION
      WHEN duplicate_object OR unique_violation THEN
        NULL;
      WHEN insufficient_privilege THEN
        RAISE WARNING 'pgferry bus: cannot create role %: %; create it and run %._pgferry_bus_grant(%)',
          p_role, SQLERRM, '@schema_name@', pg_catalog.quote_literal(p_role);
        RETURN;
    END;
  END IF;
  EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA @schema@ TO %I', p_role);
  FOREACH fn IN ARRAY ARRAY[
    'bus_join(text)',
    'bus_publish(text, text, jsonb)',
    'bus_publish(text, text, jsonb, jsonb)',
    'bus_subscribe(text, text, integer, integer, integer)',
    'bus_subscribe_with_headers(text, text, integer, integer, integer)',
    'bus_archive(text, text, bigint)',
    'bus_archive_many(text, text, bigint[])',
    'bus_read(text, text, integer, integer, bigint[])',
    'bus_peek(text, text, integer, bigint[], bigint[])',
    'bus_leave(text, text)']
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @schema@.%s TO %I', fn, p_role);
  END LOOP;
END;
$$;

SELECT @schema@._pgferry_bus_grant(c.bus_role) FROM @schema@._pgferry_bus_config c;

-- Roles granted the bus under another name keep working after this upgrade:
-- whoever may execute bus_read may execute bus_peek (it reads the same
-- queue, hiding nothing).
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT DISTINCT a.grantee::regrole::text AS who
      FROM pg_catalog.pg_proc p
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = '@schema@.bus_read(text, text, integer, integer, bigint[])'::regprocedure
       AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
  LOOP
    EXECUTE pg_catalog.format(
      'GRANT EXECUTE ON FUNCTION @schema@.bus_peek(text, text, integer, bigint[], bigint[]) TO %s', r.who);
  END LOOP;
END;
$$;

-- Members that joined before this migration get their peek function now.
SELECT @schema@._pgferry_bus_member_sql(m.queue_name)
  FROM @schema@._pgferry_bus_member m
 WHERE m.queue_name ~ '^bus_[0-9a-f]{32}$';
