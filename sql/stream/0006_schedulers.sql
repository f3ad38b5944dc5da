-- Stream engine migration 6: status(), optional schedulers (pg_cron,
-- pg_timetable), the ticker loop procedure and uninstall(). None of this is
-- needed with pgferry: its TypeScript ticker ticks without any scheduler.

CREATE FUNCTION @schema@.set_tick_period_ms(p_period_ms integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF p_period_ms IS NULL OR p_period_ms < 1 OR p_period_ms > 1000 OR 1000 % p_period_ms <> 0 THEN
    RAISE EXCEPTION 'tick_period_ms must be an exact divisor of 1000 between 1 and 1000 (got %)',
      coalesce(p_period_ms::text, 'NULL');
  END IF;
  UPDATE @schema@.config SET tick_period_ms = p_period_ms;
  RETURN p_period_ms;
END
$$;

-- Calls ticker() every tick_period_ms for about one second, committing after
-- each tick (what the pg_cron job runs every second).
CREATE PROCEDURE @schema@.ticker_loop()
LANGUAGE plpgsql SECURITY INVOKER AS $$
DECLARE
  period int4;
  stop_at timestamptz := clock_timestamp() + interval '1 second';
BEGIN
  SELECT tick_period_ms INTO period FROM @schema@.config;
  LOOP
    PERFORM @schema@.ticker();
    COMMIT;
    EXIT WHEN clock_timestamp() + make_interval(secs => period / 1000.0) >= stop_at;
    PERFORM pg_sleep(period / 1000.0);
  END LOOP;
END
$$;

CREATE FUNCTION @schema@.start() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  tj bigint;
  mj bigint;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
    RAISE EXCEPTION 'pg_cron extension is not installed. PgQue itself works without pg_cron, but pgque.start() schedules cron jobs. Install pg_cron first, or run pgque.ticker() and pgque.maint() manually.';
  END IF;
  PERFORM @schema@.stop();
  -- Called dynamically: the cron schema only exists where pg_cron does.
  EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO tj
    USING '@schema_name@_ticker', '1 seconds', 'CALL @schema@.ticker_loop()';
  EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO mj
    USING '@schema_name@_maint', '30 seconds', 'SELECT @schema@.maint()';
  EXECUTE 'SELECT cron.schedule($1, $2, $3)'
    USING '@schema_name@_retry', '30 seconds', 'SELECT @schema@.maint_retry_events()';
  EXECUTE 'SELECT cron.schedule($1, $2, $3)'
    USING '@schema_name@_rotate_step2', '10 seconds', 'SELECT @schema@.maint_rotate_tables_step2()';
  UPDATE @schema@.config SET ticker_job_id = tj, maint_job_id = mj, scheduler = 'pg_cron';
END
$$;

CREATE FUNCTION @schema@.stop() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  j text;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
    FOREACH j IN ARRAY ARRAY['@schema_name@_ticker', '@schema_name@_maint', '@schema_name@_retry',
                             '@schema_name@_rotate_step2'] LOOP
      EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1' USING j;
    END LOOP;
  END IF;
  UPDATE @schema@.config SET ticker_job_id = NULL, maint_job_id = NULL, scheduler = NULL
   WHERE scheduler IS DISTINCT FROM 'pg_timetable';
END
$$;

CREATE FUNCTION @schema@.start_timetable(i_ticks_per_second integer DEFAULT 10) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  tj bigint;
  mj bigint;
BEGIN
  IF to_regnamespace('timetable') IS NULL THEN
    RAISE EXCEPTION 'pg_timetable is not set up in this database (schema "timetable" not found): run pg_timetable against this database, then call pgque.start_timetable()';
  END IF;
  PERFORM @schema@.set_tick_period_ms(1000 / greatest(coalesce(i_ticks_per_second, 10), 1));
  PERFORM @schema@.stop_timetable();
  EXECUTE 'SELECT timetable.add_job(job_name => $1, job_schedule => $2, job_command => $3)' INTO tj
    USING '@schema_name@_ticker', '@every 1 second', 'CALL @schema@.ticker_loop()';
  EXECUTE 'SELECT timetable.add_job(job_name => $1, job_schedule => $2, job_command => $3)' INTO mj
    USING '@schema_name@_maint', '@every 30 seconds',
          'SELECT @schema@.maint(); SELECT @schema@.maint_retry_events(); SELECT @schema@.maint_rotate_tables_step2()';
  UPDATE @schema@.config SET ticker_job_id = tj, maint_job_id = mj, scheduler = 'pg_timetable';
END
$$;

CREATE FUNCTION @schema@.stop_timetable() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF to_regnamespace('timetable') IS NOT NULL THEN
    EXECUTE 'SELECT timetable.delete_job($1)' USING '@schema_name@_ticker';
    EXECUTE 'SELECT timetable.delete_job($1)' USING '@schema_name@_maint';
  END IF;
  UPDATE @schema@.config SET ticker_job_id = NULL, maint_job_id = NULL, scheduler = NULL
   WHERE scheduler = 'pg_timetable';
END
$$;

CREATE FUNCTION @schema@.status() RETURNS TABLE (component text, status text, detail text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  c @schema@.config;
BEGIN
  SELECT * INTO c FROM @schema@.config;
  RETURN QUERY VALUES ('postgresql', 'info', version());
  RETURN QUERY VALUES ('pgque', 'info', @schema@.version());
  RETURN QUERY VALUES ('scheduler', coalesce(c.scheduler, 'manual'),
    format('ticker_job_id=%s, maint_job_id=%s, tick_period_ms=%s (%s ticks/sec)',
           coalesce(c.ticker_job_id::text, 'NULL'), coalesce(c.maint_job_id::text, 'NULL'), c.tick_period_ms,
           to_char(1000.0 / c.tick_period_ms, 'FM999990.00')));
  RETURN QUERY VALUES ('ticker', CASE WHEN c.ticker_job_id IS NULL THEN 'stopped' ELSE 'scheduled' END,
    CASE WHEN c.ticker_job_id IS NULL THEN 'no ticker job; call pgque.ticker() or run pgferry''s ticker'
         ELSE format('job %s', c.ticker_job_id) END);
  RETURN QUERY VALUES ('maintenance', CASE WHEN c.maint_job_id IS NULL THEN 'stopped' ELSE 'scheduled' END,
    CASE WHEN c.maint_job_id IS NULL THEN 'no maintenance job; call pgque.maint() and pgque.maint_retry_events()'
         ELSE format('job %s', c.maint_job_id) END);
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
    RETURN QUERY VALUES ('pg_cron', 'unavailable',
      'use pgque.start_timetable() for pg_timetable, or call pgque.ticker() / pgque.maint() manually');
  END IF;
  IF to_regnamespace('timetable') IS NULL THEN
    RETURN QUERY VALUES ('pg_timetable', 'unavailable',
      'run pg_timetable against this database, then call pgque.start_timetable()');
  END IF;
  RETURN QUERY SELECT 'queues', 'info', format('%s queues configured', count(*)) FROM @schema@.queue;
  RETURN QUERY SELECT 'consumers', 'info', format('%s active subscriptions', count(*)) FROM @schema@.subscription;
END
$$;

-- Owner or superuser only (no grant): stops schedulers and drops the schema.
-- Roles are cluster-wide and left in place.
CREATE FUNCTION @schema@.uninstall() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM @schema@.stop();
  PERFORM @schema@.stop_timetable();
  EXECUTE format('DROP SCHEMA %I CASCADE', '@schema_name@');
END
$$;

SELECT @schema@._apply_grants();
