-- Who closed a statement, which canonical form its hash is over, and the
-- fingerprint of the key that signed it (clearing/statement, form 2).
-- Statements closed earlier keep form 1, no actor and no fingerprint:
-- their hash and signature keep their meaning.
ALTER TABLE statements ADD COLUMN closed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE statements ADD COLUMN form INTEGER NOT NULL DEFAULT 1;
ALTER TABLE statements ADD COLUMN key_fingerprint TEXT NOT NULL DEFAULT '';
