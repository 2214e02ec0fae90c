// Package registry is the city's register of residents, their benefit
// entitlements and their cards: the only part of the platform that holds
// personal data.
//
// This package is the pure core: the domain types, their validation, the
// card lifecycle ([CanTransition] and its table), the role permission
// table ([Allowed]) and the rules of a benefit-register import
// ([DiffEntitlement]). Beside the table, [PermitTransition] lets a
// resident block their own lost or stolen card ([OwnBlockReasons]),
// which stops it on validators with the next hotlist like a desk's
// block. It does no I/O. Durable state lives behind
// registry/store; the HTTP API is registry/api.
//
// # Privacy
//
// Validators, clearing and the hotlist never see a name or a registry
// number. What leaves the registry for them is a [CardEvent] or a
// [BlockedCard]: a card number, a status, benefit category codes, dates
// and funding. Every read of personal data goes through a store method
// that takes an [Access] (who, in which role, and the stated purpose) and
// writes an [AuditEntry] in the same transaction; the audit log is
// append-only in code (no method changes or removes an entry) and in the
// database (triggers refuse UPDATE and DELETE).
package registry
