// Package publish hands validators what they need from the registry: the
// signed hotlist of blocked cards and the signed tariff, under the URL
// contract that validator/update polls:
//
//	GET {base}/hotlist?since=V   the delta from version V to the newest
//	                             (the full list when no delta from V is
//	                             kept); 304 when V is the newest
//	GET {base}/hotlist           the newest full list
//	GET {base}/tariff?since=V    the signed tariff directory as a zip;
//	                             304 when V is the version published
//
// The registry API mounts [Handler] at /v1/validator (registry/api,
// Options.Validator) behind device authentication: each request is
// signed with the asking validator's own batch key (validator/devauth),
// so the list of blocked cards goes only to the city's validators.
// Validators in turn trust a file only after checking its signature; the
// files hold card numbers and block reasons, no personal data. Over a
// network the API is served with TLS (transit registry serve
// --tls-cert), and validators name the city's CA in "updates_ca_file".
//
// # Hotlist versions
//
// A hotlist's version is the registry's card event sequence number
// (registry.Blocklist.Version) at which it was taken. It only grows, it
// survives the loss of anything this package stores, and clearing can
// compare a tap's hotlist version with the event that blocked a card.
// [Hotlists] publishes a new version when the list of blocked cards
// changed, or, so that validators can tell a quiet registry from a lost
// link, when the newest version is older than Options.Refresh and card
// events (of any kind) have happened since. A registry with no card event
// at all for days cannot publish a newer version, and validators then
// report their list as stale.
//
// A new registry, with no card event yet, publishes an empty list as
// version 1 ([FirstVersion]) as soon as it has its signing key, so that a
// validator starting beside it holds a signed, fresh list at once rather
// than none. That version is also true of the registry after its first
// card event, which always orders a card and blocks nothing.
//
// # Deltas
//
// Each publication after the first records a step in Options.Dir: the
// cards whose entry changed, with the entry before and after. A delta
// from any kept version to the newest is the composition of the steps in
// between, so deltas need neither full snapshots of old versions nor the
// card events. The directory also holds the newest full file, so a
// restart continues the chain. Losing the directory costs only deltas:
// validators then fetch one full list. Steps are kept for Options.KeepFor
// and at most Options.MaxSteps of them.
package publish
