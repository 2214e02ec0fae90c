-- Quarantine, bounded and idempotent: a rejected batch is kept as its
-- first bytes (ingest.MaxRawKept), its size and its SHA-256, with the bus
-- position it was delivered at. The same bytes at the same position are
-- one row, so consuming a topic again quarantines nothing twice. Rows
-- from before this migration have no position (NULL), and NULLs never
-- collide in a unique index: they stay as they were.
ALTER TABLE quarantine
    ADD COLUMN raw_size integer,
    ADD COLUMN raw_sha256 bytea,
    ADD COLUMN bus_partition integer,
    ADD COLUMN bus_offset bigint;
UPDATE quarantine SET raw_size = length(raw), raw_sha256 = sha256(raw);
ALTER TABLE quarantine
    ALTER COLUMN raw_size SET NOT NULL,
    ALTER COLUMN raw_sha256 SET NOT NULL;
CREATE UNIQUE INDEX quarantine_key ON quarantine (raw_sha256, bus_partition, bus_offset);

-- Each device's fleet state beside its sequence state (devices): the
-- batch it sealed last (when clearing received it, the device's clock at
-- sealing, their difference as a clock estimate) and the tariff and
-- hotlist versions of its highest-numbered tap (store.UpdateState).
CREATE TABLE device_state (
    device          text COLLATE "C" PRIMARY KEY,
    last_batch      timestamptz NOT NULL,
    batch_created   timestamptz NOT NULL,
    clock_offset_ms bigint NOT NULL,
    version_seq     bigint NOT NULL,
    tariff_version  bigint NOT NULL,
    hotlist_version bigint NOT NULL
);
