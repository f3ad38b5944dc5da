-- pgferry queue engine, migration 6: wake-ups that survive a crash.
--
-- PGMQ keeps the notify throttles in UNLOGGED tables (notify_insert_throttle,
-- notify_delete_throttle): cheap to update on every notifying insert, but
-- crash recovery empties them. The triggers stay (they are in the logged
-- catalog), yet found no throttle row to update and so never notified again:
-- consumers silently fell back to polling.
--
-- The throttle tables stay as they are (PGMQ's shape and functions). What
-- changes:
--   * a LOGGED copy of each enabled notification's setting,
--     _notify_setting (queue, event, interval), kept by enable / update /
--     disable and removed with the queue (FK to meta);
--   * the trigger body: when the throttle UPDATE finds no row, it restores the
--     row from _notify_setting (or, for a notification enabled before this
--     migration and lost before it ran, with PGMQ's default 250 ms) and
--     notifies. A missing row therefore means "enabled, not throttled";
--   * update_notify_* accepts a queue whose throttle row was lost (it checks
--     the logged setting too) and restores the row.

CREATE TABLE @schema@._notify_setting (
  queue_name varchar NOT NULL REFERENCES @schema@.meta (queue_name) ON DELETE CASCADE,
  event text NOT NULL CHECK (event IN ('insert', 'delete')),
  throttle_interval_ms integer NOT NULL CHECK (throttle_interval_ms >= 0),
  PRIMARY KEY (queue_name, event)
);

-- Notifications enabled before this migration.
INSERT INTO @schema@._notify_setting (queue_name, event, throttle_interval_ms)
  SELECT t.queue_name, 'insert', t.throttle_interval_ms FROM @schema@.notify_insert_throttle t
  UNION ALL
  SELECT t.queue_name, 'delete', t.throttle_interval_ms FROM @schema@.notify_delete_throttle t
ON CONFLICT DO NOTHING;

CREATE OR REPLACE FUNCTION @schema@._notify_listeners(
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
  IF n = 0 AND current_setting(flag || '_seen', true) IS DISTINCT FROM '1' THEN
    -- Throttled (the row exists: DO NOTHING), or the row was lost in crash
    -- recovery: the trigger exists, so notifications are enabled; restore it.
    -- Once per transaction and channel: the later rows of a throttled batch
    -- pay only the UPDATE, as before.
    PERFORM set_config(flag || '_seen', '1', true);
    EXECUTE format(
      'INSERT INTO %s (queue_name, throttle_interval_ms, last_notified_at)
       SELECT $1, COALESCE(
                (SELECT s.throttle_interval_ms FROM @schema@._notify_setting s
                  WHERE s.queue_name = $1 AND s.event = $2), 250),
              clock_timestamp()
        WHERE EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = $1)
       ON CONFLICT (queue_name) DO NOTHING', throttle)
      USING queue_name, lower(event);
    GET DIAGNOSTICS n = ROW_COUNT;
  END IF;
  IF n > 0 THEN
    PERFORM pg_notify(channel, NULL);
    PERFORM set_config(flag, '1', true);
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@._disable_notify(queue_name text, event text)
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
  DELETE FROM @schema@._notify_setting s
   WHERE s.queue_name = _disable_notify.queue_name AND s.event = _disable_notify.event;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@._enable_notify(queue_name text, throttle_interval_ms integer, event text)
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
  INSERT INTO @schema@._notify_setting (queue_name, event, throttle_interval_ms)
  VALUES (_enable_notify.queue_name, _enable_notify.event, _enable_notify.throttle_interval_ms)
  ON CONFLICT ON CONSTRAINT _notify_setting_pkey DO UPDATE
    SET throttle_interval_ms = EXCLUDED.throttle_interval_ms;
  EXECUTE format(
    'CREATE CONSTRAINT TRIGGER %I AFTER %s ON %s
       DEFERRABLE INITIALLY IMMEDIATE FOR EACH ROW
       EXECUTE FUNCTION @schema@.%I(%L)',
    'trigger_notify_queue_' || event || '_listeners', upper(event), rel,
    CASE event WHEN 'insert' THEN 'notify_queue_listeners' ELSE 'notify_queue_delete_listeners' END,
    queue_name);
END;
$$;

CREATE OR REPLACE FUNCTION @schema@._update_notify(queue_name text, throttle_interval_ms integer, event text)
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
  UPDATE @schema@._notify_setting s SET throttle_interval_ms = _update_notify.throttle_interval_ms
   WHERE s.queue_name = _update_notify.queue_name AND s.event = _update_notify.event;
  EXECUTE format(
    'INSERT INTO @schema@.%I AS t (queue_name, throttle_interval_ms, last_notified_at)
     SELECT $1, $2, to_timestamp(0)
      WHERE EXISTS (SELECT 1 FROM @schema@._notify_setting s WHERE s.queue_name = $1 AND s.event = $3)
     ON CONFLICT (queue_name) DO UPDATE
       SET throttle_interval_ms = EXCLUDED.throttle_interval_ms, last_notified_at = to_timestamp(0)',
    'notify_' || event || '_throttle')
    USING queue_name, throttle_interval_ms, event;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n = 0 THEN
    RAISE EXCEPTION 'Queue "%" does not have notify_% enabled. Enable it first using %.enable_notify_%()',
      queue_name, event, '@schema_name@', event;
  END IF;
END;
$$;
