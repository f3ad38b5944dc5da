-- pgferry stream engine, migration 13: an event sent through the SQL
-- functions can no longer land in an event table that rotation empties
-- before any consumer saw it.
--
-- insert_event and _send_batch_rows (behind send_batch / insert_event_bulk)
-- read the queue's current event table, then insert into it. Until the
-- INSERT a sender had no transaction id, and rotation waits only for
-- transactions with one (step 2: every transaction older than the switch
-- has ended). A sender held between the two statements (a lock on the
-- event table) through two switches inserted into the table the next
-- maint() truncated: the event was lost with no error.
-- test/stream/rotation-late-insert.test.ts replays it.
--
-- Now they take their transaction id first (pg_current_xact_id(), which
-- the INSERT would take a moment later anyway), so rotation waits for them
-- as it waits for every writer; the prepared send re-checks the current
-- table inside its INSERT and was not affected. Otherwise as migration 2
-- (CREATE OR REPLACE keeps grants).

CREATE OR REPLACE FUNCTION @schema@.insert_event(queue_name text, ev_type text, ev_data text, ev_extra1 text, ev_extra2 text,
                                      ev_extra3 text, ev_extra4 text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p   record;
  id  bigint;
BEGIN
  PERFORM pg_current_xact_id(); -- before the current table is read (see the header)
  p := @schema@._producer_queue(queue_name);
  EXECUTE format('INSERT INTO %s (ev_id, ev_time, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
                  VALUES (nextval(%L), now(), $1, $2, $3, $4, $5, $6) RETURNING ev_id',
                 @schema@._event_table((p.q).queue_id, (p.q).queue_cur_table),
                 format('%I.%I', '@schema_name@', 'event_' || (p.q).queue_id || '_id_seq'))
    INTO id USING ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4;
  IF p.wake THEN
    PERFORM pg_notify('pgferry.@schema_name@.tick_request', (p.q).queue_name);
  END IF;
  RETURN id;
END
$$;

CREATE OR REPLACE FUNCTION @schema@._send_batch_rows(i_queue_name text, i_type text, i_payloads text[]) RETURNS bigint[]
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  p   record;
  ids bigint[];
  seq regclass;
BEGIN
  IF i_payloads IS NULL THEN
    RAISE EXCEPTION 'payloads must not be null';
  END IF;
  IF cardinality(i_payloads) = 0 THEN
    RETURN '{}';
  END IF;
  PERFORM pg_current_xact_id(); -- before the current table is read (see the header)
  p := @schema@._producer_queue(i_queue_name);
  seq := format('%I.%I', '@schema_name@', 'event_' || (p.q).queue_id || '_id_seq')::regclass;
  -- Ids first, so they line up with input positions whatever order the insert takes.
  ids := ARRAY(SELECT nextval(seq) FROM generate_series(1, cardinality(i_payloads)));
  EXECUTE format('INSERT INTO %s (ev_id, ev_time, ev_type, ev_data)
                  SELECT i, now(), $1, d FROM unnest($2::bigint[], $3::text[]) AS u(i, d)',
                 @schema@._event_table((p.q).queue_id, (p.q).queue_cur_table))
    USING i_type, ids, i_payloads;
  IF p.wake THEN
    PERFORM pg_notify('pgferry.@schema_name@.tick_request', (p.q).queue_name);
  END IF;
  RETURN ids;
END
$$;
