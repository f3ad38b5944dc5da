-- pgferry bus, migration 1: the isolated bus's SECURITY DEFINER wrappers.
--
-- The wire contract is pipecat's IsolatedPgmqBackend (see docs/bus.md):
-- exactly five callable functions, bus_join / bus_publish / bus_subscribe /
-- bus_archive / bus_leave, in this schema (default "public"). The caller's
-- role may only call them; they run as the migrating role.
--
-- Security rules every function here follows:
--   * search_path is pinned to pg_catalog, pg_temp, and every relation and
--     function of ours is schema-qualified, so a caller's TEMP objects or
--     functions cannot shadow anything;
--   * a channel is opaque text: it is only ever hashed (sha256), never part
--     of a name, of dynamic SQL or of a LIKE pattern;
--   * a queue name given by the caller is used only after it was found in the
--     registry together with the channel's hash, so only names this file
--     generated ever reach the queue engine;
--   * the same error (PF502) for "unknown queue" and "queue of another
--     channel", so a caller learns nothing about queues it does not own.
--
-- pgferry's SQLSTATEs here: PF501 bad argument, PF502 not a member.

-- ---------------------------------------------------------------------------
-- Registry and settings (no privileges for anyone but the owner)
-- ---------------------------------------------------------------------------
CREATE TABLE @schema@._pgferry_bus_config (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  -- A member that has not called bus_subscribe / bus_publish for this long is
  -- considered gone (crashed without bus_leave) and its queue is reaped.
  member_ttl_seconds integer NOT NULL DEFAULT 60 CHECK (member_ttl_seconds > 0),
  -- How often bus_subscribe re-checks an empty queue while it long-polls.
  subscribe_poll_interval_ms integer NOT NULL DEFAULT 10
    CHECK (subscribe_poll_interval_ms BETWEEN 1 AND 10000),
  -- The role that was granted EXECUTE on the five functions.
  bus_role name NOT NULL DEFAULT 'pgferry_bus'
);
INSERT INTO @schema@._pgferry_bus_config DEFAULT VALUES;

-- One row per member. The channel is stored only as its sha256: the registry
-- then never holds channel names (nor can a very long channel overflow an
-- index entry), and "knowing the channel" stays the capability.
CREATE TABLE @schema@._pgferry_bus_member (
  queue_name text PRIMARY KEY,
  channel_hash bytea NOT NULL,
  joined_at timestamp with time zone NOT NULL DEFAULT now(),
  lease_until timestamp with time zone NOT NULL
);
CREATE INDEX _pgferry_bus_member_channel_idx ON @schema@._pgferry_bus_member (channel_hash, queue_name);
CREATE INDEX _pgferry_bus_member_lease_idx ON @schema@._pgferry_bus_member (lease_until);

REVOKE ALL ON @schema@._pgferry_bus_config FROM PUBLIC;
REVOKE ALL ON @schema@._pgferry_bus_member FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Internal helpers (plain functions, not SECURITY DEFINER; no EXECUTE for
-- PUBLIC: only the definer functions and the owner call them)
-- ---------------------------------------------------------------------------
CREATE FUNCTION @schema@._pgferry_bus_channel_hash(p_channel text)
RETURNS bytea LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp AS $$
  SELECT pg_catalog.sha256(pg_catalog.convert_to(p_channel, 'UTF8'));
$$;

-- The NOTIFY channel that wakes a member: derived from its queue AND its
-- channel, so a role that sees the queue's table name in pg_class cannot
-- listen to another member's wake-ups without knowing the channel.
-- The TypeScript side computes the same value (src/bus/wake.ts).
CREATE FUNCTION @schema@._pgferry_bus_wake_channel(p_queue text, p_channel text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp AS $$
  SELECT 'pgferry_bus_' || pg_catalog.left(pg_catalog.encode(pg_catalog.sha256(
    pg_catalog.convert_to(p_queue || pg_catalog.chr(10) || p_channel, 'UTF8')), 'hex'), 40);
$$;

-- Drops up to p_limit members whose lease ran out. Never waits: a member row
-- locked by a publisher, or a queue table in use (a slow but live member in
-- its long-poll), is skipped and reaped by a later call.
CREATE FUNCTION @schema@._pgferry_bus_reap(p_limit integer DEFAULT 16)
RETURNS integer LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  r record;
  n integer := 0;
BEGIN
  FOR r IN
    SELECT m.queue_name FROM @schema@._pgferry_bus_member m
     WHERE m.lease_until < pg_catalog.now()
     ORDER BY m.lease_until
     LIMIT p_limit
       FOR UPDATE SKIP LOCKED
  LOOP
    BEGIN
      EXECUTE pg_catalog.format('LOCK TABLE @queue_schema@.%I IN ACCESS EXCLUSIVE MODE NOWAIT',
                                'q_' || r.queue_name);
      DELETE FROM @schema@._pgferry_bus_member m WHERE m.queue_name = r.queue_name;
      PERFORM @queue_schema@.drop_queue(r.queue_name);
      n := n + 1;
    EXCEPTION
      WHEN lock_not_available THEN
        NULL;
      WHEN undefined_table THEN
        -- The queue is already gone (dropped by hand): forget the member.
        DELETE FROM @schema@._pgferry_bus_member m WHERE m.queue_name = r.queue_name;
        n := n + 1;
    END;
  END LOOP;
  RETURN n;
END;
$$;

-- Extends a member's lease when less than three quarters of it is left, so a
-- busy member writes its registry row a few times per TTL, not once per call.
CREATE FUNCTION @schema@._pgferry_bus_touch(p_queue text, p_extra_seconds integer)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  ttl integer := (SELECT c.member_ttl_seconds FROM @schema@._pgferry_bus_config c);
BEGIN
  UPDATE @schema@._pgferry_bus_member m
     SET lease_until = pg_catalog.now() + pg_catalog.make_interval(secs => ttl + p_extra_seconds)
   WHERE m.queue_name = p_queue
     AND m.lease_until < pg_catalog.now() + pg_catalog.make_interval(secs => ttl * 0.75 + p_extra_seconds);
END;
$$;

-- Creates the bus role if it is missing (roles are cluster-wide: another
-- database may have made it already) and grants it EXECUTE on the five
-- functions and USAGE on this schema: what calling them needs, nothing else.
CREATE FUNCTION @schema@._pgferry_bus_grant(p_role name)
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
        NULL; -- made by a concurrent migration of another database
      WHEN insufficient_privilege THEN
        -- Installing must not fail for a migrating role without CREATEROLE:
        -- the functions work, an administrator creates the role later and
        -- runs SELECT _pgferry_bus_grant('<role>') (docs/bus.md).
        RAISE WARNING 'pgferry bus: cannot create role %: %; create it and run %._pgferry_bus_grant(%)',
          p_role, SQLERRM, '@schema_name@', pg_catalog.quote_literal(p_role);
        RETURN;
    END;
  END IF;
  EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA @schema@ TO %I', p_role);
  FOREACH fn IN ARRAY ARRAY[
    'bus_join(text)',
    'bus_publish(text, text, jsonb)',
    'bus_subscribe(text, text, integer, integer, integer)',
    'bus_archive(text, text, bigint)',
    'bus_leave(text, text)']
  LOOP
    EXECUTE pg_catalog.format('GRANT EXECUTE ON FUNCTION @schema@.%s TO %I', fn, p_role);
  END LOOP;
END;
$$;

-- ---------------------------------------------------------------------------
-- The five wrappers
-- ---------------------------------------------------------------------------

-- Allocates an opaque queue (bus_<32 hex>: says nothing about the channel)
-- and registers it as a member of p_channel.
CREATE FUNCTION @schema@.bus_join(p_channel text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q text := 'bus_' || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '');
  ttl integer := (SELECT c.member_ttl_seconds FROM @schema@._pgferry_bus_config c);
BEGIN
  IF p_channel IS NULL THEN
    RAISE EXCEPTION 'bus channel must not be NULL' USING ERRCODE = 'PF501';
  END IF;
  PERFORM @schema@._pgferry_bus_reap(8);
  PERFORM @queue_schema@."create"(q);
  INSERT INTO @schema@._pgferry_bus_member (queue_name, channel_hash, lease_until)
  VALUES (q, @schema@._pgferry_bus_channel_hash(p_channel),
          pg_catalog.now() + pg_catalog.make_interval(secs => ttl));
  RETURN q;
END;
$$;

-- Sends p_message to every other live member of the channel and wakes them.
-- Peer rows are taken FOR KEY SHARE in queue order: a concurrent bus_leave
-- (which deletes the row before dropping the queue) either waits for this
-- publish or has already removed the peer, so a publish racing with joins
-- and leaves never fails. Members whose lease ran out are skipped (and
-- reaped without waiting).
CREATE FUNCTION @schema@.bus_publish(p_channel text, p_my_queue text, p_message jsonb)
RETURNS bigint[] LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h bytea := @schema@._pgferry_bus_channel_hash(p_channel);
  ids bigint[] := '{}';
  stale boolean := false;
  r record;
BEGIN
  IF h IS NULL OR p_my_queue IS NULL OR NOT EXISTS (
       SELECT 1 FROM @schema@._pgferry_bus_member m
        WHERE m.queue_name = p_my_queue AND m.channel_hash = h) THEN
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
    ids := ids || (SELECT s FROM @queue_schema@.send(r.queue_name, p_message) s);
    -- One NOTIFY per peer per transaction (identical ones are folded by
    -- PostgreSQL), delivered at commit.
    PERFORM pg_catalog.pg_notify(@schema@._pgferry_bus_wake_channel(r.queue_name, p_channel), '');
  END LOOP;
  IF stale THEN
    PERFORM @schema@._pgferry_bus_reap(8);
  END IF;
  RETURN ids;
END;
$$;

-- Long-polls the caller's queue: reads up to p_qty messages (hidden for
-- p_vt seconds), waiting up to p_max_seconds for the first one and
-- returning as soon as one is there (checked every subscribe_poll_interval_ms).
CREATE FUNCTION @schema@.bus_subscribe(
  p_my_queue text, p_channel text, p_vt integer, p_qty integer, p_max_seconds integer)
RETURNS TABLE(msg_id bigint, message jsonb) LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h bytea := @schema@._pgferry_bus_channel_hash(p_channel);
  wait_s integer := GREATEST(COALESCE(p_max_seconds, 0), 0);
  deadline timestamp with time zone := pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => wait_s);
  interval_s double precision :=
    (SELECT c.subscribe_poll_interval_ms FROM @schema@._pgferry_bus_config c) / 1000.0;
  remaining double precision;
BEGIN
  IF h IS NULL OR p_my_queue IS NULL OR NOT EXISTS (
       SELECT 1 FROM @schema@._pgferry_bus_member m
        WHERE m.queue_name = p_my_queue AND m.channel_hash = h) THEN
    RAISE EXCEPTION 'queue is not a member of this bus channel' USING ERRCODE = 'PF502';
  END IF;
  IF p_vt IS NULL OR p_qty IS NULL OR p_qty < 0 THEN
    RAISE EXCEPTION 'p_vt and p_qty must be given (p_qty >= 0)' USING ERRCODE = 'PF501';
  END IF;
  LOOP
    RETURN QUERY
      SELECT r.msg_id, r.message FROM @queue_schema@.read(p_my_queue, p_vt, p_qty) r ORDER BY r.msg_id;
    EXIT WHEN FOUND;
    remaining := EXTRACT(epoch FROM deadline - pg_catalog.clock_timestamp());
    EXIT WHEN remaining <= 0;
    PERFORM pg_catalog.pg_sleep(LEAST(interval_s, remaining));
  END LOOP;
  -- The heartbeat is written after the wait, so no transaction id is held
  -- (and no registry row locked) while the poll sleeps.
  PERFORM @schema@._pgferry_bus_touch(p_my_queue, 0);
END;
$$;

-- Archives one message of the caller's queue: true once, false for a second
-- archive, an unknown id, or a queue that is not a member of the channel.
CREATE FUNCTION @schema@.bus_archive(p_my_queue text, p_channel text, p_msg_id bigint)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h bytea := @schema@._pgferry_bus_channel_hash(p_channel);
BEGIN
  IF h IS NULL OR p_my_queue IS NULL OR p_msg_id IS NULL OR NOT EXISTS (
       SELECT 1 FROM @schema@._pgferry_bus_member m
        WHERE m.queue_name = p_my_queue AND m.channel_hash = h) THEN
    RETURN false;
  END IF;
  RETURN @queue_schema@.archive(p_my_queue, p_msg_id);
END;
$$;

-- Leaves the channel and drops the caller's queue. The registry row goes
-- first (waiting for in-flight publishes that hold it), then the queue.
-- A queue that is not a member (already left, reaped, another channel) is
-- left alone.
CREATE FUNCTION @schema@.bus_leave(p_my_queue text, p_channel text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h bytea := @schema@._pgferry_bus_channel_hash(p_channel);
  q text;
BEGIN
  IF h IS NULL OR p_my_queue IS NULL THEN
    RETURN;
  END IF;
  DELETE FROM @schema@._pgferry_bus_member m
   WHERE m.queue_name = p_my_queue AND m.channel_hash = h
  RETURNING m.queue_name INTO q;
  IF q IS NULL THEN
    RETURN;
  END IF;
  PERFORM @queue_schema@.drop_queue(q);
END;
$$;

-- ---------------------------------------------------------------------------
-- Privileges: nothing for PUBLIC; the bus role gets the five functions.
-- The role's name comes from the setting pgferry.bus_role when the migration
-- runs (PGOPTIONS='-c pgferry.bus_role=my_role'), default pgferry_bus.
-- ---------------------------------------------------------------------------
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_channel_hash(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_wake_channel(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_reap(integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_touch(text, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_grant(name) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.bus_join(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.bus_publish(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.bus_subscribe(text, text, integer, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.bus_archive(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION @schema@.bus_leave(text, text) FROM PUBLIC;

UPDATE @schema@._pgferry_bus_config
   SET bus_role = COALESCE(NULLIF(current_setting('pgferry.bus_role', true), ''), 'pgferry_bus');
SELECT @schema@._pgferry_bus_grant(c.bus_role) FROM @schema@._pgferry_bus_config c;
