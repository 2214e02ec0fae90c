-- Quarantine, bounded and idempotent, as in the PostgreSQL store: the
-- first bytes of a rejected batch, its size and SHA-256 (filled in for
-- older rows by this migration's Go step) and its bus position. Rows from
-- before this migration have no position (NULL), and NULLs never collide
-- in a unique index.
ALTER TABLE quarantine ADD COLUMN raw_size INTEGER;
ALTER TABLE quarantine ADD COLUMN raw_sha256 BLOB;
ALTER TABLE quarantine ADD COLUMN bus_partition INTEGER;
ALTER TABLE quarantine ADD COLUMN bus_offset INTEGER;
CREATE UNIQUE INDEX quarantine_key ON quarantine (raw_sha256, bus_partition, bus_offset);

-- Each device's fleet state (store.UpdateState). Times are Unix
-- microseconds.
CREATE TABLE device_state (
    device          TEXT PRIMARY KEY,
    last_batch_us   INTEGER NOT NULL,
    batch_created_us INTEGER NOT NULL,
    clock_offset_ms INTEGER NOT NULL,
    version_seq     INTEGER NOT NULL,
    tariff_version  INTEGER NOT NULL,
    hotlist_version INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
