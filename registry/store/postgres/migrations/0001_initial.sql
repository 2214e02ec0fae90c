-- The registry: the only schema of the platform that holds personal data.
-- Residents are never deleted (cards, entitlements and the audit log refer
-- to them).
CREATE TABLE residents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registry_number text NOT NULL CHECK (registry_number ~ '^[0-9]{10}$'),
    name            text NOT NULL CHECK (name <> ''),
    -- Lower-cased name with single spaces (registry.NameKey), for
    -- searches by name prefix.
    name_key        text COLLATE "C" NOT NULL,
    birth_date      date NOT NULL,
    contact         text NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT residents_registry_number_key UNIQUE (registry_number)
);
CREATE INDEX residents_name_key ON residents (name_key);

CREATE TABLE entitlements (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    resident_id   bigint NOT NULL REFERENCES residents (id),
    category      integer NOT NULL CHECK (category BETWEEN 1 AND 65535),
    legal_basis   text NOT NULL,
    evidence      text NOT NULL,
    valid_from    date NOT NULL,
    valid_to      date NOT NULL CHECK (valid_to >= valid_from),
    funding       text NOT NULL CHECK (funding IN ('city', 'state')),
    monthly_limit integer NOT NULL CHECK (monthly_limit BETWEEN 0 AND 255),
    source        text NOT NULL CHECK (source IN ('desk', 'import')),
    -- The benefit register's decision id, for imported entitlements.
    source_ref    text NOT NULL DEFAULT '' CHECK ((source = 'import') = (source_ref <> '')),
    updated_at    timestamptz NOT NULL
);
CREATE INDEX entitlements_resident ON entitlements (resident_id);
CREATE INDEX entitlements_valid_to ON entitlements (valid_to);
CREATE UNIQUE INDEX entitlements_source_ref ON entitlements (source_ref) WHERE source_ref <> '';

CREATE TABLE cards (
    number         bigint PRIMARY KEY CHECK (number > 0 AND number < 10000000000000000),
    resident_id    bigint NOT NULL REFERENCES residents (id),
    status         text NOT NULL CHECK (status IN
                       ('ordered', 'personalised', 'active', 'blocked', 'lost', 'stolen', 'replaced', 'expired')),
    reason         text NOT NULL DEFAULT '',
    note           text NOT NULL DEFAULT '',
    issued         date NOT NULL,
    expires        date NOT NULL CHECK (expires > issued),
    replaces       bigint REFERENCES cards (number),
    replaced_by    bigint REFERENCES cards (number),
    carried_kop    bigint NOT NULL DEFAULT 0 CHECK (carried_kop BETWEEN 0 AND 500000),
    balance_source text NOT NULL DEFAULT '' CHECK (balance_source IN ('', 'clearing', 'card')),
    updated_at     timestamptz NOT NULL
);
CREATE INDEX cards_resident ON cards (resident_id);
-- One live card per person: a second order, or activating a second card,
-- fails here even if two desks race.
CREATE UNIQUE INDEX cards_one_live_per_resident ON cards (resident_id)
    WHERE status NOT IN ('replaced', 'expired');
CREATE INDEX cards_hotlisted ON cards (number) WHERE status IN ('blocked', 'lost', 'stolen', 'replaced');

-- What clearing and the hotlist consume: no personal data. seq comes from
-- registry_counters inside the writing transaction, which holds that
-- row's lock until it commits, so seqs are gap-free in commit order.
CREATE TABLE card_events (
    seq          bigint PRIMARY KEY,
    at           timestamptz NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('status', 'entitlements')),
    card         bigint NOT NULL REFERENCES cards (number),
    status       text NOT NULL,
    reason       text NOT NULL,
    issued       date NOT NULL,
    expires      date NOT NULL,
    entitlements text NOT NULL, -- JSON array of registry.CardEntitlement
    replaces     bigint,
    replaced_by  bigint
);

-- card_event: the last card event seq, and the lock every registry write
-- takes first. card_serial: the last card serial issued.
CREATE TABLE registry_counters (
    name  text PRIMARY KEY,
    value bigint NOT NULL
);
INSERT INTO registry_counters (name, value) VALUES ('card_event', 0), ('card_serial', 0);

CREATE TABLE api_tokens (
    hash        bytea PRIMARY KEY CHECK (length(hash) = 32), -- SHA-256 of the secret
    user_name   text NOT NULL,
    role        text NOT NULL CHECK (role IN ('desk', 'supervisor', 'finance', 'auditor', 'resident')),
    resident_id bigint REFERENCES residents (id),
    created_at  timestamptz NOT NULL,
    CHECK ((role = 'resident') = (resident_id IS NOT NULL))
);

-- Every access to personal data. Append-only: the triggers below refuse
-- UPDATE, DELETE and TRUNCATE even to the table's owner, and the REVOKE
-- keeps other roles from trying.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL,
    user_name   text NOT NULL,
    role        text NOT NULL,
    resident_id bigint, -- whose data; NULL when none
    record      text NOT NULL,
    action      text NOT NULL,
    purpose     text NOT NULL
);
CREATE INDEX audit_log_resident ON audit_log (resident_id, id);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
