-- What each tap says beyond version 1 of the tap record: its marks
-- (commit unknown, clock anomaly, benefit revoked, counted; the bits of
-- tap.Tap.Marks) and the card's own evidence (this device's number in the
-- card's log and the card's previous ride, in the tap format's extension
-- form: tap.Tap.Evidence), so that nothing a validator sends is dropped.
-- Taps stored before this migration have neither.
ALTER TABLE taps ADD COLUMN marks smallint NOT NULL DEFAULT 0;
ALTER TABLE taps ADD COLUMN evidence bytea;
