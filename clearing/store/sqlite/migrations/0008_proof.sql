-- Clearing proves the rides it pays for (clearing/rerate), as in the
-- PostgreSQL store's migration 8: signed tariffs, the registry's card
-- records, carriers' routes, device numbers, the re-rating queue, the
-- judgement of rides, the card's confirmations, open links, released
-- lines of their own and what a closed statement held back.

CREATE TABLE tariffs (
    version  INTEGER PRIMARY KEY CHECK (version BETWEEN 1 AND 4294967295),
    digest   BLOB NOT NULL CHECK (length(digest) = 32),
    key_ref  TEXT NOT NULL,
    source   TEXT NOT NULL,
    added_us INTEGER NOT NULL,
    zip      BLOB NOT NULL
) STRICT;

CREATE TABLE card_records (
    card       INTEGER PRIMARY KEY,
    record     TEXT NOT NULL,
    updated_us INTEGER NOT NULL
) STRICT;

CREATE TABLE registry_feed (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    next_seq INTEGER NOT NULL,
    as_of_us INTEGER
) STRICT;
INSERT INTO registry_feed (one, next_seq, as_of_us) VALUES (1, 0, NULL);

CREATE TABLE carrier_routes (
    carrier TEXT NOT NULL,
    route   TEXT NOT NULL,
    PRIMARY KEY (carrier, route)
) STRICT, WITHOUT ROWID;

CREATE TABLE device_numbers (
    number   INTEGER PRIMARY KEY,
    device   TEXT NOT NULL,
    since_us INTEGER NOT NULL
) STRICT;

CREATE TABLE rerate_runs (
    id    INTEGER PRIMARY KEY,
    needs BLOB NOT NULL
) STRICT;
CREATE TABLE rerate_cards (
    card      INTEGER NOT NULL,
    period    TEXT NOT NULL,
    queued_us INTEGER NOT NULL,
    PRIMARY KEY (card, period)
) STRICT, WITHOUT ROWID;

CREATE TABLE judged (
    device           TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    tapped_us        INTEGER NOT NULL,
    card             INTEGER NOT NULL,
    period           TEXT NOT NULL,
    carrier          TEXT NOT NULL,
    claimed_kop      INTEGER NOT NULL,
    claim_into       TEXT NOT NULL,
    claim_adjusts    TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('paid', 'held', 'waiting', 'not-owed', 'released', 'rejected')),
    reason           TEXT NOT NULL,
    detail           TEXT NOT NULL,
    booked_into      TEXT NOT NULL,
    booked_adjusts   TEXT NOT NULL,
    kind             TEXT NOT NULL,
    paid_category    TEXT NOT NULL,
    paid_funding     TEXT NOT NULL,
    paid_fare        INTEGER NOT NULL,
    paid_charged     INTEGER NOT NULL,
    paid_comp        INTEGER NOT NULL,
    priced           INTEGER NOT NULL,
    release_category TEXT NOT NULL,
    release_funding  TEXT NOT NULL,
    release_fare     INTEGER NOT NULL,
    release_charged  INTEGER NOT NULL,
    release_comp     INTEGER NOT NULL,
    decided_by       TEXT NOT NULL,
    decided_us       INTEGER,
    decision_note    TEXT NOT NULL,
    updated_us       INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX judged_period ON judged (period, carrier, device, seq);
CREATE INDEX judged_card ON judged (card, tapped_us);
CREATE INDEX judged_claim ON judged (claim_into, claim_adjusts) WHERE state IN ('held', 'waiting');
CREATE INDEX judged_waiting ON judged (reason, tapped_us) WHERE state = 'waiting';
CREATE INDEX judged_booked ON judged (booked_into, booked_adjusts);

CREATE TABLE confirmed (
    device  TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    period  TEXT NOT NULL,
    carrier TEXT NOT NULL,
    PRIMARY KEY (device, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX confirmed_period ON confirmed (period, carrier);

CREATE TABLE open_links (
    card       INTEGER NOT NULL,
    prev_us    INTEGER NOT NULL,
    device     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    PRIMARY KEY (card, prev_us, device, seq)
) STRICT, WITHOUT ROWID;

-- The roll-up and the closed lines get a kind; SQLite changes a primary
-- key by rebuilding the table, and its triggers with it.
CREATE TABLE rollup_v8 (
    period           TEXT NOT NULL,
    carrier          TEXT NOT NULL,
    adjusts          TEXT NOT NULL,
    category         TEXT NOT NULL,
    funding          TEXT NOT NULL,
    route            TEXT NOT NULL,
    day              TEXT NOT NULL,
    kind             TEXT NOT NULL DEFAULT '',
    rides            INTEGER NOT NULL,
    fare_kop         INTEGER NOT NULL,
    charged_kop      INTEGER NOT NULL,
    compensation_kop INTEGER NOT NULL,
    PRIMARY KEY (period, carrier, adjusts, category, funding, route, day, kind)
) STRICT, WITHOUT ROWID;
INSERT INTO rollup_v8 (period, carrier, adjusts, category, funding, route, day, kind, rides, fare_kop, charged_kop, compensation_kop)
SELECT period, carrier, adjusts, category, funding, route, day, '', rides, fare_kop, charged_kop, compensation_kop FROM rollup;
DROP TABLE rollup;
ALTER TABLE rollup_v8 RENAME TO rollup;
CREATE TRIGGER rollup_closed_insert BEFORE INSERT ON rollup
WHEN EXISTS (SELECT 1 FROM closed_periods WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'the period is closed: its roll-up is frozen'); END;
CREATE TRIGGER rollup_closed_update BEFORE UPDATE ON rollup
WHEN EXISTS (SELECT 1 FROM closed_periods WHERE period = OLD.period)
BEGIN SELECT RAISE(ABORT, 'the period is closed: its roll-up is frozen'); END;

CREATE TABLE statement_lines_v8 (
    period           TEXT NOT NULL,
    adjusts          TEXT NOT NULL,
    carrier          TEXT NOT NULL,
    category         TEXT NOT NULL,
    funding          TEXT NOT NULL,
    kind             TEXT NOT NULL DEFAULT '',
    rides            INTEGER NOT NULL,
    fare_kop         INTEGER NOT NULL,
    charged_kop      INTEGER NOT NULL,
    compensation_kop INTEGER NOT NULL,
    PRIMARY KEY (period, adjusts, carrier, category, funding, kind),
    FOREIGN KEY (period, adjusts) REFERENCES statements (period, adjusts)
) STRICT, WITHOUT ROWID;
INSERT INTO statement_lines_v8 (period, adjusts, carrier, category, funding, kind, rides, fare_kop, charged_kop, compensation_kop)
SELECT period, adjusts, carrier, category, funding, '', rides, fare_kop, charged_kop, compensation_kop FROM statement_lines;
-- The implicit delete of DROP TABLE fires no trigger.
DROP TABLE statement_lines;
ALTER TABLE statement_lines_v8 RENAME TO statement_lines;
CREATE TRIGGER statement_lines_no_update BEFORE UPDATE ON statement_lines
BEGIN SELECT RAISE(ABORT, 'closed statements are immutable'); END;
CREATE TRIGGER statement_lines_no_delete BEFORE DELETE ON statement_lines
BEGIN SELECT RAISE(ABORT, 'closed statements are immutable'); END;
CREATE TRIGGER statement_lines_closed BEFORE INSERT ON statement_lines
WHEN EXISTS (SELECT 1 FROM closed_periods WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'the period is closed: its statements are immutable'); END;

CREATE TABLE statement_held (
    period      TEXT NOT NULL,
    adjusts     TEXT NOT NULL,
    carrier     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    rides       INTEGER NOT NULL,
    claimed_kop INTEGER NOT NULL,
    PRIMARY KEY (period, adjusts, carrier, reason),
    FOREIGN KEY (period, adjusts) REFERENCES statements (period, adjusts)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER statement_held_no_update BEFORE UPDATE ON statement_held
BEGIN SELECT RAISE(ABORT, 'closed statements are immutable'); END;
CREATE TRIGGER statement_held_no_delete BEFORE DELETE ON statement_held
BEGIN SELECT RAISE(ABORT, 'closed statements are immutable'); END;
CREATE TRIGGER statement_held_closed BEFORE INSERT ON statement_held
WHEN EXISTS (SELECT 1 FROM closed_periods WHERE period = NEW.period)
BEGIN SELECT RAISE(ABORT, 'the period is closed: its statements are immutable'); END;

ALTER TABLE hotlist ADD COLUMN reason TEXT NOT NULL DEFAULT '';

-- The claims of open periods stored before this migration were booked
-- unjudged: judge them before their periods close.
INSERT INTO rerate_cards (card, period, queued_us)
SELECT DISTINCT card, period, 0 FROM taps
WHERE result = 1 AND (card_committed OR marks & 2 <> 0) AND (product = 'benefit' OR compensation_kop <> 0)
    AND period NOT IN (SELECT period FROM closed_periods);
