-- Parents and guardians (issue 20): a link from a child's record to a
-- parent's or guardian's, on the evidence a desk saw. While it stands (not
-- ended, the child under 18: registry.Guardianship.Active) the guardian,
-- in their own view, reads the child's record and may block the child's
-- card, audited in the child's record under the guardian's name. A link
-- is never deleted: a desk ends it with a reason, and it stays on record.
-- One standing link per guardian and child (guardianships_once).
CREATE TABLE guardianships (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    guardian_id bigint NOT NULL REFERENCES residents (id),
    child_id    bigint NOT NULL REFERENCES residents (id),
    evidence    text NOT NULL CHECK (evidence <> ''),
    created_at  timestamptz NOT NULL,
    created_by  text NOT NULL,
    ended_at    timestamptz,
    ended_by    text NOT NULL DEFAULT '',
    end_reason  text NOT NULL DEFAULT '',
    CHECK (guardian_id <> child_id),
    CHECK ((ended_at IS NULL) = (ended_by = '') AND (ended_at IS NULL) = (end_reason = ''))
);
CREATE UNIQUE INDEX guardianships_once ON guardianships (guardian_id, child_id) WHERE ended_at IS NULL;
CREATE INDEX guardianships_child ON guardianships (child_id);
