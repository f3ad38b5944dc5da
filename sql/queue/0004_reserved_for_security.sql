-- Placeholder for migration 4, which the security branch ships
-- (0004_name_safety.sql). Drop this file when merging that branch.
SELECT 1;
