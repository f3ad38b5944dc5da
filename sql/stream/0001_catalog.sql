-- pgferry stream engine, migration 1: roles, PgQ catalog tables and internal helpers.
--
-- Written from scratch against ../shared/reference/pgque-api.md (PgQue 0.2.0).
-- `@schema@` is the engine's schema (default pgque). The state lives in PgQ's
-- table layout because PgQue's own clients read those tables by name.
--
-- Roles are cluster-wide and named after the schema: `<schema>_reader`,
-- `<schema>_writer`, `<schema>_admin` (so `pgque_*` for the default schema).
-- A second installation under another schema therefore never hands its
-- readers the rights of the first one. They are created only when missing,
-- tolerating a concurrent migration in another database creating them first.
DO $roles$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['@schema_name@_reader', '@schema_name@_writer', '@schema_name@_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I NOLOGIN', r);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL; -- another session created it meanwhile: fine, roles are shared
      END;
    END IF;
  END LOOP;
  -- admin inherits both API roles; reader and writer stay siblings.
  FOREACH r IN ARRAY ARRAY['@schema_name@_reader', '@schema_name@_writer'] LOOP
    IF NOT pg_has_role('@schema_name@_admin', r, 'MEMBER') THEN
      BEGIN
        EXECUTE format('GRANT %I TO %I', r, '@schema_name@_admin');
      EXCEPTION WHEN unique_violation OR duplicate_object THEN
        NULL; -- granted concurrently by a migration in another database
      END;
    END IF;
  END LOOP;
END
$roles$;

CREATE TABLE @schema@.queue (
  queue_id                 serial PRIMARY KEY,
  queue_name               text NOT NULL UNIQUE,
  queue_ntables            int4 NOT NULL DEFAULT 3,
  queue_cur_table          int4 NOT NULL DEFAULT 0,
  queue_rotation_period    interval NOT NULL DEFAULT '2 hours',
  -- Rotation bookkeeping (PgQ): step1 = txid of the switching transaction,
  -- step2 = xmax of a snapshot taken after step1 committed (NULL until then).
  queue_switch_step1       bigint NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
  queue_switch_step2       bigint DEFAULT pg_current_xact_id()::text::bigint,
  queue_switch_time        timestamptz NOT NULL DEFAULT now(),
  queue_external_ticker    boolean NOT NULL DEFAULT false,
  queue_disable_insert     boolean NOT NULL DEFAULT false,
  queue_ticker_paused      boolean NOT NULL DEFAULT false,
  queue_ticker_max_count   int4 NOT NULL DEFAULT 500,
  queue_ticker_max_lag     interval NOT NULL DEFAULT '3 seconds',
  queue_ticker_idle_period interval NOT NULL DEFAULT '1 minute',
  queue_data_pfx           text NOT NULL,
  queue_event_seq          text NOT NULL,
  queue_tick_seq           text NOT NULL,
  queue_extra_maint        text[],
  queue_max_retries        int4
);

CREATE TABLE @schema@.consumer (
  co_id   serial PRIMARY KEY,
  co_name text NOT NULL UNIQUE
);

CREATE SEQUENCE @schema@.subscription_sub_id_seq;
CREATE SEQUENCE @schema@.batch_id_seq;

CREATE TABLE @schema@.subscription (
  sub_id        int4 NOT NULL,
  sub_queue     int4 NOT NULL REFERENCES @schema@.queue (queue_id),
  sub_consumer  int4 NOT NULL REFERENCES @schema@.consumer (co_id),
  sub_last_tick bigint,
  sub_active    timestamptz NOT NULL DEFAULT now(),
  sub_batch     bigint UNIQUE,
  sub_next_tick bigint,
  sub_role      text NOT NULL DEFAULT 'normal' CHECK (sub_role IN ('normal', 'coop_main', 'coop_member')),
  PRIMARY KEY (sub_queue, sub_consumer)
);
CREATE INDEX ON @schema@.subscription (sub_id);

CREATE TABLE @schema@.tick (
  tick_queue     int4 NOT NULL,
  tick_id        bigint NOT NULL,
  tick_time      timestamptz NOT NULL DEFAULT now(),
  tick_snapshot  pg_snapshot NOT NULL DEFAULT pg_current_snapshot(),
  tick_event_seq bigint NOT NULL,
  PRIMARY KEY (tick_queue, tick_id)
);

CREATE TABLE @schema@.retry_queue (
  ev_retry_after timestamptz NOT NULL,
  ev_queue       int4 NOT NULL,
  ev_id          bigint NOT NULL,
  ev_time        timestamptz NOT NULL,
  ev_txid        xid8,
  ev_owner       int4 NOT NULL,
  ev_retry       int4,
  ev_type        text,
  ev_data        text,
  ev_extra1      text,
  ev_extra2      text,
  ev_extra3      text,
  ev_extra4      text,
  PRIMARY KEY (ev_owner, ev_id)
);
CREATE INDEX retry_queue_due_idx ON @schema@.retry_queue (ev_retry_after);

CREATE TABLE @schema@.dead_letter (
  dl_id          bigserial PRIMARY KEY,
  dl_queue_id    int4 NOT NULL REFERENCES @schema@.queue (queue_id) ON DELETE CASCADE,
  dl_consumer_id int4 NOT NULL REFERENCES @schema@.consumer (co_id) ON DELETE CASCADE,
  dl_time        timestamptz NOT NULL DEFAULT now(),
  dl_reason      text DEFAULT 'max retries exceeded',
  ev_id          bigint NOT NULL,
  ev_time        timestamptz NOT NULL,
  ev_txid        xid8,
  ev_retry       int4,
  ev_type        text,
  ev_data        text,
  ev_extra1      text,
  ev_extra2      text,
  ev_extra3      text,
  ev_extra4      text
);
CREATE UNIQUE INDEX dead_letter_event_uq ON @schema@.dead_letter (dl_queue_id, dl_consumer_id, ev_id);
CREATE INDEX dead_letter_time_idx ON @schema@.dead_letter (dl_queue_id, dl_time);

CREATE TABLE @schema@.config (
  singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  ticker_job_id  bigint,
  maint_job_id   bigint,
  scheduler      text CHECK (scheduler IN ('pg_cron', 'pg_timetable')),
  tick_period_ms int4 NOT NULL DEFAULT 100,
  installed_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO @schema@.config DEFAULT VALUES;

-- Parent of every queue's event tables (PgQ's event_template). Per queue:
-- event_<id> (empty parent) with children event_<id>_0 .. _2 by inheritance.
CREATE TABLE @schema@.event_template (
  ev_id     bigint NOT NULL,
  ev_time   timestamptz NOT NULL,
  ev_txid   xid8 NOT NULL DEFAULT pg_current_xact_id(),
  ev_owner  int4,
  ev_retry  int4,
  ev_type   text,
  ev_data   text,
  ev_extra1 text,
  ev_extra2 text,
  ev_extra3 text,
  ev_extra4 text
);

-- pgferry addition: consumers waiting for events (see request_tick). A send
-- NOTIFYs the ticker only while a consumer waits, so an idle system wakes in
-- milliseconds without paying a NOTIFY per message under load.
CREATE UNLOGGED TABLE @schema@._waiter (
  queue_id int4 PRIMARY KEY,
  until    timestamptz NOT NULL
);

CREATE TYPE @schema@.message AS (
  msg_id      bigint,
  batch_id    bigint,
  type        text,
  payload     text,
  retry_count int4,
  created_at  timestamptz,
  extra1      text,
  extra2      text,
  extra3      text,
  extra4      text
);

-- Internal: the quoted name of event table `n` of a queue (NULL n = the parent).
CREATE FUNCTION @schema@._event_table(i_queue_id int4, n int4 DEFAULT NULL) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT format('%I.%I', '@schema_name@', 'event_' || i_queue_id || coalesce('_' || n, ''))
$$;

-- Internal: current value of a queue's event-id sequence (0 before the first send).
CREATE FUNCTION @schema@._seq_value(i_queue_id int4) RETURNS bigint
LANGUAGE sql STABLE AS $$
  SELECT coalesce(pg_sequence_last_value(format('%I.%I', '@schema_name@', 'event_' || i_queue_id || '_id_seq')::regclass), 0)
$$;

-- Internal: a snapshot that also counts the current transaction as running.
-- pg_current_snapshot() omits our own xid from xip, so a tick taken in the
-- same transaction as a send would count that send as committed whenever a
-- later transaction has completed meanwhile (xmax beyond our xid). Adding our
-- xid to xip makes "a tick never includes events of its own transaction"
-- deterministic. When our xid is >= xmax it is already invisible, and xmax
-- must not move: xids at or above xmax are implicitly in progress.
CREATE FUNCTION @schema@._tick_snapshot() RETURNS pg_snapshot
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  s    pg_snapshot := pg_current_snapshot();
  own  xid8 := pg_current_xact_id_if_assigned();
  xips text;
BEGIN
  IF own IS NULL OR own >= pg_snapshot_xmax(s) THEN
    RETURN s;
  END IF;
  SELECT string_agg(x::text, ',' ORDER BY x)
    INTO xips
    FROM (SELECT pg_snapshot_xip(s)::text::bigint AS x UNION SELECT own::text::bigint) t;
  RETURN format('%s:%s:%s', least(pg_snapshot_xmin(s), own), pg_snapshot_xmax(s), xips)::pg_snapshot;
END
$$;

-- Internal: (re)applies the role model. Every migration that adds functions
-- calls it last, so new functions never keep PUBLIC's default EXECUTE.
CREATE FUNCTION @schema@._apply_grants() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  reader text := '@schema_name@_reader';
  writer text := '@schema_name@_writer';
  admin  text := '@schema_name@_admin';
  f      record;
  t      record;
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC, %I, %I', '@schema_name@', reader, writer);
  EXECUTE format('GRANT ALL ON SCHEMA %I TO %I', '@schema_name@', admin);
  EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', '@schema_name@');
  EXECUTE format('REVOKE ALL ON ALL PROCEDURES IN SCHEMA %I FROM PUBLIC', '@schema_name@');
  EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', '@schema_name@', reader);
  EXECUTE format('GRANT ALL ON ALL TABLES IN SCHEMA %I TO %I', '@schema_name@', admin);
  EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO %I', '@schema_name@', admin);
  FOR t IN SELECT c.relname FROM pg_class c
            WHERE c.relnamespace = '@schema_name@'::regnamespace AND c.relkind IN ('r', 'p')
              AND (c.relname IN ('queue', 'consumer', 'subscription', 'tick', 'retry_queue', 'event_template')
                   OR c.relname ~ '^event_[0-9]+(_[0-9]+)?$') LOOP
    EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', '@schema_name@', t.relname);
  END LOOP;
  FOR f IN SELECT p.oid::regprocedure AS sig, p.proname, p.prokind FROM pg_proc p
            WHERE p.pronamespace = '@schema_name@'::regnamespace LOOP
    IF f.proname IN ('uninstall', '_send_batch_rows') THEN
      CONTINUE;
    END IF;
    EXECUTE format('GRANT EXECUTE ON %s %s TO %I',
                   CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig, admin);
    IF f.proname IN ('subscribe', 'unsubscribe', 'receive', 'ack', 'nack', 'register_consumer',
                     'register_consumer_at', 'unregister_consumer', 'next_batch', 'next_batch_info',
                     'next_batch_custom', 'get_batch_events', 'finish_batch', 'event_retry',
                     'register_subconsumer', 'subscribe_subconsumer', 'unregister_subconsumer',
                     'unsubscribe_subconsumer', 'receive_coop', 'touch_subconsumer', 'get_queue_info',
                     'get_consumer_info', 'get_batch_info', 'dlq_inspect', 'version', 'request_tick') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.sig, reader);
    ELSIF f.proname IN ('send', 'send_batch', 'insert_event', 'dlq_replay', 'dlq_replay_all') THEN
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f.sig, writer);
    END IF;
  END LOOP;
END
$$;

SELECT @schema@._apply_grants();
