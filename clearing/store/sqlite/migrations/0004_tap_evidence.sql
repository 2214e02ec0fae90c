-- Marks and card evidence of each tap, as in the PostgreSQL store
-- (tap.Tap.Marks and tap.Tap.Evidence). Taps stored before this migration
-- have neither.
ALTER TABLE taps ADD COLUMN marks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE taps ADD COLUMN evidence BLOB;
