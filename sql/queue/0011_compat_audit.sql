-- pgferry queue engine, migration 11: PGMQ edge cases found by the
-- compatibility audit of 2026-12. Pinned by
-- test/queue/compat-audit-convert.test.ts.

-- ---------------------------------------------------------------------------
-- convert_archive_partitioned: PGMQ returns normally, with a NOTICE, both when
-- the archive is already partitioned and when there is no archive table at
-- all (migration 3 raised 42P01 for the latter). PGMQ quirk, reproduced: its
-- notices are written 'Table %s …', where only % is a placeholder, so the
-- table name is followed by a stray "s" ("Table a_jobss is already
-- partitioned", "Table a_nopes does not exists"); its regression test output
-- shows exactly that. The conversion itself moves to
-- _convert_archive_partitioned unchanged (the TypeScript client calls it
-- directly, so a missing queue stays a QueueNotFoundError there).
-- ---------------------------------------------------------------------------
ALTER FUNCTION @schema@.convert_archive_partitioned(text, text, text, integer)
  RENAME TO _convert_archive_partitioned;

CREATE FUNCTION @schema@.convert_archive_partitioned(
  table_name text,
  partition_interval text DEFAULT '10000',
  retention_interval text DEFAULT '100000',
  leading_partition integer DEFAULT 10)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  -- Invalid characters raise P0001 here, and a NULL name 22004 (as in PGMQ,
  -- whose declarations format the qualified name the same way).
  atable text := @schema@.format_table_name(table_name, 'a');
  rel regclass := to_regclass(format('@schema@.%I', atable));
BEGIN
  IF rel IS NOT NULL AND EXISTS (SELECT 1 FROM pg_partitioned_table WHERE partrelid = rel) THEN
    RAISE NOTICE 'Table %s is already partitioned', atable;
    RETURN;
  END IF;
  IF rel IS NULL THEN
    RAISE NOTICE 'Table %s does not exists', atable;
    RETURN;
  END IF;
  PERFORM @schema@._convert_archive_partitioned(
    table_name, partition_interval, retention_interval, leading_partition);
END;
$$;
