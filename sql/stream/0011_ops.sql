-- Stream engine migration 11: read-only functions for operations (dashboard,
-- /metrics, CLI). STABLE, write nothing (safe on a replica). EXECUTE for
-- <schema>_reader and <schema>_admin (a monitoring role is given the reader
-- role), not PUBLIC.

-- The elected ticker (src/stream/ticker.ts): the holder of the ticker's
-- lease, or no row while no ticker leads. pid and backend start come from
-- pg_stat_activity (a role without pg_read_all_stats may see NULL there).
CREATE FUNCTION @schema@.ticker_leader()
RETURNS TABLE (pid integer, application_name text, backend_start timestamptz)
LANGUAGE sql STABLE AS $$
  -- The leader is the holder of the unexpired lease row (migration 10); its
  -- connection is found by the application_name the Ticker sets
  -- ('pgferry ticker <holder>'). Behind a pooler, or for a role that may not
  -- see that session, pid and backend_start are NULL.
  SELECT a.pid, 'pgferry ticker ' || l.holder, a.backend_start
    FROM @schema@.ticker_lease l
    LEFT JOIN LATERAL (
      SELECT s.pid, s.backend_start FROM pg_catalog.pg_stat_activity s
       WHERE s.application_name = 'pgferry ticker ' || l.holder
         AND s.datname = current_database()
       ORDER BY s.backend_start DESC LIMIT 1) a ON true
   WHERE l.expires_at > clock_timestamp();
$$;

-- Ticks per stream: ticks in the last window_seconds (at most the last 1,000
-- ticks are looked at, on the tick primary key; never a scan of the tick
-- history), their rate per minute, and the time of the last tick.
CREATE FUNCTION @schema@.tick_stats(window_seconds integer DEFAULT 60)
RETURNS TABLE (queue_name text, ticks bigint, ticks_per_minute double precision, last_tick_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
  IF window_seconds IS NULL OR window_seconds < 1 THEN
    RAISE EXCEPTION 'tick_stats: window_seconds must be >= 1, got %', window_seconds
      USING ERRCODE = 'invalid_parameter_value';
  END IF;
  RETURN QUERY
    SELECT q.queue_name, r.n, (r.n * 60.0 / window_seconds)::float8, r.last_at
      FROM @schema@.queue q
      CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE t.tick_time > now() - make_interval(secs => window_seconds)) AS n,
               max(t.tick_time) AS last_at
          FROM (SELECT k.tick_time FROM @schema@.tick k WHERE k.tick_queue = q.queue_id
                 ORDER BY k.tick_id DESC LIMIT 1000) t) r
     ORDER BY q.queue_name;
END;
$$;

REVOKE ALL ON FUNCTION @schema@.ticker_leader(), @schema@.tick_stats(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION @schema@.ticker_leader(), @schema@.tick_stats(integer)
  TO "@schema_name@_reader", "@schema_name@_admin";
