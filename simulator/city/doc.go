// Package city simulates a city's transit cards end to end and knows the
// truth of every ride.
//
// A small JSON config (Config) describes the city: carriers, municipal
// and private, their routes and vehicles with validators; a population
// by benefit category; when and how people ride (peaks, transfers,
// top-ups, lost cards and their replacements); and the faults to inject
// (torn cards, power cuts, validators offline for days, lost bus
// acknowledgements, replayed and forged batches, clock drift, and
// dishonest validators with valid device keys that inflate their benefit
// rides' claims and invent rides of real benefit cards: Dishonest).
// Everything follows from the config's seed.
//
// The simulator keeps two accounts of every card. One mirrors the card as
// validators read it and decides each tap with the validator's own code
// (validator/cardtx and validator/fare), which is how the fast lane makes
// the taps validators would make. The other is the truth: every
// presentation is decided again by the reference model (validator/fareref,
// a separate reading of FORMAT.md's "Deciding a tap"), on the model's own
// account of the purse and of the card's previous ride, and what the model
// says is owed for the rides the card committed is what clearing must pay,
// per carrier, benefit category and funding source, and in which statement
// clearing must book it. A tap the two decide differently is a problem of
// its own, so a rule the validator's code gets wrong cannot hide behind a
// truth computed by the same code. Taps are made at one of two
// fidelities:
//
//   - Full: virtual cards (simulator/vcard) personalised by card/issue are
//     presented to real validators (validator/agent with validator/cardtx,
//     their own role keystores, journals on disk, signed hotlists in a
//     hotlist.Holder), whose uploaders seal batches with their device keys.
//     Each journalled tap is checked against the simulator's decision.
//   - Fast: taps are generated from the model and sealed into batches with
//     the devices' batch keys directly, for volume.
//
// Mixed runs a pilot fleet at full fidelity and the rest fast.
//
// Batches go over a bus (in process or Kafka) to clearing's real ingest
// and store (SQLite or PostgreSQL); the simulation closes months with
// signed statements and Compare checks clearing against the truth: each
// statement to the kopiyka, each device's sequence (nothing lost, nothing
// twice), the quarantine of every forged batch, the rides clearing holds
// (every lie of a dishonest validator held for the reason clearing must
// give, and no honest ride held: the truth owes nothing for a lie) and,
// with Options.Audit, every stored tap field by field. Compare first has
// clearing judge whatever its re-rating has queued (clearing/rerate), with
// the tariff and the registry's records as of then, as clearing serve does
// beside ingest, so that open months' drafts are compared as their close
// would seal them.
package city
