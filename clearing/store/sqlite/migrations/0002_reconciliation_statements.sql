-- Reconciliation, statements, and a roll-up by route and day. The Go
-- step of this migration (rebuild in sqlite.go) fills rollup, devices,
-- gaps and device_periods from the taps already stored.

-- What the file was set up with, e.g. the city's time zone, which fixes
-- the month and day of every stored tap.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;

-- booked is the period whose statement the ride went into when its own
-- period was closed before it arrived; '' when it went into its own.
ALTER TABLE taps ADD COLUMN booked TEXT NOT NULL DEFAULT '';
CREATE INDEX taps_card ON taps (card, tapped_us);
CREATE INDEX taps_period ON taps (period, booked);

-- Compensable rides per booked period, carrier, adjusted period ('' for
-- the period's own rides), category, funding source, route and day of the
-- ride, maintained with the taps so that statements never scan them.
-- Carrier comes second so that one carrier's lines are one range.
DROP TABLE compensation_rollup;
CREATE TABLE rollup (
    period           TEXT NOT NULL,
    carrier          TEXT NOT NULL,
    adjusts          TEXT NOT NULL,
    category         TEXT NOT NULL,
    funding          TEXT NOT NULL,
    route            TEXT NOT NULL,
    day              TEXT NOT NULL,
    rides            INTEGER NOT NULL,
    fare_kop         INTEGER NOT NULL,
    charged_kop      INTEGER NOT NULL,
    compensation_kop INTEGER NOT NULL,
    PRIMARY KEY (period, carrier, adjusts, category, funding, route, day)
) STRICT, WITHOUT ROWID;

-- Each device's highest stored sequence number; with the open gaps it
-- tells a new tap from a repeat (recon.Advance).
CREATE TABLE devices (
    device  TEXT PRIMARY KEY,
    max_seq INTEGER NOT NULL,
    max_us  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Missing runs of sequence numbers; closed_us is set when they arrived.
CREATE TABLE gaps (
    device    TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq  INTEGER NOT NULL,
    period    TEXT NOT NULL,
    opened_us INTEGER NOT NULL,
    closed_us INTEGER,
    PRIMARY KEY (device, first_seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX gaps_open ON gaps (device, last_seq) WHERE closed_us IS NULL;
CREATE INDEX gaps_period ON gaps (period);

CREATE TABLE device_periods (
    period     TEXT NOT NULL,
    device     TEXT NOT NULL,
    taps       INTEGER NOT NULL,
    duplicates INTEGER NOT NULL,
    first_seq  INTEGER NOT NULL,
    last_seq   INTEGER NOT NULL,
    PRIMARY KEY (period, device)
) STRICT, WITHOUT ROWID;

CREATE TABLE anomalies (
    kind         TEXT NOT NULL,
    device       TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    other_device TEXT NOT NULL,
    other_seq    INTEGER NOT NULL,
    period       TEXT NOT NULL,
    at_us        INTEGER NOT NULL,
    card         INTEGER NOT NULL,
    detail       TEXT NOT NULL,
    PRIMARY KEY (kind, device, seq, other_device, other_seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX anomalies_period ON anomalies (period);

CREATE TABLE hotlist (
    card    INTEGER NOT NULL,
    from_us INTEGER NOT NULL,
    PRIMARY KEY (card, from_us)
) STRICT, WITHOUT ROWID;

CREATE TABLE closed_periods (
    period    TEXT PRIMARY KEY,
    closed_us INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE statements (
    period       TEXT NOT NULL,
    adjusts      TEXT NOT NULL,
    closed_us    INTEGER NOT NULL,
    content_hash BLOB NOT NULL,
    signature    BLOB NOT NULL,
    key_ref      TEXT NOT NULL,
    PRIMARY KEY (period, adjusts)
) STRICT, WITHOUT ROWID;

CREATE TABLE statement_lines (
    period           TEXT NOT NULL,
    adjusts          TEXT NOT NULL,
    carrier          TEXT NOT NULL,
    category         TEXT NOT NULL,
    funding          TEXT NOT NULL,
    rides            INTEGER NOT NULL,
    fare_kop         INTEGER NOT NULL,
    charged_kop      INTEGER NOT NULL,
    compensation_kop INTEGER NOT NULL,
    PRIMARY KEY (period, adjusts, carrier, category, funding),
    FOREIGN KEY (period, adjusts) REFERENCES statements (period, adjusts)
) STRICT, WITHOUT ROWID;

-- A closed statement never changes; the database refuses, whoever asks.
CREATE TRIGGER statements_no_update BEFORE UPDATE ON statements
BEGIN SELECT RAISE(ABORT, 'closed statements are immutable'); END;
CREATE TRIGGER statements_no_delete BEFORE DELETE ON statements
BEGIN SELECT RAISE(ABORT, 'closed statements are immutable'); END;
CREATE TRIGGER statement_lines_no_update BEFORE UPDATE ON statement_lines
BEGIN SELECT RAISE(ABORT, 'closed statements are immutable'); END;
CREATE TRIGGER statement_lines_no_delete BEFORE DELETE ON statement_lines
BEGIN SELECT RAISE(ABORT, 'closed statements are immutable'); END;
CREATE TRIGGER closed_periods_no_update BEFORE UPDATE ON closed_periods
BEGIN SELECT RAISE(ABORT, 'closed periods stay closed'); END;
CREATE TRIGGER closed_periods_no_delete BEFORE DELETE ON closed_periods
BEGIN SELECT RAISE(ABORT, 'closed periods stay closed'); END;
CREATE TRIGGER statements_closed BEFORE INSERT ON statements
WHEN EXISTS (SELECT 1 FROM closed_periods WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'the period is closed: its statements are immutable'); END;
CREATE TRIGGER statement_lines_closed BEFORE INSERT ON statement_lines
WHEN EXISTS (SELECT 1 FROM closed_periods WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'the period is closed: its statements are immutable'); END;
-- Nor does the roll-up of a closed period move: late rides are booked
-- into an open period (store.Book).
CREATE TRIGGER rollup_closed_insert BEFORE INSERT ON rollup
WHEN EXISTS (SELECT 1 FROM closed_periods WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'the period is closed: its roll-up is frozen'); END;
CREATE TRIGGER rollup_closed_update BEFORE UPDATE ON rollup
WHEN EXISTS (SELECT 1 FROM closed_periods WHERE period = OLD.period)
BEGIN SELECT RAISE(ABORT, 'the period is closed: its roll-up is frozen'); END;
