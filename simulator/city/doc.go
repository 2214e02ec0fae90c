// Package city simulates a city's transit cards end to end and knows the
// truth of every ride.
//
// A small JSON config (Config) describes the city: carriers, municipal
// and private, their routes and vehicles with validators; a population
// by benefit category; when and how people ride (peaks, transfers,
// top-ups, lost cards and their replacements); and the faults to inject
// (torn cards, power cuts, validators offline for days, lost bus
// acknowledgements, replayed and forged batches, clock drift). Everything
// follows from the config's seed.
//
// The simulator keeps its own account of every card and decides each tap
// with the tariff's rules (validator/fare), so it knows what the city owes
// for every ride, per carrier, benefit category and funding source, and
// in which statement clearing must book it. Taps are made at one of two
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
// twice), the quarantine of every forged batch and, with Options.Audit,
// every stored tap field by field.
package city
