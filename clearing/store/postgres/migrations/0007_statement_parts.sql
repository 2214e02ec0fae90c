-- Form 3 statements (clearing/statement) sign a salted digest of each
-- carrier's lines instead of the lines, so that each carrier can be sent
-- its own lines alone and still check the signature. part_seed is the
-- secret the salts derive from. Statements closed earlier keep NULL and
-- their form: their hash and signature keep their meaning. Adding a
-- nullable column rewrites no row, so the immutability triggers are not
-- touched.
ALTER TABLE statements
    ADD COLUMN part_seed bytea,
    ADD CONSTRAINT statements_part_seed CHECK (form < 3 OR octet_length(part_seed) = 32);
