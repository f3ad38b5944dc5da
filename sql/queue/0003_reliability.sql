-- Queue engine migration 3 (reserved): partitions, dead letters, wake-ups, stale-read protection, retention, fast metrics.
SELECT 1;
