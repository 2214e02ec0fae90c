// Package golden is the golden month: a small fixed city in
// testdata/golden (34 cards, 11 validators, 240 rides in November 2026,
// Europe/Kyiv) whose every ride was decided by hand from
// validator/tariff/FORMAT.md ("Deciding a tap") and the sample tariff in
// testdata/tariff, and whose compensation statement a finance officer can
// follow line by line in testdata/golden/README.md.
//
// The package has tests only. TestGoldenMonth runs the month through the
// system as production runs it: virtual cards personalised as a desk does
// (card/issue), one validator agent per device reading them with the
// card transaction of validator/cardtx, a journal on disk, the signed
// sample tariff and signed hotlists, taps sealed into batches by
// validator/upload, an in-process bus, clearing/ingest into the embedded
// SQLite store, and the month closed and signed by clearing/statement. It
// then checks every journalled tap against the hand-worked expectation,
// field by field, the taps clearing stored against the journals, every
// card's purse at the end of the month, and the statements against the
// README's tables.
//
// The expectations are not derived from the code they check: when the
// system and a row disagree, the row is re-read against FORMAT.md, never
// rewritten from what the system did.
package golden
