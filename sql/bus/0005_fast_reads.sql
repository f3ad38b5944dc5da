-- pgferry bus, migration 5: fewer statements per delivery for the isolated bus.
--
-- IsolatedBackend archived a batch with one bus_archive call per message
-- (`unnest(ids) WHERE bus_archive(...)`), a membership check and a dynamic
-- archive statement each, and then read again in another call. Now:
--
--   bus_archive_many(p_my_queue text, p_channel text, p_msg_ids bigint[])
--     → SETOF bigint: the ids that were archived (each at most once; an
--       unknown, already archived or NULL id is left out). Nothing for a
--       queue that is not the caller's member of that channel, the same
--       answer as bus_archive's false.
--   bus_read(p_my_queue text, p_channel text, p_vt int, p_qty int, p_archive bigint[])
--     → TABLE(msg_id bigint, message jsonb, headers jsonb): archives
--       p_archive (the messages the member has handled; NULL or {} for none)
--       and then reads as bus_subscribe_with_headers(..., p_max_seconds 0)
--       does, in one call: one membership check, one round trip, one commit.
--       PF502 for a queue that is not the caller's member of that channel
--       (nothing archived), PF501 for a missing p_vt / p_qty.
--
-- bus_archive_many is a new name rather than a bus_archive overload: with
-- bigint and bigint[] candidates, an untyped third argument (as PREPARE or a
-- driver sends it) would no longer resolve to one function.

CREATE FUNCTION @schema@.bus_archive_many(p_my_queue text, p_channel text, p_msg_ids bigint[])
RETURNS SETOF bigint LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF p_msg_ids IS NULL OR pg_catalog.cardinality(p_msg_ids) = 0
     OR NOT @schema@._pgferry_bus_is_member(p_my_queue, @schema@._pgferry_bus_channel_hash(p_channel)) THEN
    RETURN;
  END IF;
  RETURN QUERY SELECT a FROM @queue_schema@.archive(p_my_queue, p_msg_ids) a;
END;
$$;
REVOKE ALL ON FUNCTION @schema@.bus_archive_many(text, text, bigint[]) FROM PUBLIC;

CREATE FUNCTION @schema@.bus_read(
  p_my_queue text, p_channel text, p_vt integer, p_qty integer, p_archive bigint[])
RETURNS TABLE(msg_id bigint, message jsonb, headers jsonb) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT @schema@._pgferry_bus_is_member(p_my_queue, @schema@._pgferry_bus_channel_hash(p_channel)) THEN
    RAISE EXCEPTION 'queue is not a member of this bus channel' USING ERRCODE = 'PF502';
  END IF;
  IF p_vt IS NULL OR p_qty IS NULL OR p_qty < 0 THEN
    RAISE EXCEPTION 'p_vt and p_qty must be given (p_qty >= 0)' USING ERRCODE = 'PF501';
  END IF;
  IF p_archive IS NOT NULL AND pg_catalog.cardinality(p_archive) > 0 THEN
    PERFORM FROM @queue_schema@.archive(p_my_queue, p_archive);
  END IF;
  RETURN QUERY
    SELECT r.msg_id, r.message, r.headers
      FROM @queue_schema@.read(p_my_queue, p_vt, p_qty) r ORDER BY r.msg_id;
  PERFORM @schema@._pgferry_bus_touch(p_my_queue, 0);
END;
$$;
REVOKE ALL ON FUNCTION @schema@.bus_read(text, text, integer, integer, bigint[]) FROM PUBLIC;

-- The grant now covers bus_archive_many and bus_read (as 0004's, otherwise).
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
    'bus_leave(text, text)']
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @schema@.%s TO %I', fn, p_role);
  END LOOP;
END;
$$;

SELECT @schema@._pgferry_bus_grant(c.bus_role) FROM @schema@._pgferry_bus_config c;

-- Roles granted the bus under another name keep working after this upgrade:
-- whoever may execute bus_archive may execute bus_archive_many, and whoever
-- may execute both bus_subscribe_with_headers and bus_archive may execute
-- bus_read (it does what those two do).
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT DISTINCT a.grantee::regrole::text AS who,
           has_function_privilege(a.grantee,
             '@schema@.bus_subscribe_with_headers(text, text, integer, integer, integer)'::regprocedure,
             'EXECUTE') AS reads
      FROM pg_catalog.pg_proc p
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = '@schema@.bus_archive(text, text, bigint)'::regprocedure
       AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
  LOOP
    EXECUTE pg_catalog.format(
      'GRANT EXECUTE ON FUNCTION @schema@.bus_archive_many(text, text, bigint[]) TO %s', r.who);
    IF r.reads THEN
      EXECUTE pg_catalog.format(
        'GRANT EXECUTE ON FUNCTION @schema@.bus_read(text, text, integer, integer, bigint[]) TO %s',
        r.who);
    END IF;
  END LOOP;
END;
$$;
