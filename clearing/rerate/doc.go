// Package rerate is clearing's proof of every benefit ride it pays for:
// it decides again what each ride owes, with clearing's own facts rather
// than the device's word, links a card's rides into the chain its own tap
// log records, and says which rides are paid, held for a person to
// decide, or waiting for a fact clearing does not have yet.
//
// Everything here is a pure function of its arguments. Both clearing
// stores load what a card's judgement needs (its rides around a month,
// the registry's records of its entitlements, the tariffs), call Card,
// and write what Next returns, so that a rule is written once.
//
// # The facts
//
// A ride is judged with what clearing knows, not with what the device
// that sent it says:
//
//   - the tariff version the tap names, among the signed tariffs clearing
//     keeps (validator/tariff/FORMAT.md, "Deciding a tap", is the rule);
//   - the card's previous ride: the ride the card's own tap log named
//     during the tap (tap.Tap.Prev), as clearing stored it from the device
//     that made it; for a tap without such evidence, the card's newest
//     committed ride before it from any device;
//   - the card's benefit rides of the month before it, as clearing
//     re-rated them, for the monthly quota;
//   - the registry's records of the card's entitlements (category, dates,
//     monthly limit), and the spans in which its benefits were revoked;
//   - the routes each carrier runs, where clearing has been told them;
//   - what an EV2 or EV3 card signed: the Transaction MAC the card
//     computed over the ride (clearing/cardmac), verified with the card's
//     key from clearing's HSM (World.CardMACKeys). A card signs its rides
//     when the MAC of one of its rides in the window judged verifies.
//
// The card's purse balance and its passes are not known to clearing: a
// ride is judged as if the purse held enough and the card carried no
// pass.
//
// # Verdicts
//
// Only claims are judged: accepted taps that owe or name a benefit
// (Judged). The first of these that applies decides a ride's verdict:
//
//  1. A commit-unknown ride that the card's later evidence shows was not
//     committed is not owed.
//  2. A negative amount, or one above the tariff format's maximum
//     (MaxAmountKop), is held (amount-invalid): no tariff can owe it.
//  3. A commit-unknown ride that no evidence settles yet waits
//     (commit-unknown); once a later tap names it, it is judged as
//     committed and paid if it proves right.
//     A ride whose Transaction MAC does not verify, or does not agree with
//     the tap (card number, time, device, sequence, charge, product,
//     previous ride), or is of another UID than the card signs its other
//     rides with, is held (card-mac-invalid); so is an accepted ride, said
//     to be committed, of a card that signs its rides, that carries no MAC
//     (card-mac-missing): a device invented it or stripped the card's
//     signature. A commit-unknown ride carries none (the card's answer was
//     lost); the later tap the card signed proves it. Such an unsigned ride
//     is no evidence either: it names no previous ride, is no previous
//     ride for a transfer, and forks or contradicts nothing. A MAC that
//     clearing has no key for (no tmac-master, or not that version) waits
//     (card-mac-unchecked). An EV1 carries no MAC and is judged on the
//     rest.
//  4. A tariff version clearing does not keep waits (tariff-unknown)
//     until that version is added.
//  5. A fare or compensation above the most the tariff can owe is held
//     (over-tariff); a category the tariff does not define
//     (category-unknown), a carrier it does not price (carrier-unknown)
//     and a route the carrier does not run (route-not-run) are held.
//  6. A ride the card's later log contradicts is held
//     (contradicted-by-card): the card went from the ride before it to
//     the ride after it without it, or another ride that the card's log
//     continues from claims the same previous ride. Two rides claiming
//     one previous ride wait (evidence-fork) until the card's next tap
//     says which one it holds; evidence that disagrees with the ride it
//     names is held (evidence-mismatch); evidence naming a ride clearing
//     has not received yet, recent enough to matter for anti-passback or
//     a transfer, waits for it (evidence-pending).
//  7. Without registry records as recent as the ride, a ride whose
//     benefit the records do not show waits (registry-behind).
//  8. The ride is decided again with the facts above (fare.Decide). When
//     the result is the claimed benefit ride with the same fare, charge,
//     compensation and quota count, it is paid. Otherwise it is held: the
//     benefit was revoked (benefit-revoked), the registry says the card
//     did not hold the category that day (not-entitled), its quota was
//     used up (over-quota), or the amounts differ (differs).
//
// A verdict says what a person's release would pay (Verdict.Release):
// what the tariff owes for the claimed category on that ride.
//
// # What moves by itself and what does not
//
// While the statement a ride is booked into is open, its verdict follows
// the facts: a late ride of the card, a tariff or registry records
// arriving, or the card's next tap may turn a paid ride into a held one
// and back, as the draft statement follows ingest. Once that statement is
// closed, a paid or held ride stays as it is; only a waiting ride moves,
// when the fact it waits for arrives: paid then as an adjustment in the
// next open period, or held. A ride a person released or rejected never
// moves again (Next, Decide).
package rerate
