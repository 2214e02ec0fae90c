-- Trust boundaries (issue 16): tokens that end and can be revoked,
-- named staff accounts with password hashes, residents' one-time sign-in
-- codes, an operator role, and a hash-chained audit log with signed
-- checkpoints.

-- Roles: "operator" reads clearing's metrics and reconciliation.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('desk', 'supervisor', 'finance', 'auditor', 'resident', 'service', 'operator'));

-- Tokens get a public id (the first 8 bytes of the hash, for lists and
-- revocation), a kind, an end, the last use and a revocation. Tokens made
-- before this migration end 90 days after they were made, as new ones
-- do by default: a token that never ends is not kept.
ALTER TABLE api_tokens
    ADD COLUMN id           text,
    ADD COLUMN kind         text NOT NULL DEFAULT 'machine' CHECK (kind IN ('machine', 'session')),
    ADD COLUMN expires_at   timestamptz,
    ADD COLUMN created_by   text NOT NULL DEFAULT '',
    ADD COLUMN note         text NOT NULL DEFAULT '',
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN revoked_at   timestamptz,
    ADD COLUMN revoked_by   text NOT NULL DEFAULT '';
UPDATE api_tokens SET id = encode(substring(hash FROM 1 FOR 8), 'hex'), expires_at = created_at + interval '90 days';
ALTER TABLE api_tokens ALTER COLUMN id SET NOT NULL, ALTER COLUMN expires_at SET NOT NULL;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_expiry CHECK (expires_at > created_at);
CREATE UNIQUE INDEX api_tokens_id ON api_tokens (id);
CREATE INDEX api_tokens_user ON api_tokens (user_name);

-- Named staff accounts. password_hash is an encoded Argon2id hash
-- (registry/password); the password is never stored.
CREATE TABLE staff_accounts (
    user_name           text PRIMARY KEY CHECK (user_name <> ''),
    role                text NOT NULL CHECK (role IN ('desk', 'supervisor', 'finance', 'auditor', 'operator')),
    password_hash       text NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
    created_at          timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL,
    disabled_at         timestamptz,
    disabled_by         text NOT NULL DEFAULT ''
);

-- A resident's sign-in: a one-time code sent to their registered contact.
-- Only the code's hash is kept, with how often it was tried.
CREATE TABLE resident_codes (
    id          text PRIMARY KEY,
    resident_id bigint NOT NULL REFERENCES residents (id),
    code_hash   bytea NOT NULL CHECK (length(code_hash) = 32),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    attempts    integer NOT NULL DEFAULT 0,
    used_at     timestamptz
);
CREATE INDEX resident_codes_resident ON resident_codes (resident_id, created_at);

-- The audit chain (registry/auditchain): each entry's place (seq), the
-- hash of the entry before it and its own hash. audit_head is the newest
-- entry as the registry recorded it when appending; its row lock orders
-- appends. audit_checkpoints are heads signed with the HSM's sign-audit
-- key.
ALTER TABLE audit_log ADD COLUMN seq bigint, ADD COLUMN prev_hash bytea, ADD COLUMN hash bytea;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE TABLE audit_head (
    id   integer PRIMARY KEY CHECK (id = 1),
    seq  bigint NOT NULL,
    hash bytea NOT NULL CHECK (length(hash) = 32)
);
CREATE TABLE audit_checkpoints (
    seq       bigint PRIMARY KEY,
    hash      bytea NOT NULL CHECK (length(hash) = 32),
    at        timestamptz NOT NULL,
    key       text NOT NULL,
    signature bytea NOT NULL
);
CREATE TRIGGER audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_checkpoints FROM PUBLIC;

-- Seal the entries written before the chain existed, in id order, with
-- the encoding of auditchain.Hash. The append-only trigger is set aside
-- for this one update, inside this migration's transaction.
ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change;
DO $$
DECLARE
    r    record;
    prev bytea := '\x0000000000000000000000000000000000000000000000000000000000000000';
    n    bigint := 0;
    h    bytea;
BEGIN
    FOR r IN SELECT * FROM audit_log ORDER BY id LOOP
        n := n + 1;
        h := sha256(convert_to('transit-audit-v1', 'UTF8') || prev
            || int8send(n)
            || int8send((extract(epoch FROM r.at) * 1000000)::bigint)
            || int4send(octet_length(r.user_name)) || convert_to(r.user_name, 'UTF8')
            || int4send(octet_length(r.role)) || convert_to(r.role, 'UTF8')
            || int8send(coalesce(r.resident_id, 0))
            || int4send(octet_length(r.record)) || convert_to(r.record, 'UTF8')
            || int4send(octet_length(r.action)) || convert_to(r.action, 'UTF8')
            || int4send(octet_length(r.purpose)) || convert_to(r.purpose, 'UTF8'));
        UPDATE audit_log SET seq = n, prev_hash = prev, hash = h WHERE id = r.id;
        prev := h;
    END LOOP;
    INSERT INTO audit_head (id, seq, hash) VALUES (1, n, prev);
END
$$;
ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change;
