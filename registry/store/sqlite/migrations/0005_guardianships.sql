-- Parents and guardians (see the PostgreSQL schema for the reasoning).
CREATE TABLE guardianships (
    id          INTEGER PRIMARY KEY,
    guardian_id INTEGER NOT NULL REFERENCES residents (id),
    child_id    INTEGER NOT NULL REFERENCES residents (id),
    evidence    TEXT NOT NULL CHECK (evidence <> ''),
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    ended_at    INTEGER,
    ended_by    TEXT NOT NULL DEFAULT '',
    end_reason  TEXT NOT NULL DEFAULT '',
    CHECK (guardian_id <> child_id),
    CHECK ((ended_at IS NULL) = (ended_by = '') AND (ended_at IS NULL) = (end_reason = ''))
) STRICT;
CREATE UNIQUE INDEX guardianships_once ON guardianships (guardian_id, child_id) WHERE ended_at IS NULL;
CREATE INDEX guardianships_child ON guardianships (child_id);
