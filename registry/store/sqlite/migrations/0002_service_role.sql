-- API tokens of another service of the platform (clearing), role
-- "service". SQLite cannot change a CHECK constraint in place: the table
-- is rebuilt with the same columns and copied. Nothing refers to it.
CREATE TABLE api_tokens_new (
    hash        BLOB PRIMARY KEY CHECK (length(hash) = 32),
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('desk', 'supervisor', 'finance', 'auditor', 'resident', 'service')),
    resident_id INTEGER REFERENCES residents (id),
    created_at  INTEGER NOT NULL,
    CHECK ((role = 'resident') = (resident_id IS NOT NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO api_tokens_new (hash, user_name, role, resident_id, created_at)
    SELECT hash, user_name, role, resident_id, created_at FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
