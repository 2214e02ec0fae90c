-- The registry (see the PostgreSQL schema for the reasoning). Dates are
-- TEXT YYYY-MM-DD, which sorts and compares as dates; times are Unix
-- microseconds (columns *_at and at). Foreign keys are enforced (PRAGMA foreign_keys=ON).
CREATE TABLE residents (
    id              INTEGER PRIMARY KEY,
    registry_number TEXT NOT NULL UNIQUE CHECK (length(registry_number) = 10 AND registry_number NOT GLOB '*[^0-9]*'),
    name            TEXT NOT NULL CHECK (name <> ''),
    name_key        TEXT NOT NULL,
    birth_date      TEXT NOT NULL,
    contact         TEXT NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX residents_name_key ON residents (name_key);

CREATE TABLE entitlements (
    id            INTEGER PRIMARY KEY,
    resident_id   INTEGER NOT NULL REFERENCES residents (id),
    category      INTEGER NOT NULL CHECK (category BETWEEN 1 AND 65535),
    legal_basis   TEXT NOT NULL,
    evidence      TEXT NOT NULL,
    valid_from    TEXT NOT NULL,
    valid_to      TEXT NOT NULL CHECK (valid_to >= valid_from),
    funding       TEXT NOT NULL CHECK (funding IN ('city', 'state')),
    monthly_limit INTEGER NOT NULL CHECK (monthly_limit BETWEEN 0 AND 255),
    source        TEXT NOT NULL CHECK (source IN ('desk', 'import')),
    source_ref    TEXT NOT NULL DEFAULT '' CHECK ((source = 'import') = (source_ref <> '')),
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX entitlements_resident ON entitlements (resident_id);
CREATE INDEX entitlements_valid_to ON entitlements (valid_to);
CREATE UNIQUE INDEX entitlements_source_ref ON entitlements (source_ref) WHERE source_ref <> '';

CREATE TABLE cards (
    number         INTEGER PRIMARY KEY CHECK (number > 0 AND number < 10000000000000000),
    resident_id    INTEGER NOT NULL REFERENCES residents (id),
    status         TEXT NOT NULL CHECK (status IN
                       ('ordered', 'personalised', 'active', 'blocked', 'lost', 'stolen', 'replaced', 'expired')),
    reason         TEXT NOT NULL DEFAULT '',
    note           TEXT NOT NULL DEFAULT '',
    issued         TEXT NOT NULL,
    expires        TEXT NOT NULL CHECK (expires > issued),
    replaces       INTEGER REFERENCES cards (number),
    replaced_by    INTEGER REFERENCES cards (number),
    carried_kop    INTEGER NOT NULL DEFAULT 0 CHECK (carried_kop BETWEEN 0 AND 500000),
    balance_source TEXT NOT NULL DEFAULT '' CHECK (balance_source IN ('', 'clearing', 'card')),
    updated_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX cards_resident ON cards (resident_id);
CREATE UNIQUE INDEX cards_one_live_per_resident ON cards (resident_id)
    WHERE status NOT IN ('replaced', 'expired');
CREATE INDEX cards_hotlisted ON cards (number) WHERE status IN ('blocked', 'lost', 'stolen', 'replaced');

CREATE TABLE card_events (
    seq          INTEGER PRIMARY KEY,
    at           INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('status', 'entitlements')),
    card         INTEGER NOT NULL REFERENCES cards (number),
    status       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    issued       TEXT NOT NULL,
    expires      TEXT NOT NULL,
    entitlements TEXT NOT NULL,
    replaces     INTEGER,
    replaced_by  INTEGER
) STRICT;

CREATE TABLE registry_counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
INSERT INTO registry_counters (name, value) VALUES ('card_event', 0), ('card_serial', 0);

CREATE TABLE api_tokens (
    hash        BLOB PRIMARY KEY CHECK (length(hash) = 32),
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('desk', 'supervisor', 'finance', 'auditor', 'resident')),
    resident_id INTEGER REFERENCES residents (id),
    created_at  INTEGER NOT NULL,
    CHECK ((role = 'resident') = (resident_id IS NOT NULL))
) STRICT, WITHOUT ROWID;

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL,
    resident_id INTEGER,
    record      TEXT NOT NULL,
    action      TEXT NOT NULL,
    purpose     TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_resident ON audit_log (resident_id, id);

-- Append-only.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
