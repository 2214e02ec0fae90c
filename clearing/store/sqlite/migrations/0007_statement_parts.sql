-- Form 3 statements (clearing/statement) sign a salted digest of each
-- carrier's lines instead of the lines, so that each carrier can be sent
-- its own lines alone and still check the signature. part_seed is the
-- secret the salts derive from. Statements closed earlier keep NULL and
-- their form: their hash and signature keep their meaning. (SQLite adds
-- no CHECK to an existing table; the Go code checks the seed.)
ALTER TABLE statements ADD COLUMN part_seed BLOB;
