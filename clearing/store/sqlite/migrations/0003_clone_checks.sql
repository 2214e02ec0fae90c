-- Runs of new rides waiting for the cloned-card check (plan.CloneCheck),
-- as in the PostgreSQL store: AddTaps queues them, CheckClones takes
-- them oldest first. Taps stored before this migration were checked when
-- they arrived.
CREATE TABLE clone_checks (
    id        INTEGER PRIMARY KEY,
    device    TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    from_us   INTEGER NOT NULL,
    to_us     INTEGER NOT NULL,
    CHECK (first_seq <= last_seq AND from_us <= to_us)
) STRICT;
