-- pgferry bus, migration 4: message headers through the isolated bus, so a
-- delivery's trace span is a child of the publish's (W3C Trace Context).
--
--   * bus_publish(p_channel, p_my_queue, p_message, p_headers jsonb): a new
--     overload (no DEFAULT on purpose: the three-argument form stays the only
--     candidate for a three-argument call, so PREPARE with untyped
--     parameters and named-argument calls resolve as before). The
--     three-argument form now calls it with NULL headers.
--   * bus_subscribe_with_headers(...): bus_subscribe's arguments, and each
--     row's headers as a third column. bus_subscribe (whose result pipecat
--     reads as (msg_id, message)) keeps its columns and calls it.
--
-- Headers are not a free-form side channel: only the W3C keys traceparent
-- (its exact syntax) and tracestate (at most 512 printable ASCII
-- characters) are accepted, at most 1024 bytes in all; anything else raises
-- PF501 and sends nothing. NULL and {} mean no headers. A member can put in
-- its peers' headers nothing but a trace context of its choosing, which it
-- could already fake in the message body it controls.

-- Internal: the headers as stored (NULL for none), or PF501.
CREATE FUNCTION @schema@._pgferry_bus_check_headers(p_headers jsonb)
RETURNS jsonb LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  k text;
  v jsonb;
  s text;
BEGIN
  IF p_headers IS NULL OR p_headers = 'null'::jsonb OR p_headers = '{}'::jsonb THEN
    RETURN NULL;
  END IF;
  IF pg_catalog.jsonb_typeof(p_headers) <> 'object' THEN
    RAISE EXCEPTION 'bus headers must be a JSON object' USING ERRCODE = 'PF501';
  END IF;
  IF pg_catalog.octet_length(p_headers::text) > 1024 THEN
    RAISE EXCEPTION 'bus headers must not exceed 1024 bytes' USING ERRCODE = 'PF501';
  END IF;
  FOR k, v IN SELECT e.key, e.value FROM pg_catalog.jsonb_each(p_headers) e LOOP
    IF pg_catalog.jsonb_typeof(v) <> 'string' THEN
      RAISE EXCEPTION 'bus header values must be strings' USING ERRCODE = 'PF501';
    END IF;
    s := v #>> '{}';
    IF k = 'traceparent' THEN
      IF s !~ '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$' OR pg_catalog.left(s, 2) = 'ff' THEN
        RAISE EXCEPTION 'bus header traceparent is not a W3C traceparent' USING ERRCODE = 'PF501';
      END IF;
    ELSIF k = 'tracestate' THEN
      IF pg_catalog.length(s) > 512 OR s !~ '^[ -~]*$' THEN
        RAISE EXCEPTION 'bus header tracestate must be at most 512 printable ASCII characters'
          USING ERRCODE = 'PF501';
      END IF;
    ELSE
      RAISE EXCEPTION 'bus headers may hold only traceparent and tracestate' USING ERRCODE = 'PF501';
    END IF;
  END LOOP;
  RETURN p_headers;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_check_headers(jsonb) FROM PUBLIC;

-- bus_publish with headers: as the three-argument form (0002), the checked
-- headers stored with every peer's copy of the message.
CREATE FUNCTION @schema@.bus_publish(p_channel text, p_my_queue text, p_message jsonb, p_headers jsonb)
RETURNS bigint[] LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h bytea := @schema@._pgferry_bus_channel_hash(p_channel);
  hdr jsonb := @schema@._pgferry_bus_check_headers(p_headers);
  ids bigint[] := '{}';
  stale boolean := false;
  r record;
BEGIN
  IF NOT @schema@._pgferry_bus_is_member(p_my_queue, h) THEN
    RAISE EXCEPTION 'queue is not a member of this bus channel' USING ERRCODE = 'PF502';
  END IF;
  PERFORM @schema@._pgferry_bus_touch(p_my_queue, 0);
  FOR r IN
    SELECT m.queue_name, m.lease_until FROM @schema@._pgferry_bus_member m
     WHERE m.channel_hash = h AND m.queue_name <> p_my_queue
     ORDER BY m.queue_name
       FOR KEY SHARE OF m
  LOOP
    IF r.lease_until < pg_catalog.now() THEN
      stale := true;
      CONTINUE;
    END IF;
    ids := ids || (SELECT s FROM @queue_schema@.send(r.queue_name, p_message, hdr) s);
    PERFORM pg_catalog.pg_notify(@schema@._pgferry_bus_wake_channel(r.queue_name, p_channel), '');
  END LOOP;
  IF stale THEN
    PERFORM @schema@._pgferry_bus_reap(8);
  END IF;
  RETURN ids;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bus_publish(p_channel text, p_my_queue text, p_message jsonb)
RETURNS bigint[] LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
  SELECT @schema@.bus_publish(p_channel, p_my_queue, p_message, NULL::jsonb);
$$;

-- bus_subscribe with each message's headers.
CREATE FUNCTION @schema@.bus_subscribe_with_headers(
  p_my_queue text, p_channel text, p_vt integer, p_qty integer, p_max_seconds integer)
RETURNS TABLE(msg_id bigint, message jsonb, headers jsonb) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h bytea := @schema@._pgferry_bus_channel_hash(p_channel);
  wait_s integer := GREATEST(COALESCE(p_max_seconds, 0), 0);
  deadline timestamp with time zone := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => wait_s);
  interval_s double precision :=
    (SELECT c.subscribe_poll_interval_ms FROM @schema@._pgferry_bus_config c) / 1000.0;
  remaining double precision;
BEGIN
  IF NOT @schema@._pgferry_bus_is_member(p_my_queue, h) THEN
    RAISE EXCEPTION 'queue is not a member of this bus channel' USING ERRCODE = 'PF502';
  END IF;
  IF p_vt IS NULL OR p_qty IS NULL OR p_qty < 0 THEN
    RAISE EXCEPTION 'p_vt and p_qty must be given (p_qty >= 0)' USING ERRCODE = 'PF501';
  END IF;
  LOOP
    RETURN QUERY
      SELECT r.msg_id, r.message, r.headers
        FROM @queue_schema@.read(p_my_queue, p_vt, p_qty) r ORDER BY r.msg_id;
    EXIT WHEN FOUND;
    remaining := EXTRACT(epoch FROM deadline - pg_catalog.clock_timestamp());
    EXIT WHEN remaining <= 0;
    PERFORM pg_catalog.pg_sleep(LEAST(interval_s, remaining));
  END LOOP;
  -- The heartbeat is written after the wait (no transaction id held while it sleeps).
  PERFORM @schema@._pgferry_bus_touch(p_my_queue, 0);
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bus_subscribe(
  p_my_queue text, p_channel text, p_vt integer, p_qty integer, p_max_seconds integer)
RETURNS TABLE(msg_id bigint, message jsonb) LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
  SELECT s.msg_id, s.message
    FROM @schema@.bus_subscribe_with_headers(p_my_queue, p_channel, p_vt, p_qty, p_max_seconds) s;
$$;

-- The grant now covers the two new functions (as 0001's, otherwise).
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
    'bus_leave(text, text)']
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @schema@.%s TO %I', fn, p_role);
  END LOOP;
END;
$$;

REVOKE ALL ON FUNCTION @schema@.bus_publish(text, text, jsonb, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.bus_subscribe_with_headers(text, text, integer, integer, integer) FROM PUBLIC;
SELECT @schema@._pgferry_bus_grant(c.bus_role) FROM @schema@._pgferry_bus_config c;

-- Roles granted the bus under another name (grantBusRole / _pgferry_bus_grant
-- by hand) keep working after this upgrade: whoever may execute bus_publish
-- or bus_subscribe may execute its headers form.
DO $$
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT DISTINCT a.grantee::regrole::text AS who, n.fn
      FROM (VALUES
              ('@schema@.bus_publish(text, text, jsonb)', 'bus_publish(text, text, jsonb, jsonb)'),
              ('@schema@.bus_subscribe(text, text, integer, integer, integer)',
               'bus_subscribe_with_headers(text, text, integer, integer, integer)')) AS n(old, fn)
      JOIN pg_catalog.pg_proc p ON p.oid = n.old::regprocedure
     CROSS JOIN LATERAL pg_catalog.aclexplode(p.proacl) a
     WHERE a.privilege_type = 'EXECUTE' AND a.grantee <> 0 AND a.grantee <> p.proowner
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @schema@.%s TO %s', r.fn, r.who);
  END LOOP;
END;
$$;
