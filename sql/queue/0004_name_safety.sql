-- Queue engine migration 4: queue-name safety (docs/security.md).
--
-- * PGMQ names a queue's tables lower('q_' || name): 'Orders' and 'orders'
--   share q_orders. A second queue whose table name equals an existing
--   queue's is now refused (nothing is created or changed).
-- * Names are limited to 47 BYTES, not only 47 characters: the longest
--   derived identifier PGMQ makes, 'archived_at_idx_' || name, must fit
--   PostgreSQL's 63-byte identifiers. A longer (multibyte) name was silently
--   truncated, and two such names could share one index name (the second
--   queue then got no archive index at all).
-- * list_queues() and metrics_all() skip a broken queue (its table is gone,
--   or metrics fail) with a WARNING instead of failing for every queue.

CREATE OR REPLACE FUNCTION @schema@.validate_queue_name(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF length(queue_name) > 47 THEN
    RAISE EXCEPTION 'queue name is too long, maximum length is 47 characters';
  END IF;
  IF octet_length(queue_name) > 47 THEN
    RAISE EXCEPTION 'queue name is too long: % bytes in UTF-8, maximum is 47 bytes (derived table and index names must fit 63 bytes)',
      octet_length(queue_name);
  END IF;
END;
$$;

-- Serialises creations whose names map to one table and refuses a name
-- whose table belongs to another queue. Lock order: the lower-cased name's
-- lock first, then (when different) the exact name's.
CREATE FUNCTION @schema@._claim_queue_name(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tbl text := @schema@.format_table_name(queue_name, 'q');
  other text;
BEGIN
  PERFORM @schema@.acquire_queue_lock(lower(queue_name));
  IF lower(queue_name) <> queue_name THEN
    PERFORM @schema@.acquire_queue_lock(queue_name);
  END IF;
  SELECT m.queue_name INTO other FROM @schema@.meta m
   WHERE lower('q_' || m.queue_name) = tbl AND m.queue_name <> _claim_queue_name.queue_name
   LIMIT 1;
  IF other IS NOT NULL THEN
    RAISE EXCEPTION 'queue name "%" collides with existing queue "%": both would use table %.% (PGMQ lower-cases table names)',
      queue_name, other, '@schema_name@', tbl;
  END IF;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@._create_queue(queue_name text, unlogged boolean)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  qtable text := @schema@.format_table_name(queue_name, 'q');
  atable text := @schema@.format_table_name(queue_name, 'a');
BEGIN
  PERFORM @schema@.validate_queue_name(queue_name);
  PERFORM @schema@._claim_queue_name(queue_name);

  EXECUTE format(
    'CREATE %s TABLE IF NOT EXISTS @schema@.%I (
       msg_id bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY,
       read_ct integer NOT NULL DEFAULT 0,
       enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
       last_read_at timestamp with time zone,
       vt timestamp with time zone NOT NULL,
       message jsonb,
       headers jsonb)',
    CASE WHEN unlogged THEN 'UNLOGGED' ELSE '' END, qtable);

  EXECUTE format(
    'CREATE TABLE IF NOT EXISTS @schema@.%I (
       msg_id bigint PRIMARY KEY,
       read_ct integer NOT NULL DEFAULT 0,
       enqueued_at timestamp with time zone NOT NULL DEFAULT now(),
       last_read_at timestamp with time zone,
       archived_at timestamp with time zone NOT NULL DEFAULT now(),
       vt timestamp with time zone NOT NULL,
       message jsonb,
       headers jsonb)',
    atable);

  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON @schema@.%I (vt)', qtable || '_vt_idx', qtable);
  -- PGMQ names this index after the queue name as given (not lower-cased).
  EXECUTE format('CREATE INDEX IF NOT EXISTS %I ON @schema@.%I (archived_at)',
                 'archived_at_idx_' || queue_name, atable);

  -- pg_monitor sees only what metrics need (PGMQ 1.13.1).
  EXECUTE format('GRANT SELECT (vt, enqueued_at) ON @schema@.%I TO pg_monitor', qtable);
  EXECUTE format('GRANT SELECT ON SEQUENCE @schema@.%I TO pg_monitor', qtable || '_msg_id_seq');

  INSERT INTO @schema@.meta (queue_name, is_partitioned, is_unlogged)
  SELECT queue_name, false, unlogged
  WHERE NOT EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = _create_queue.queue_name);
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.list_queues()
RETURNS SETOF @schema@.queue_record LANGUAGE plpgsql AS $$
DECLARE
  m @schema@.meta;
BEGIN
  FOR m IN SELECT * FROM @schema@.meta ORDER BY meta.queue_name LOOP
    IF to_regclass(format('@schema@.%I', lower('q_' || m.queue_name))) IS NULL THEN
      RAISE WARNING 'pgmq queue "%" is listed but its table %.% is missing; skipped',
        m.queue_name, '@schema_name@', lower('q_' || m.queue_name);
      CONTINUE;
    END IF;
    RETURN NEXT ROW(m.queue_name, m.is_partitioned, m.is_unlogged, m.created_at)::@schema@.queue_record;
  END LOOP;
END;
$$;

CREATE OR REPLACE FUNCTION @schema@.metrics_all()
RETURNS SETOF @schema@.metrics_result LANGUAGE plpgsql AS $$
DECLARE
  q record;
  r @schema@.metrics_result;
BEGIN
  FOR q IN SELECT queue_name FROM @schema@.meta LOOP
    BEGIN
      r := @schema@.metrics(q.queue_name);
    EXCEPTION WHEN OTHERS THEN
      RAISE WARNING 'pgmq metrics for queue "%" failed, skipped: % (SQLSTATE %)', q.queue_name, SQLERRM, SQLSTATE;
      CONTINUE;
    END;
    RETURN NEXT r;
  END LOOP;
END;
$$;

-- create_partitioned as in migration 3, claiming its name like _create_queue.
CREATE OR REPLACE FUNCTION @schema@.create_partitioned(
  queue_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  premake integer DEFAULT 4)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  qtable text := @schema@.format_table_name(queue_name, 'q');
  atable text := @schema@.format_table_name(queue_name, 'a');
  kind text;
  cfg @schema@._partition_config;
BEGIN
  PERFORM @schema@.validate_queue_name(queue_name);
  IF premake IS NULL OR premake < 1 THEN
    RAISE EXCEPTION 'premake must be at least 1, got %', coalesce(premake::text, 'NULL');
  END IF;
  partition_interval := @schema@._normalize_interval(partition_interval);
  retention_interval := @schema@._normalize_interval(retention_interval);
  kind := @schema@._partition_kind(partition_interval);
  PERFORM @schema@._check_retention(kind, retention_interval);
  PERFORM @schema@._claim_queue_name(queue_name);

  INSERT INTO @schema@.meta (queue_name, is_partitioned, is_unlogged)
  SELECT queue_name, true, false
  WHERE NOT EXISTS (SELECT 1 FROM @schema@.meta m WHERE m.queue_name = create_partitioned.queue_name);

  -- Like create(): an existing queue is left as it is.
  IF to_regclass(format('@schema@.%I', qtable)) IS NULL THEN
    PERFORM @schema@._create_partitioned_table(queue_name, 'q', kind,
      CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'enqueued_at' END);
    EXECUTE format('GRANT SELECT (vt, enqueued_at) ON @schema@.%I TO pg_monitor', qtable);
    EXECUTE format('GRANT SELECT ON SEQUENCE @schema@.%I TO pg_monitor', qtable || '_msg_id_seq');
    INSERT INTO @schema@._partition_config AS c
    VALUES (queue_name, 'q', kind, CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'enqueued_at' END,
            btrim(partition_interval), btrim(retention_interval), premake)
    ON CONFLICT ON CONSTRAINT _partition_config_pkey DO NOTHING
    RETURNING * INTO cfg;
    IF cfg.queue_name IS NOT NULL THEN
      PERFORM @schema@._maintain_config(cfg);
    END IF;
  END IF;
  IF to_regclass(format('@schema@.%I', atable)) IS NULL THEN
    cfg := NULL;
    PERFORM @schema@._create_partitioned_table(queue_name, 'a', kind,
      CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'archived_at' END);
    INSERT INTO @schema@._partition_config AS c
    VALUES (queue_name, 'a', kind, CASE WHEN kind = 'id' THEN 'msg_id' ELSE 'archived_at' END,
            btrim(partition_interval), btrim(retention_interval), premake)
    ON CONFLICT ON CONSTRAINT _partition_config_pkey DO NOTHING
    RETURNING * INTO cfg;
    IF cfg.queue_name IS NOT NULL THEN
      PERFORM @schema@._maintain_config(cfg);
    END IF;
  END IF;
END;
$$;
