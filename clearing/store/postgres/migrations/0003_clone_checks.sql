-- Runs of new rides waiting for the cloned-card check (plan.CloneCheck).
-- AddTaps queues one row per device and batch; CheckClones takes rows
-- oldest first and deletes them in the transaction that records what it
-- found, so a run is checked once even when several checkers run. The
-- check used to run inside AddTaps, where its probe per ride into the
-- card index held every ingest transaction up (ingest ran about a
-- quarter slower with it). Taps stored before this migration were
-- checked when they arrived: nothing to queue for them.
CREATE TABLE clone_checks (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device    text COLLATE "C" NOT NULL,
    first_seq bigint NOT NULL,
    last_seq  bigint NOT NULL,
    from_at   timestamptz NOT NULL,
    to_at     timestamptz NOT NULL,
    CHECK (first_seq <= last_seq AND from_at <= to_at)
);

-- The hotlist's version, one more each time AddHotlist adds entries (in
-- its transaction). Ingest keeps the hotlist in memory and reads only
-- this number per batch, reloading the list when it changed: looking up
-- every accepted tap's card in the table cost a quarter of ingest.
CREATE TABLE hotlist_version (
    one     boolean PRIMARY KEY DEFAULT true CHECK (one),
    version bigint NOT NULL
);
INSERT INTO hotlist_version (version) VALUES (1);
