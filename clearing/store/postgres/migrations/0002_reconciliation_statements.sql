-- Monthly partitions of taps, reconciliation, statements, and a roll-up
-- by route and day. Migrate sets transit.zone to the city's time zone
-- before running this: it decides the month and day of the taps already
-- stored, and so the partition and roll-up row each one belongs to.

-- What the database was set up with; Open refuses another time zone.
CREATE TABLE settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO settings (name, value) VALUES ('zone', current_setting('transit.zone'));

-- Taps, partitioned by the month of tapped_at in the city's time zone, so
-- that a month is a table of its own: scanned alone, indexed alone,
-- detached or archived whole. The partition key must be part of the
-- primary key; uniqueness of (device, seq) alone is kept by the devices'
-- sequence state (recon.Advance), which sends only missing taps here.
-- booked is the period whose statement the ride went into when its own
-- was closed before it arrived; '' when it went into its own.
ALTER TABLE taps RENAME TO taps_v1;
ALTER TABLE taps_v1 RENAME CONSTRAINT taps_pkey TO taps_v1_pkey;
CREATE TABLE taps (
    device           text COLLATE "C" NOT NULL,
    seq              bigint NOT NULL,
    tapped_at        timestamptz NOT NULL,
    period           text COLLATE "C" NOT NULL,
    card             bigint NOT NULL,
    carrier          text COLLATE "C" NOT NULL,
    route            text COLLATE "C" NOT NULL,
    vehicle          text NOT NULL,
    lat              integer NOT NULL,
    lon              integer NOT NULL,
    result           smallint NOT NULL,
    reason           text NOT NULL,
    product          text NOT NULL,
    category         text COLLATE "C" NOT NULL,
    funding          text COLLATE "C" NOT NULL,
    fare_kop         bigint NOT NULL,
    charged_kop      bigint NOT NULL,
    compensation_kop bigint NOT NULL,
    tariff_version   bigint NOT NULL,
    hotlist_version  bigint NOT NULL,
    card_committed   boolean NOT NULL,
    booked           text COLLATE "C" NOT NULL DEFAULT '',
    PRIMARY KEY (device, seq, tapped_at)
) PARTITION BY RANGE (tapped_at);
-- Hotlist and cloned-card checks look a card up around a time.
CREATE INDEX taps_card ON taps (card, tapped_at);

DO $$
DECLARE
    zone text := current_setting('transit.zone');
    m    date;
BEGIN
    FOR m IN SELECT DISTINCT date_trunc('month', tapped_at AT TIME ZONE zone)::date FROM taps_v1 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF taps FOR VALUES FROM (%L) TO (%L)',
            'taps_p' || to_char(m, 'YYYYMM'),
            m::timestamp AT TIME ZONE zone, (m + interval '1 month')::timestamp AT TIME ZONE zone);
    END LOOP;
END $$;
INSERT INTO taps SELECT *, '' FROM taps_v1;

-- Compensable rides per booked period, carrier, adjusted period ('' for
-- the period's own rides), category, funding source, route and day of the
-- ride, maintained with the taps so that statements never scan them.
-- Carrier comes second in the key so that one carrier's lines are one
-- index range.
CREATE TABLE rollup (
    period           text COLLATE "C" NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    carrier          text COLLATE "C" NOT NULL,
    adjusts          text COLLATE "C" NOT NULL,
    category         text COLLATE "C" NOT NULL,
    funding          text COLLATE "C" NOT NULL,
    route            text COLLATE "C" NOT NULL,
    day              date NOT NULL,
    rides            bigint NOT NULL,
    fare_kop         bigint NOT NULL,
    charged_kop      bigint NOT NULL,
    compensation_kop bigint NOT NULL,
    PRIMARY KEY (period, carrier, adjusts, category, funding, route, day)
);
INSERT INTO rollup
SELECT period, carrier, '', category, funding, route, (tapped_at AT TIME ZONE current_setting('transit.zone'))::date,
    count(*), sum(fare_kop), sum(charged_kop), sum(compensation_kop)
FROM taps_v1
WHERE result = 1 AND card_committed AND compensation_kop > 0
GROUP BY 1, 2, 3, 4, 5, 6, 7;
DROP TABLE compensation_rollup;

-- Each device's highest stored sequence number; with the open gaps it
-- tells a new tap from a repeat (recon.Advance).
CREATE TABLE devices (
    device  text COLLATE "C" PRIMARY KEY,
    max_seq bigint NOT NULL,
    max_at  timestamptz
);
INSERT INTO devices
SELECT device, max(seq), (array_agg(tapped_at ORDER BY seq DESC))[1] FROM taps_v1 GROUP BY device;

-- Missing runs of sequence numbers; closed is set when they arrived.
CREATE TABLE gaps (
    device    text COLLATE "C" NOT NULL,
    first_seq bigint NOT NULL,
    last_seq  bigint NOT NULL,
    period    text COLLATE "C" NOT NULL,
    opened    timestamptz NOT NULL,
    closed    timestamptz,
    PRIMARY KEY (device, first_seq)
);
CREATE INDEX gaps_open ON gaps (device, last_seq) WHERE closed IS NULL;
CREATE INDEX gaps_period ON gaps (period);
INSERT INTO gaps
SELECT device, prev + 1, seq - 1, period, now(), NULL
FROM (SELECT device, seq, period, lag(seq, 1, 0::bigint) OVER (PARTITION BY device ORDER BY seq) AS prev FROM taps_v1) s
WHERE seq > prev + 1;

CREATE TABLE device_periods (
    period     text COLLATE "C" NOT NULL,
    device     text COLLATE "C" NOT NULL,
    taps       bigint NOT NULL,
    duplicates bigint NOT NULL,
    first_seq  bigint NOT NULL,
    last_seq   bigint NOT NULL,
    PRIMARY KEY (period, device)
);
INSERT INTO device_periods
SELECT period, device, count(*), 0, min(seq), max(seq) FROM taps_v1 GROUP BY period, device;
DROP TABLE taps_v1;

CREATE TABLE anomalies (
    kind         text COLLATE "C" NOT NULL,
    device       text COLLATE "C" NOT NULL,
    seq          bigint NOT NULL,
    other_device text COLLATE "C" NOT NULL,
    other_seq    bigint NOT NULL,
    period       text COLLATE "C" NOT NULL,
    at           timestamptz NOT NULL,
    card         bigint NOT NULL,
    detail       text NOT NULL,
    PRIMARY KEY (kind, device, seq, other_device, other_seq)
);
CREATE INDEX anomalies_period ON anomalies (period);

CREATE TABLE hotlist (
    card    bigint NOT NULL,
    from_at timestamptz NOT NULL,
    PRIMARY KEY (card, from_at)
);

CREATE TABLE closed_periods (
    period text COLLATE "C" PRIMARY KEY,
    closed timestamptz NOT NULL
);

CREATE TABLE statements (
    period       text COLLATE "C" NOT NULL,
    adjusts      text COLLATE "C" NOT NULL,
    closed       timestamptz NOT NULL,
    content_hash bytea NOT NULL,
    signature    bytea NOT NULL,
    key_ref      text NOT NULL,
    PRIMARY KEY (period, adjusts)
);

CREATE TABLE statement_lines (
    period           text COLLATE "C" NOT NULL,
    adjusts          text COLLATE "C" NOT NULL,
    carrier          text COLLATE "C" NOT NULL,
    category         text COLLATE "C" NOT NULL,
    funding          text COLLATE "C" NOT NULL,
    rides            bigint NOT NULL,
    fare_kop         bigint NOT NULL,
    charged_kop      bigint NOT NULL,
    compensation_kop bigint NOT NULL,
    PRIMARY KEY (period, adjusts, carrier, category, funding),
    FOREIGN KEY (period, adjusts) REFERENCES statements (period, adjusts)
);

-- A closed statement never changes, and neither does the roll-up of a
-- closed period (late rides are booked into an open one): the database
-- refuses, whoever asks.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'closed statements are immutable (% on %)', TG_OP, TG_TABLE_NAME;
END $$;
CREATE FUNCTION refuse_closed_period() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM closed_periods WHERE period = NEW.period) THEN
        RAISE EXCEPTION 'period % is closed: % on % refused', NEW.period, TG_OP, TG_TABLE_NAME;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER statements_immutable BEFORE UPDATE OR DELETE ON statements
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER statement_lines_immutable BEFORE UPDATE OR DELETE ON statement_lines
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER closed_periods_immutable BEFORE UPDATE OR DELETE ON closed_periods
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER statements_truncate BEFORE TRUNCATE ON statements
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER statement_lines_truncate BEFORE TRUNCATE ON statement_lines
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER closed_periods_truncate BEFORE TRUNCATE ON closed_periods
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER statements_closed BEFORE INSERT ON statements
    FOR EACH ROW EXECUTE FUNCTION refuse_closed_period();
CREATE TRIGGER statement_lines_closed BEFORE INSERT ON statement_lines
    FOR EACH ROW EXECUTE FUNCTION refuse_closed_period();
CREATE TRIGGER rollup_closed BEFORE INSERT OR UPDATE ON rollup
    FOR EACH ROW EXECUTE FUNCTION refuse_closed_period();
