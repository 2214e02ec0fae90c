-- Who closed a statement, which canonical form its hash is over, and the
-- fingerprint of the key that signed it (clearing/statement, form 2).
-- Statements closed earlier keep form 1, no actor and no fingerprint:
-- their hash and signature keep their meaning. Adding columns with a
-- constant default rewrites no row, so the immutability triggers are not
-- touched.
ALTER TABLE statements
    ADD COLUMN closed_by text NOT NULL DEFAULT '',
    ADD COLUMN form integer NOT NULL DEFAULT 1,
    ADD COLUMN key_fingerprint text NOT NULL DEFAULT '';
