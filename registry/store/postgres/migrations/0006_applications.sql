-- Online applications (issue 20): a resident applies for a card or a
-- benefit and attaches the evidence (PDF, JPEG or PNG, checked by their
-- bytes); a desk accepts or refuses each with a reason, on the record.
-- One open application per resident, kind and category
-- (applications_open): a second one for the same thing is refused.
-- Acceptance records what it created (result: "entitlement/12",
-- "card/1001..."). The documents are personal data: every read is
-- audited, and they are kept with the application.
CREATE TABLE applications (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id  bigint NOT NULL REFERENCES residents (id),
    kind         text NOT NULL CHECK (kind IN ('card', 'benefit')),
    category     integer NOT NULL CHECK (category BETWEEN 0 AND 65535),
    note         text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('submitted', 'accepted', 'refused')),
    submitted_at timestamptz NOT NULL,
    submitted_by text NOT NULL,
    decided_at   timestamptz,
    decided_by   text NOT NULL DEFAULT '',
    reason       text NOT NULL DEFAULT '',
    result       text NOT NULL DEFAULT '',
    CHECK ((kind = 'card') = (category = 0)),
    CHECK ((status = 'submitted') = (decided_at IS NULL))
);
CREATE UNIQUE INDEX applications_open ON applications (resident_id, kind, category) WHERE status = 'submitted';
CREATE INDEX applications_queue ON applications (status, id);
CREATE INDEX applications_resident ON applications (resident_id, id);

CREATE TABLE application_files (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id bigint NOT NULL REFERENCES applications (id),
    name           text NOT NULL,
    type           text NOT NULL CHECK (type IN ('application/pdf', 'image/jpeg', 'image/png')),
    size           integer NOT NULL CHECK (size BETWEEN 1 AND 5242880),
    data           bytea NOT NULL CHECK (length(data) = size)
);
CREATE INDEX application_files_application ON application_files (application_id, id);
