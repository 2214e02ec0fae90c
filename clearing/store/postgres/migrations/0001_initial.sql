-- Taps as the validators sent them, once per (device, seq). Unsigned
-- numbers from the tap record (card, hotlist version) are stored as their
-- bit pattern in bigint; seq is refused above 2^63-1 so that it sorts.
-- The key columns use the "C" collation: byte order is cheaper to compare
-- than a linguistic one and gives the same order on every server.
CREATE TABLE taps (
    device           text COLLATE "C" NOT NULL,
    seq              bigint NOT NULL,
    tapped_at        timestamptz NOT NULL,
    -- The accounting month in the city's time zone, fixed when the tap is
    -- stored, so that the roll-up can always be rebuilt from the taps.
    period           text COLLATE "C" NOT NULL,
    card             bigint NOT NULL,
    carrier          text COLLATE "C" NOT NULL,
    route            text NOT NULL,
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
    PRIMARY KEY (device, seq)
);

-- Batches that failed a check, kept as evidence and never applied.
CREATE TABLE quarantine (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received timestamptz NOT NULL,
    device   text NOT NULL,
    reason   text NOT NULL,
    detail   text NOT NULL,
    raw      bytea NOT NULL
);
CREATE INDEX quarantine_received ON quarantine (received, id);

-- Compensable rides per month, carrier, category and funding source,
-- maintained in the transaction that stores the taps so that statements
-- never scan the taps table.
CREATE TABLE compensation_rollup (
    period           text COLLATE "C" NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    carrier          text COLLATE "C" NOT NULL,
    category         text COLLATE "C" NOT NULL,
    funding          text COLLATE "C" NOT NULL,
    rides            bigint NOT NULL,
    fare_kop         bigint NOT NULL,
    charged_kop      bigint NOT NULL,
    compensation_kop bigint NOT NULL,
    PRIMARY KEY (period, carrier, category, funding)
);
