-- pgferry queue engine, migration 11: no exhausted message is left without a
-- `_dead_letter_due` entry when readers run at once.
--
-- _before_read (migration 3) deletes the due entries it can lock (SKIP
-- LOCKED) and appends one for the next exhausted message still in the queue,
-- unless it sees an entry at or before it. Two readers that each deleted a
-- different entry saw the other's (deleted, not yet committed) and both
-- skipped the append: an exhausted message that neither could move (another
-- session held its row, as a reader's locking select does) was left with no
-- entry. Reads then never handed it out (the guard trigger) and never moved
-- it (no entry due): it stayed in the queue until something updated it.
-- test/queue/dead-letter-due-race.test.ts replays that interleaving.
--
-- Now one reader per queue at a time forgets and re-notes entries (a
-- transaction-level advisory lock, tried without waiting): the others leave
-- the entries for the next read, so an entry it sees is never one being
-- deleted. Moving messages is unchanged (any reader, SKIP LOCKED).
-- Otherwise as migration 3 (CREATE OR REPLACE keeps grants).

CREATE OR REPLACE FUNCTION @schema@._before_read(queue_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tbl text := lower('q_' || _before_read.queue_name);
  due timestamp with time zone;
  p record;
BEGIN
  -- The common case, policy or not: one probe of an index, nothing due.
  SELECT min(d.due_at) INTO due FROM @schema@._dead_letter_due d WHERE d.queue_table = tbl;
  IF due IS NULL OR due > clock_timestamp() THEN
    RETURN;
  END IF;
  SELECT d.queue_name, d.dead_letter_queue, d.max_read_count INTO p
    FROM @schema@._dead_letter_policy d WHERE d.queue_table = tbl;
  IF NOT FOUND THEN
    RETURN; -- entries outlive a policy only when its queue was dropped under another name's case
  END IF;
  PERFORM @schema@._move_dead_letters(p.queue_name, p.dead_letter_queue, p.max_read_count, 1000);
  -- Forget the handled entries and note when the next exhausted message
  -- (one still in flight, or one another reader holds) falls due: one
  -- reader of the queue at a time (see the header). Under REPEATABLE READ
  -- the entries are left for a READ COMMITTED reader: the DELETE could meet
  -- rows deleted after the snapshot and fail.
  IF current_setting('transaction_isolation') = 'read committed'
     AND pg_try_advisory_xact_lock(hashtextextended('pgferry.dead_letter_due.@schema_name@.' || tbl, 0)) THEN
    DELETE FROM @schema@._dead_letter_due d
     WHERE d.ctid IN (SELECT x.ctid FROM @schema@._dead_letter_due x
                       WHERE x.queue_table = tbl AND x.due_at <= clock_timestamp()
                         FOR UPDATE SKIP LOCKED);
    EXECUTE format(
      'INSERT INTO @schema@._dead_letter_due (queue_table, due_at)
       SELECT $1, m.v FROM (SELECT min(vt) AS v FROM @schema@.%I WHERE read_ct >= %s) m
        WHERE m.v IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM @schema@._dead_letter_due d WHERE d.queue_table = $1 AND d.due_at <= m.v)',
      tbl, p.max_read_count::integer) USING tbl;
  END IF;
END;
$$;
