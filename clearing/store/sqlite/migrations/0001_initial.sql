-- Taps as the validators sent them, once per (device, seq). Times are Unix
-- microseconds (the precision PostgreSQL keeps, so both stores agree).
-- Unsigned numbers of the tap record (card, hotlist version) are stored as
-- their bit pattern; seq is refused above 2^63-1 so that it sorts.
CREATE TABLE taps (
    device           TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    tapped_us        INTEGER NOT NULL,
    -- The accounting month in the city's time zone, fixed when the tap is
    -- stored, so that the roll-up can always be rebuilt from the taps.
    period           TEXT NOT NULL,
    card             INTEGER NOT NULL,
    carrier          TEXT NOT NULL,
    route            TEXT NOT NULL,
    vehicle          TEXT NOT NULL,
    lat              INTEGER NOT NULL,
    lon              INTEGER NOT NULL,
    result           INTEGER NOT NULL,
    reason           TEXT NOT NULL,
    product          TEXT NOT NULL,
    category         TEXT NOT NULL,
    funding          TEXT NOT NULL,
    fare_kop         INTEGER NOT NULL,
    charged_kop      INTEGER NOT NULL,
    compensation_kop INTEGER NOT NULL,
    tariff_version   INTEGER NOT NULL,
    hotlist_version  INTEGER NOT NULL,
    card_committed   INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT, WITHOUT ROWID;

-- Batches that failed a check, kept as evidence and never applied.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_us INTEGER NOT NULL,
    device      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    raw         BLOB NOT NULL
) STRICT;
CREATE INDEX quarantine_received ON quarantine (received_us, id);

-- Compensable rides per month, carrier, category and funding source,
-- maintained in the transaction that stores the taps so that statements
-- never scan the taps table.
CREATE TABLE compensation_rollup (
    period           TEXT NOT NULL,
    carrier          TEXT NOT NULL,
    category         TEXT NOT NULL,
    funding          TEXT NOT NULL,
    rides            INTEGER NOT NULL,
    fare_kop         INTEGER NOT NULL,
    charged_kop      INTEGER NOT NULL,
    compensation_kop INTEGER NOT NULL,
    PRIMARY KEY (period, carrier, category, funding)
) STRICT, WITHOUT ROWID;
