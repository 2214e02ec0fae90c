-- Clearing proves the rides it pays for (clearing/rerate): it keeps every
-- signed tariff, the registry's records of cards, the routes carriers
-- run and the device numbers card logs name; it judges each benefit ride
-- and records what it found, links the card's rides by their evidence,
-- and keeps people's decisions on held rides. Money moves only through
-- the roll-up: a ride found wrong leaves it, one found right (or
-- released) enters it.

-- Signed tariffs, as the registry publishes them (a zip of the signed
-- directory). Verified before they are added; never changed.
CREATE TABLE tariffs (
    version bigint PRIMARY KEY CHECK (version BETWEEN 1 AND 4294967295),
    digest  bytea NOT NULL CHECK (length(digest) = 32),
    key_ref text NOT NULL,
    source  text NOT NULL,
    added   timestamptz NOT NULL,
    zip     bytea NOT NULL
);

-- What the registry says about each card: its holder's entitlements and
-- the spans in which its benefits were revoked, as JSON
-- (store.CardRecord). No personal data.
CREATE TABLE card_records (
    card    bigint PRIMARY KEY,
    record  text NOT NULL,
    updated timestamptz NOT NULL
);

-- How far clearing has read the registry's card records.
CREATE TABLE registry_feed (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    next_seq bigint NOT NULL,
    as_of    timestamptz
);
INSERT INTO registry_feed (next_seq, as_of) VALUES (0, NULL);

-- The routes a carrier runs, where clearing was told them.
CREATE TABLE carrier_routes (
    carrier text COLLATE "C" NOT NULL,
    route   text COLLATE "C" NOT NULL,
    PRIMARY KEY (carrier, route)
);

-- Device numbers as card logs name them, learnt from each device's own
-- (authenticated) taps: the first device to report a number keeps it.
CREATE TABLE device_numbers (
    number bigint PRIMARY KEY,
    device text COLLATE "C" NOT NULL,
    since  timestamptz NOT NULL
);

-- New taps waiting for re-rating, one row per AddTaps call: what a pass
-- needs to know of each (plan.Need: card, time, the time of the previous
-- ride its evidence names, judged or not; plan.AppendNeeds), so that a
-- pass never reads the new taps back. Card months are queued by whatever
-- changes a card's facts.
CREATE TABLE rerate_runs (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    needs bytea NOT NULL
);
CREATE TABLE rerate_cards (
    card   bigint NOT NULL,
    period text COLLATE "C" NOT NULL,
    queued timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (card, period)
);

-- The judgement of rides whose record differs from "paid as ingest
-- booked it" (rerate.Record): held, waiting, unowed, paid elsewhere,
-- released, rejected. claim_into/claim_adjusts name the statement the
-- ride's claim belongs to (its held section); booked_* where its payment
-- is booked ('' when unpaid).
CREATE TABLE judged (
    device           text COLLATE "C" NOT NULL,
    seq              bigint NOT NULL,
    tapped_at        timestamptz NOT NULL,
    card             bigint NOT NULL,
    period           text COLLATE "C" NOT NULL,
    carrier          text COLLATE "C" NOT NULL,
    claimed_kop      bigint NOT NULL,
    claim_into       text COLLATE "C" NOT NULL,
    claim_adjusts    text COLLATE "C" NOT NULL,
    state            text NOT NULL CHECK (state IN ('paid', 'held', 'waiting', 'not-owed', 'released', 'rejected')),
    reason           text NOT NULL,
    detail           text NOT NULL,
    booked_into      text COLLATE "C" NOT NULL,
    booked_adjusts   text COLLATE "C" NOT NULL,
    kind             text COLLATE "C" NOT NULL,
    paid_category    text COLLATE "C" NOT NULL,
    paid_funding     text COLLATE "C" NOT NULL,
    paid_fare        bigint NOT NULL,
    paid_charged     bigint NOT NULL,
    paid_comp        bigint NOT NULL,
    priced           boolean NOT NULL,
    release_category text NOT NULL,
    release_funding  text NOT NULL,
    release_fare     bigint NOT NULL,
    release_charged  bigint NOT NULL,
    release_comp     bigint NOT NULL,
    decided_by       text NOT NULL,
    decided_at       timestamptz,
    decision_note    text NOT NULL,
    updated          timestamptz NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE INDEX judged_period ON judged (period, carrier, device, seq);
CREATE INDEX judged_card ON judged (card, tapped_at);
CREATE INDEX judged_claim ON judged (claim_into, claim_adjusts) WHERE state IN ('held', 'waiting');
CREATE INDEX judged_waiting ON judged (reason, tapped_at) WHERE state = 'waiting';

-- Judged rides a later tap of the card names: the card's own proof.
CREATE TABLE confirmed (
    device  text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    period  text COLLATE "C" NOT NULL,
    carrier text COLLATE "C" NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE INDEX confirmed_period ON confirmed (period, carrier);

-- Taps whose evidence named a benefit ride clearing did not have yet:
-- when that ride arrives, they are judged with it.
CREATE TABLE open_links (
    card    bigint NOT NULL,
    prev_at timestamptz NOT NULL,
    device  text COLLATE "C" NOT NULL,
    seq     bigint NOT NULL,
    PRIMARY KEY (card, prev_at, device, seq)
);

-- Released rides are lines of their own: the roll-up and the closed
-- lines carry a kind ('' or 'released').
ALTER TABLE rollup ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE rollup DROP CONSTRAINT rollup_pkey,
    ADD PRIMARY KEY (period, carrier, adjusts, category, funding, route, day, kind);
ALTER TABLE statement_lines ADD COLUMN kind text COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE statement_lines DROP CONSTRAINT statement_lines_pkey,
    ADD PRIMARY KEY (period, adjusts, carrier, category, funding, kind);

-- What a closed statement did not pay, and why.
CREATE TABLE statement_held (
    period      text COLLATE "C" NOT NULL,
    adjusts     text COLLATE "C" NOT NULL,
    carrier     text COLLATE "C" NOT NULL,
    reason      text COLLATE "C" NOT NULL,
    rides       bigint NOT NULL,
    claimed_kop bigint NOT NULL,
    PRIMARY KEY (period, adjusts, carrier, reason),
    FOREIGN KEY (period, adjusts) REFERENCES statements (period, adjusts)
);
CREATE TRIGGER statement_held_immutable BEFORE UPDATE OR DELETE ON statement_held
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER statement_held_truncate BEFORE TRUNCATE ON statement_held
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER statement_held_closed BEFORE INSERT ON statement_held
    FOR EACH ROW EXECUTE FUNCTION refuse_closed_period();

-- A hotlist entry's reason: benefit-revoked withdraws benefits only, so
-- it flags no tap as hotlisted.
ALTER TABLE hotlist ADD COLUMN reason text NOT NULL DEFAULT '';

-- The claims of open periods stored before this migration were booked
-- unjudged: judge them before their periods close.
INSERT INTO rerate_cards (card, period)
SELECT DISTINCT card, period FROM taps
WHERE result = 1 AND (card_committed OR marks & 2 <> 0) AND (product = 'benefit' OR compensation_kop <> 0)
    AND period NOT IN (SELECT period FROM closed_periods);
