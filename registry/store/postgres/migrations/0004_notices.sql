-- Notices to residents (issue 20): an outbox that registry/notices fills
-- and empties, and residents' opt-outs.

-- One row per notice. A notice is queued once per kind, entitlement and
-- last day (notices_once): a benefit whose end moves gets a new notice
-- about the new end, a run that repeats queues nothing. It is pending
-- until it is sent (sent_at, sent_to, sender) or dropped with a reason
-- (dropped_at, drop_reason), never both. contact is where it was to go
-- when queued; sent_to is where it went.
CREATE TABLE notices (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('benefit-ending')),
    resident_id     bigint NOT NULL REFERENCES residents (id),
    entitlement_id  bigint NOT NULL REFERENCES entitlements (id),
    category        integer NOT NULL CHECK (category BETWEEN 1 AND 65535),
    ends            date NOT NULL,
    contact         text NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text NOT NULL DEFAULT '',
    sent_at         timestamptz,
    sent_to         text NOT NULL DEFAULT '',
    sender          text NOT NULL DEFAULT '',
    dropped_at      timestamptz,
    drop_reason     text NOT NULL DEFAULT '',
    CONSTRAINT notices_once UNIQUE (kind, entitlement_id, ends),
    CHECK (sent_at IS NULL OR dropped_at IS NULL),
    CHECK ((sent_at IS NULL) = (sent_to = '')),
    CHECK ((dropped_at IS NULL) = (drop_reason = ''))
);
CREATE INDEX notices_pending ON notices (next_attempt_at, id) WHERE sent_at IS NULL AND dropped_at IS NULL;
CREATE INDEX notices_resident ON notices (resident_id, id);

-- Residents who want no notices, since when and who recorded it.
CREATE TABLE notice_opt_outs (
    resident_id bigint PRIMARY KEY REFERENCES residents (id),
    at          timestamptz NOT NULL,
    by_user     text NOT NULL
);
