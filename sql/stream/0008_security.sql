-- Stream engine migration 8: security hardening (docs/security.md).
--
-- 1. get_batch_cursor(batch, cursor, limit, extra_where) runs the caller's
--    filter text with the CALLER's rights. It used to be SECURITY DEFINER and
--    splice i_extra_where into a query run as the migrating role (usually a
--    superuser): a holder of <schema>_admin could read pg_authid or call
--    pg_read_file through it. Now the function is SECURITY INVOKER and its
--    cursor reads the batch through _batch_window_events, a SECURITY DEFINER
--    helper that takes no text at all.
-- 2. <schema>_admin keeps every API function and DML on the tables, but no
--    longer holds TRIGGER / REFERENCES on them nor CREATE on the schema: a
--    trigger it put on a catalog table would run as the owner whenever a
--    SECURITY DEFINER function writes that table. maint() runs extra-maint
--    hooks only when they are functions of this schema (admin may write the
--    queue row that names them; before, any owner-owned function such as a
--    pg_catalog one could be named).
-- 3. Default read policy: payloads (event tables, retry_queue) and the
--    catalog are readable by <schema>_reader and <schema>_admin only, not by
--    PUBLIC. PgQue grants PUBLIC SELECT on them; an admin restores that with
--    SELECT <schema>.set_public_read(true) (docs/compatibility.md).

ALTER TABLE @schema@.config ADD COLUMN public_read boolean NOT NULL DEFAULT false;

-- Internal: (re)applies PUBLIC's SELECT on PgQ's legacy set of tables
-- according to config.public_read.
CREATE FUNCTION @schema@._apply_read_policy() RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  pub boolean := coalesce((SELECT c.public_read FROM @schema@.config c), false);
  t   record;
BEGIN
  FOR t IN SELECT c.relname FROM pg_class c
            WHERE c.relnamespace = '@schema_name@'::regnamespace AND c.relkind IN ('r', 'p')
              AND (c.relname IN ('queue', 'consumer', 'subscription', 'tick', 'retry_queue', 'event_template')
                   OR c.relname ~ '^event_[0-9]+(_[0-9]+)?$') LOOP
    IF pub THEN
      EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', '@schema_name@', t.relname);
    ELSE
      EXECUTE format('REVOKE SELECT ON %I.%I FROM PUBLIC', '@schema_name@', t.relname);
    END IF;
  END LOOP;
END
$$;

-- Internal: the grants of one new event table (create_queue).
CREATE FUNCTION @schema@._grant_event_table(i_table text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  EXECUTE format('GRANT SELECT ON %I.%I TO %I', '@schema_name@', i_table, '@schema_name@_reader');
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON %I.%I TO %I',
                 '@schema_name@', i_table, '@schema_name@_admin');
  IF coalesce((SELECT c.public_read FROM @schema@.config c), false) THEN
    EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', '@schema_name@', i_table);
  END IF;
END
$$;

-- The switch for PgQue's behaviour: true grants PUBLIC SELECT on queue,
-- consumer, subscription, tick, retry_queue and every event table (payloads
-- included); false (the default) revokes it. Returns the new setting.
CREATE FUNCTION @schema@.set_public_read(i_enabled boolean) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF i_enabled IS NULL THEN
    RAISE EXCEPTION 'set_public_read: i_enabled must not be NULL';
  END IF;
  UPDATE @schema@.config SET public_read = i_enabled;
  PERFORM @schema@._apply_read_policy();
  RETURN i_enabled;
END
$$;

-- The role model, as in migration 1 but: admin gets USAGE (not CREATE) on
-- the schema and SELECT/INSERT/UPDATE/DELETE/TRUNCATE (not TRIGGER or
-- REFERENCES) on the tables; PUBLIC's table access follows the read policy.
-- Every later migration that adds functions calls this last; a migration
-- that redefines it must keep the _apply_read_policy() call.
CREATE OR REPLACE FUNCTION @schema@._apply_grants() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  reader text := '@schema_name@_reader';
  writer text := '@schema_name@_writer';
  admin  text := '@schema_name@_admin';
  f      record;
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO PUBLIC, %I, %I, %I', '@schema_name@', reader, writer, admin);
  EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM %I', '@schema_name@', admin);
  EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM PUBLIC', '@schema_name@');
  EXECUTE format('REVOKE ALL ON ALL PROCEDURES IN SCHEMA %I FROM PUBLIC', '@schema_name@');
  EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', '@schema_name@', reader);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA %I TO %I',
                 '@schema_name@', admin);
  EXECUTE format('REVOKE TRIGGER, REFERENCES ON ALL TABLES IN SCHEMA %I FROM %I', '@schema_name@', admin);
  EXECUTE format('GRANT ALL ON ALL SEQUENCES IN SCHEMA %I TO %I', '@schema_name@', admin);
  PERFORM @schema@._apply_read_policy();
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

-- create_queue as in migration 2, with the event tables' grants taken from
-- _grant_event_table (reader SELECT, admin DML, PUBLIC only under the
-- PgQue-compatible read policy).
CREATE OR REPLACE FUNCTION @schema@.create_queue(i_queue_name text) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  qid  int4;
  base text;
  n    int4;
BEGIN
  IF i_queue_name IS NULL THEN
    RAISE EXCEPTION 'Invalid NULL value';
  END IF;
  IF octet_length(i_queue_name) > 57 THEN
    RAISE EXCEPTION 'queue name too long: % bytes (max 57). pg_notify channel ''pgque_<queue_name>'' must fit in 63 bytes.',
      octet_length(i_queue_name);
  END IF;
  qid := nextval(pg_get_serial_sequence('@schema@.queue', 'queue_id'));
  base := 'event_' || qid;
  INSERT INTO @schema@.queue (queue_id, queue_name, queue_data_pfx, queue_event_seq, queue_tick_seq)
  VALUES (qid, i_queue_name, '@schema_name@.' || base, '@schema_name@.' || base || '_id_seq',
          '@schema_name@.' || base || '_tick_seq')
  ON CONFLICT (queue_name) DO NOTHING;
  IF NOT FOUND THEN
    RETURN 0;
  END IF;
  EXECUTE format('CREATE SEQUENCE %I.%I', '@schema_name@', base || '_id_seq');
  EXECUTE format('CREATE SEQUENCE %I.%I', '@schema_name@', base || '_tick_seq');
  EXECUTE format('CREATE TABLE %I.%I () INHERITS (@schema@.event_template)', '@schema_name@', base);
  FOR n IN 0..2 LOOP
    EXECUTE format('CREATE TABLE %I.%I () INHERITS (%I.%I)', '@schema_name@', base || '_' || n, '@schema_name@', base);
    -- Batches are cut by transaction id; the index serves the xid range scan.
    EXECUTE format('CREATE INDEX ON %I.%I (ev_txid)', '@schema_name@', base || '_' || n);
    PERFORM @schema@._grant_event_table(base || '_' || n);
  END LOOP;
  PERFORM @schema@._grant_event_table(base);
  EXECUTE format('GRANT ALL ON SEQUENCE %I.%I, %I.%I TO %I', '@schema_name@', base || '_id_seq',
                 '@schema_name@', base || '_tick_seq', '@schema_name@_admin');
  PERFORM @schema@._insert_tick(q, NULL) FROM @schema@.queue q WHERE q.queue_id = qid;
  RETURN 1;
END
$$;

-- maint() as in migration 5, but an extra-maint hook must be a function of
-- this schema (owned by its owner): admin can write queue_extra_maint, and
-- the hook runs as the owner.
CREATE OR REPLACE FUNCTION @schema@.maint() RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  q     @schema@.queue;
  n     integer := 0;
  fn    text;
BEGIN
  n := n + @schema@.maint_rotate_tables_step2();
  FOR q IN SELECT * FROM @schema@.queue ORDER BY queue_name LOOP
    n := n + @schema@.maint_rotate_tables_step1(q.queue_name);
    IF q.queue_extra_maint IS NOT NULL THEN
      FOREACH fn IN ARRAY q.queue_extra_maint LOOP
        IF EXISTS (SELECT 1 FROM pg_proc p WHERE p.oid = to_regproc(fn)
                      AND p.pronamespace = '@schema_name@'::regnamespace
                      AND p.proname NOT IN ('uninstall', '_send_batch_rows')
                      AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = '@schema_name@')) THEN
          EXECUTE format('SELECT %s($1)', to_regproc(fn)) USING q.queue_name;
          n := n + 1;
        END IF;
      END LOOP;
    END IF;
  END LOOP;
  RETURN n;
END
$$;

-- Internal, SECURITY DEFINER: the events of an active batch, as rows of the
-- event tables (the columns a get_batch_cursor filter may name). Takes no
-- text, so nothing of the caller's runs with the owner's rights.
CREATE FUNCTION @schema@._batch_window_events(i_batch_id bigint) RETURNS SETOF @schema@.event_template
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  b record;
BEGIN
  b := @schema@._batch(i_batch_id);
  IF (b.sub).sub_batch IS NULL THEN
    RAISE EXCEPTION 'batch not found';
  END IF;
  RETURN QUERY SELECT * FROM @schema@._window_events((b.q).queue_id, (b.sub).sub_id, b.s1, b.s2);
END
$$;

-- SECURITY INVOKER: the filter runs with the caller's own rights.
CREATE OR REPLACE FUNCTION @schema@.get_batch_cursor(i_batch_id bigint, i_cursor_name text, i_quick_limit integer,
  i_extra_where text,
  OUT ev_id bigint, OUT ev_time timestamptz, OUT ev_txid bigint, OUT ev_retry integer, OUT ev_type text,
  OUT ev_data text, OUT ev_extra1 text, OUT ev_extra2 text, OUT ev_extra3 text, OUT ev_extra4 text)
RETURNS SETOF record
LANGUAGE plpgsql SECURITY INVOKER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  cur refcursor := i_cursor_name;
  n   integer := 0;
BEGIN
  -- The cursor stays open for the rest of the transaction: FETCH the remainder from it.
  OPEN cur FOR EXECUTE format(
    'SELECT e.ev_id, e.ev_time, e.ev_txid::text::bigint, e.ev_retry, e.ev_type, e.ev_data,
            e.ev_extra1, e.ev_extra2, e.ev_extra3, e.ev_extra4
       FROM @schema@._batch_window_events($1) e %s ORDER BY e.ev_id',
    CASE WHEN coalesce(i_extra_where, '') <> '' THEN 'WHERE ' || i_extra_where ELSE '' END)
    USING i_batch_id;
  LOOP
    EXIT WHEN i_quick_limit IS NOT NULL AND n >= i_quick_limit;
    FETCH cur INTO ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4;
    EXIT WHEN NOT FOUND;
    n := n + 1;
    RETURN NEXT;
  END LOOP;
END
$$;

SELECT @schema@._apply_grants();
