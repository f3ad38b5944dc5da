-- Placeholder for migration 8, which the security branch ships
-- (0008_security.sql). Drop this file when merging that branch.
SELECT 1;
