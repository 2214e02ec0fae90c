// Package vcard is a DESFire EV1-compatible virtual card: APDU in, APDU
// out, state in memory, persistence separate (MarshalBinary /
// UnmarshalBinary). It speaks the same native command set and the same
// EV1 AES secure messaging as a real card, so card/desfire, the vpcd
// bridge and the validator run against it unchanged.
//
// Behaviour follows the EV1 datasheet where it is public; deviations:
//
//   - Keys are AES-128 only. A fresh card's PICC master key is the AES
//     zero key (version 0), where a factory card ships with a 2K3DES
//     zero key; legacy DES/3DES authentication (0x0A, 0x1A) answers with
//     an authentication error, and CreateApplication without the AES flag
//     with a parameter error.
//   - Record files are cyclic only (no linear record files).
//   - Any status other than success ends the authenticated session and
//     discards the uncommitted transaction, on the card as in card/desfire;
//     CommitTransaction and AbortTransaction with nothing pending succeed.
//   - Memory is accounted coarsely (32-byte blocks) against 7,936 bytes.
//
// Backup data, value and record files change only at CommitTransaction;
// AbortTransaction, Reset (the card leaving the field), selecting an
// application, authenticating and any error discard pending changes.
//
// A Card is safe for concurrent use: a vpcd bridge goroutine may call
// Respond and Reset while a test inspects the card.
package vcard
