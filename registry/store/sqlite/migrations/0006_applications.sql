-- Online applications (see the PostgreSQL schema for the reasoning).
CREATE TABLE applications (
    id           INTEGER PRIMARY KEY,
    resident_id  INTEGER NOT NULL REFERENCES residents (id),
    kind         TEXT NOT NULL CHECK (kind IN ('card', 'benefit')),
    category     INTEGER NOT NULL CHECK (category BETWEEN 0 AND 65535),
    note         TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL CHECK (status IN ('submitted', 'accepted', 'refused')),
    submitted_at INTEGER NOT NULL,
    submitted_by TEXT NOT NULL,
    decided_at   INTEGER,
    decided_by   TEXT NOT NULL DEFAULT '',
    reason       TEXT NOT NULL DEFAULT '',
    result       TEXT NOT NULL DEFAULT '',
    CHECK ((kind = 'card') = (category = 0)),
    CHECK ((status = 'submitted') = (decided_at IS NULL))
) STRICT;
CREATE UNIQUE INDEX applications_open ON applications (resident_id, kind, category) WHERE status = 'submitted';
CREATE INDEX applications_queue ON applications (status, id);
CREATE INDEX applications_resident ON applications (resident_id, id);

CREATE TABLE application_files (
    id             INTEGER PRIMARY KEY,
    application_id INTEGER NOT NULL REFERENCES applications (id),
    name           TEXT NOT NULL,
    type           TEXT NOT NULL CHECK (type IN ('application/pdf', 'image/jpeg', 'image/png')),
    size           INTEGER NOT NULL CHECK (size BETWEEN 1 AND 5242880),
    data           BLOB NOT NULL CHECK (length(data) = size)
) STRICT;
CREATE INDEX application_files_application ON application_files (application_id, id);
