-- Notices to residents (see the PostgreSQL schema for the reasoning).
CREATE TABLE notices (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('benefit-ending')),
    resident_id     INTEGER NOT NULL REFERENCES residents (id),
    entitlement_id  INTEGER NOT NULL REFERENCES entitlements (id),
    category        INTEGER NOT NULL CHECK (category BETWEEN 1 AND 65535),
    ends            TEXT NOT NULL,
    contact         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT NOT NULL DEFAULT '',
    sent_at         INTEGER,
    sent_to         TEXT NOT NULL DEFAULT '',
    sender          TEXT NOT NULL DEFAULT '',
    dropped_at      INTEGER,
    drop_reason     TEXT NOT NULL DEFAULT '',
    CONSTRAINT notices_once UNIQUE (kind, entitlement_id, ends),
    CHECK (sent_at IS NULL OR dropped_at IS NULL),
    CHECK ((sent_at IS NULL) = (sent_to = '')),
    CHECK ((dropped_at IS NULL) = (drop_reason = ''))
) STRICT;
CREATE INDEX notices_pending ON notices (next_attempt_at, id) WHERE sent_at IS NULL AND dropped_at IS NULL;
CREATE INDEX notices_resident ON notices (resident_id, id);

CREATE TABLE notice_opt_outs (
    resident_id INTEGER PRIMARY KEY REFERENCES residents (id),
    at          INTEGER NOT NULL,
    by_user     TEXT NOT NULL
) STRICT;
