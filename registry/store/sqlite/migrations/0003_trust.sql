-- Trust boundaries (issue 16); see the PostgreSQL schema for the
-- reasoning. api_tokens is rebuilt (SQLite cannot change a CHECK in
-- place) with the operator role, a public id, a kind, an end (90 days
-- after creation for tokens made before this migration), the last use
-- and a revocation. The entries of the audit log written before the chain
-- existed are sealed by the store after this file runs (sqlite.go:
-- sealAudit), since SQLite has no SHA-256 in SQL.
CREATE TABLE api_tokens_new (
    hash         BLOB PRIMARY KEY CHECK (length(hash) = 32),
    id           TEXT NOT NULL UNIQUE,
    user_name    TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('desk', 'supervisor', 'finance', 'auditor', 'resident', 'service', 'operator')),
    resident_id  INTEGER REFERENCES residents (id),
    kind         TEXT NOT NULL DEFAULT 'machine' CHECK (kind IN ('machine', 'session')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    created_by   TEXT NOT NULL DEFAULT '',
    note         TEXT NOT NULL DEFAULT '',
    last_used_at INTEGER,
    revoked_at   INTEGER,
    revoked_by   TEXT NOT NULL DEFAULT '',
    CHECK ((role = 'resident') = (resident_id IS NOT NULL)),
    CHECK (expires_at > created_at)
) STRICT, WITHOUT ROWID;
INSERT INTO api_tokens_new (hash, id, user_name, role, resident_id, created_at, expires_at)
    SELECT hash, lower(hex(substr(hash, 1, 8))), user_name, role, resident_id, created_at, created_at + 90 * 86400 * 1000000
    FROM api_tokens;
DROP TABLE api_tokens;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_user ON api_tokens (user_name);

CREATE TABLE staff_accounts (
    user_name           TEXT PRIMARY KEY CHECK (user_name <> ''),
    role                TEXT NOT NULL CHECK (role IN ('desk', 'supervisor', 'finance', 'auditor', 'operator')),
    password_hash       TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at          INTEGER NOT NULL,
    password_changed_at INTEGER NOT NULL,
    disabled_at         INTEGER,
    disabled_by         TEXT NOT NULL DEFAULT ''
) STRICT, WITHOUT ROWID;

CREATE TABLE resident_codes (
    id          TEXT PRIMARY KEY,
    resident_id INTEGER NOT NULL REFERENCES residents (id),
    code_hash   BLOB NOT NULL CHECK (length(code_hash) = 32),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    used_at     INTEGER
) STRICT, WITHOUT ROWID;
CREATE INDEX resident_codes_resident ON resident_codes (resident_id, created_at);

ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_log ADD COLUMN hash BLOB;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash BLOB NOT NULL CHECK (length(hash) = 32)
) STRICT;
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
CREATE TABLE audit_checkpoints (
    seq       INTEGER PRIMARY KEY,
    hash      BLOB NOT NULL CHECK (length(hash) = 32),
    at        INTEGER NOT NULL,
    key       TEXT NOT NULL,
    signature BLOB NOT NULL
) STRICT;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit_checkpoints is append-only: DELETE refused');
END;
