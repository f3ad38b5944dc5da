-- pgferry bus, migration 2: members bound to their role, and caps on joins
-- (docs/security.md).
--
-- Queue names returned by bus_join are visible in pg_class (they are real
-- queue-engine queues, a contract requirement), so knowing a name must not
-- be enough to use it: every member row now records the LOGIN role of the
-- session that joined (session_user, which SET ROLE does not change), and
-- bus_publish / bus_subscribe / bus_archive / bus_leave accept a queue only
-- from a session of that role. Isolated peers therefore need one login role
-- each; peers sharing a login trust each other.
--
-- bus_join is capped (settable by the owner in _pgferry_bus_config, see
-- configureBus()): live members per channel, live members per role, joins
-- per role per minute and joins per transaction. Over a cap bus_join raises
-- SQLSTATE PF503 and changes nothing. Members whose session is gone stop
-- renewing their lease and are reaped after member_ttl_seconds; a join that
-- meets a member cap reaps expired members first.

ALTER TABLE @schema@._pgferry_bus_config
  ADD COLUMN max_members_per_channel integer NOT NULL DEFAULT 256 CHECK (max_members_per_channel > 0),
  ADD COLUMN max_members_per_role integer NOT NULL DEFAULT 1000 CHECK (max_members_per_role > 0),
  ADD COLUMN max_joins_per_minute integer NOT NULL DEFAULT 600 CHECK (max_joins_per_minute > 0),
  ADD COLUMN max_joins_per_transaction integer NOT NULL DEFAULT 16 CHECK (max_joins_per_transaction > 0);

-- Members that joined before this migration belong to no role ('' matches
-- no session): they can no longer be used and are reaped when their lease
-- runs out. Clients re-join.
ALTER TABLE @schema@._pgferry_bus_member ADD COLUMN owner_role name NOT NULL DEFAULT '';
ALTER TABLE @schema@._pgferry_bus_member ALTER COLUMN owner_role DROP DEFAULT;
CREATE INDEX _pgferry_bus_member_role_idx ON @schema@._pgferry_bus_member (owner_role, lease_until);

-- Join counters, one row per role: joins in the current minute and in the
-- current top-level transaction (pg_current_xact_id() is the same in every
-- savepoint, so rolling back to one does not reset the count).
CREATE TABLE @schema@._pgferry_bus_join_rate (
  owner_role name PRIMARY KEY,
  window_start timestamp with time zone NOT NULL,
  window_joins integer NOT NULL,
  xact xid8 NOT NULL,
  xact_joins integer NOT NULL
);
REVOKE ALL ON @schema@._pgferry_bus_join_rate FROM PUBLIC;

-- Internal: is p_queue a member of the channel hash, joined by this session's role?
CREATE FUNCTION @schema@._pgferry_bus_is_member(p_queue text, p_hash bytea)
RETURNS boolean LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp AS $$
  SELECT p_queue IS NOT NULL AND p_hash IS NOT NULL AND EXISTS (
    SELECT 1 FROM @schema@._pgferry_bus_member m
     WHERE m.queue_name = p_queue AND m.channel_hash = p_hash AND m.owner_role = session_user);
$$;
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_is_member(text, bytea) FROM PUBLIC;

-- Internal: refuses a join over any cap (PF503), else counts it.
CREATE FUNCTION @schema@._pgferry_bus_admit(p_hash bytea)
RETURNS void LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cfg @schema@._pgferry_bus_config;
  who name := session_user;
  minute timestamp with time zone := pg_catalog.date_trunc('minute', pg_catalog.clock_timestamp());
  me xid8 := pg_catalog.pg_current_xact_id();
  r @schema@._pgferry_bus_join_rate;
  n bigint;
BEGIN
  SELECT * INTO cfg FROM @schema@._pgferry_bus_config;
  -- Counting is per role (the row lock serialises a role's joins until
  -- commit) and per channel (an advisory lock on the channel's hash).
  INSERT INTO @schema@._pgferry_bus_join_rate AS j (owner_role, window_start, window_joins, xact, xact_joins)
  VALUES (who, minute, 1, me, 1)
  ON CONFLICT (owner_role) DO UPDATE
     SET window_joins = CASE WHEN j.window_start = minute THEN j.window_joins + 1 ELSE 1 END,
         window_start = minute,
         xact_joins = CASE WHEN j.xact = me THEN j.xact_joins + 1 ELSE 1 END,
         xact = me
  RETURNING j.* INTO r;
  IF r.xact_joins > cfg.max_joins_per_transaction THEN
    RAISE EXCEPTION 'bus limit reached: more than % bus_join calls in one transaction',
      cfg.max_joins_per_transaction USING ERRCODE = 'PF503',
      HINT = 'commit between joins; the bus owner can raise max_joins_per_transaction';
  END IF;
  IF r.window_joins > cfg.max_joins_per_minute THEN
    RAISE EXCEPTION 'bus limit reached: more than % bus_join calls by role % in this minute',
      cfg.max_joins_per_minute, who USING ERRCODE = 'PF503',
      HINT = 'retry later; the bus owner can raise max_joins_per_minute';
  END IF;
  PERFORM pg_catalog.pg_advisory_xact_lock(
    ('x' || pg_catalog.left(pg_catalog.encode(p_hash, 'hex'), 16))::bit(64)::bigint);
  SELECT count(*) INTO n FROM @schema@._pgferry_bus_member m
   WHERE m.owner_role = who AND m.lease_until >= pg_catalog.now();
  IF n >= cfg.max_members_per_role THEN
    PERFORM @schema@._pgferry_bus_reap(64);
    SELECT count(*) INTO n FROM @schema@._pgferry_bus_member m
     WHERE m.owner_role = who AND m.lease_until >= pg_catalog.now();
    IF n >= cfg.max_members_per_role THEN
      RAISE EXCEPTION 'bus limit reached: role % already has % members (max_members_per_role)',
        who, n USING ERRCODE = 'PF503',
        HINT = 'call bus_leave for members no longer used; the bus owner can raise max_members_per_role';
    END IF;
  END IF;
  SELECT count(*) INTO n FROM @schema@._pgferry_bus_member m
   WHERE m.channel_hash = p_hash AND m.lease_until >= pg_catalog.now();
  IF n >= cfg.max_members_per_channel THEN
    PERFORM @schema@._pgferry_bus_reap(64);
    SELECT count(*) INTO n FROM @schema@._pgferry_bus_member m
     WHERE m.channel_hash = p_hash AND m.lease_until >= pg_catalog.now();
  END IF;
  IF n >= cfg.max_members_per_channel THEN
    RAISE EXCEPTION 'bus limit reached: the channel already has % members (max_members_per_channel)',
      n USING ERRCODE = 'PF503',
      HINT = 'the bus owner can raise max_members_per_channel';
  END IF;
END;
$$;
REVOKE ALL ON FUNCTION @schema@._pgferry_bus_admit(bytea) FROM PUBLIC;

CREATE OR REPLACE FUNCTION @schema@.bus_join(p_channel text)
RETURNS text LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q text := 'bus_' || pg_catalog.replace(pg_catalog.gen_random_uuid()::text, '-', '');
  h bytea := @schema@._pgferry_bus_channel_hash(p_channel);
  ttl integer := (SELECT c.member_ttl_seconds FROM @schema@._pgferry_bus_config c);
BEGIN
  IF p_channel IS NULL THEN
    RAISE EXCEPTION 'bus channel must not be NULL' USING ERRCODE = 'PF501';
  END IF;
  PERFORM @schema@._pgferry_bus_admit(h);
  PERFORM @schema@._pgferry_bus_reap(8);
  PERFORM @queue_schema@."create"(q);
  INSERT INTO @schema@._pgferry_bus_member (queue_name, channel_hash, lease_until, owner_role)
  VALUES (q, h, pg_catalog.now() + pg_catalog.make_interval(secs => ttl), session_user);
  RETURN q;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bus_publish(p_channel text, p_my_queue text, p_message jsonb)
RETURNS bigint[] LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  h bytea := @schema@._pgferry_bus_channel_hash(p_channel);
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
    ids := ids || (SELECT s FROM @queue_schema@.send(r.queue_name, p_message) s);
    PERFORM pg_catalog.pg_notify(@schema@._pgferry_bus_wake_channel(r.queue_name, p_channel), '');
  END LOOP;
  IF stale THEN
    PERFORM @schema@._pgferry_bus_reap(8);
  END IF;
  RETURN ids;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bus_subscribe(
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
  IF NOT @schema@._pgferry_bus_is_member(p_my_queue, h) THEN
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
  PERFORM @schema@._pgferry_bus_touch(p_my_queue, 0);
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bus_archive(p_my_queue text, p_channel text, p_msg_id bigint)
RETURNS boolean LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF p_msg_id IS NULL
     OR NOT @schema@._pgferry_bus_is_member(p_my_queue, @schema@._pgferry_bus_channel_hash(p_channel)) THEN
    RETURN false;
  END IF;
  RETURN @queue_schema@.archive(p_my_queue, p_msg_id);
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.bus_leave(p_my_queue text, p_channel text)
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
   WHERE m.queue_name = p_my_queue AND m.channel_hash = h AND m.owner_role = session_user
  RETURNING m.queue_name INTO q;
  IF q IS NULL THEN
    RETURN;
  END IF;
  PERFORM @queue_schema@.drop_queue(q);
END;
$$;
