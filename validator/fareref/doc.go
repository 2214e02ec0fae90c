// Package fareref is the reference reading of the fare rules: a second,
// deliberately plain implementation of validator/tariff/FORMAT.md, section
// "Deciding a tap", written from that text alone.
//
// It shares no decision code with validator/fare, the validator's fast
// reading: it takes fare.Tariff only as the data the tariff files hold and
// calls no function of package fare. Clarity comes before speed here; every
// piece names the FORMAT.md step it implements, so that a reader can check
// the model against the document line by line, and the differential tests
// check the validator against the model.
//
// Decide decides one tap from a card as the card holds it (Card: contract,
// purse, newest tap log record) and the tap's device and instant (Tap).
// Card.Commit applies an accepted decision the card committed: the purse
// debit and the new tap log record with its ride counts. A torn tap is
// simply not committed: the card keeps its state.
//
// # Differential tests
//
// The package's tests generate random tariffs (in the shapes the tariff
// files can express), card states and trip sequences, decide every tap with
// this model and with the validator's path (cardtx.FareCard, fare.Decide,
// cardtx.NextRecord), and demand that every field of every decision and the
// card state after every committed ride agree. A disagreement is shrunk to a
// minimal case and printed with the tariff in FORMAT.md's file form; cases
// worth keeping live in testdata/corpus/*.json and are replayed by
// TestCorpus.
//
// The normal test run checks 100,000 cases of a fixed seed (TestDifferential)
// and replays the corpus (TestCorpus). A long run:
//
//	TRANSIT_FAREREF_CASES=10000000 go test ./validator/fareref -run Differential -timeout 0
//
// Other variables: TRANSIT_FAREREF_SEED picks another seed (the default is
// fixed, so a run is repeatable); TRANSIT_FAREREF_CASE=N runs and prints
// case N alone; TRANSIT_FAREREF_SAVE=DIR writes each kind of disagreement,
// shrunk, as a corpus file (a case marked "open" is a finding not fixed
// yet: it must keep disagreeing, and the test says so when it no longer
// does); TRANSIT_FAREREF_MAKE_CORPUS=DIR writes the
// reach-*.json cases again. BenchmarkDifferential measures cases per
// second.
package fareref
