-- Queue engine migration 2 (reserved): FIFO groups, topics, insert/delete notifications.
SELECT 1;
