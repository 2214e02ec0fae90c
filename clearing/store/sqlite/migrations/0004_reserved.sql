-- Placeholder. Migration 4 belongs to another branch; migration 5 (this
-- branch's) needs versions without gaps to load. When the branches are
-- merged, delete this file and keep the other branch's 0004.
SELECT 1;
