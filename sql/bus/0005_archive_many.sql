-- pgferry bus, migration 5: bus_archive_many, the batch form of bus_archive.
--
-- IsolatedBackend archived a batch with one bus_archive call per message
-- (`unnest(ids) WHERE bus_archive(...)`): a membership check and a dynamic
-- archive statement per message. bus_archive_many checks membership once
-- and archives the whole batch in one queue-engine archive call.
--
--   bus_archive_many(p_my_queue text, p_channel text, p_msg_ids bigint[])
--     → SETOF bigint: the ids that were archived (each at most once; an
--       unknown, already archived or NULL id is left out). Nothing for a
--       queue that is not the caller's member of that channel, the same
--       answer as bus_archive's false.
--
-- A new name rather than a bus_archive overload: with bigint and bigint[]
-- candidates, an untyped third argument (as PREPARE or a driver sends it)
-- would no longer resolve to one function.

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

-- The grant now covers bus_archive_many (as 0004's, otherwise).
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
    'bus_leave(text, text)']
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @schema@.%s TO %I', fn, p_role);
  END LOOP;
END;
$$;

SELECT @schema@._pgferry_bus_grant(c.bus_role) FROM @schema@._pgferry_bus_config c;

-- Roles granted the bus under another name keep working after this upgrade:
-- whoever may execute bus_archive may execute bus_archive_many.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT DISTINCT a.grantee::regrole::text AS who
      FROM pg_catalog.pg_proc p
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE p.oid = '@schema@.bus_archive(text, text, bigint)'::regprocedure
       AND a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
  LOOP
    EXECUTE pg_catalog.format(
      'GRANT EXECUTE ON FUNCTION @schema@.bus_archive_many(text, text, bigint[]) TO %s', r.who);
  END LOOP;
END;
$$;
