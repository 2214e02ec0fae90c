// Package desfire speaks the MIFARE DESFire EV1 native command set, wrapped
// in ISO/IEC 7816-4 APDUs (90 INS 00 00 Lc data 00 → data 91 status), over
// any apdu.Transport: a PC/SC reader, the vpcd-backed virtual card or the
// in-process virtual card.
//
// After AuthenticateAES every command and response is bound into the EV1
// secure-messaging chain: a running 16-byte IV that each command and each
// response advances, by AES-CMAC for plain and MACed traffic and by
// AES-CBC for enciphered traffic. A response whose MAC or CRC does not
// verify ends the session with ErrResponseMAC or ErrResponseCRC; a card
// status other than success is a *StatusError that errors.Is matches
// against the exported sentinels (ErrBoundary, ErrPermissionDenied, ...).
//
// Three secure-messaging schemes, one per authentication:
//
//   - AuthenticateAES: EV1 AES secure messaging, as above.
//   - AuthenticateISO (0x1A) with a DES, 2K3DES or 3K3DES key: the same
//     chaining on 8-byte blocks ("ISO mode"), enough to open a factory
//     card (PICC master key: the 2K3DES zero key) and turn its master key
//     into an AES key with ChangeKeyType.
//   - AuthenticateEV2First / AuthenticateEV2NonFirst (DESFire EV2, EV3):
//     EV2 secure messaging, with a transaction identifier and a command
//     counter bound into every MAC (ev2.go).
//
// Every scheme is checked byte for byte against published examples
// (testdata/desfire/vectors.txt). The native legacy authentication (0x0A,
// DES "send mode" deciphering) is not implemented.
//
// Beside the native commands, a Card speaks ISO/IEC 7816-4 SELECT (iso.go):
// SelectByDFName, SelectByFileID and SelectEF find the PICC level, an
// application or a file by the ISO identifiers CreateISOApplication and
// the CreateISO...File commands give them, which GetDFNames and
// GetISOFileIDs list. Native commands send file IDs least significant
// byte first, SELECT most significant first. Terminals select with the
// native SelectApplication, whose answer is a DESFire status.
//
// A Card is one conversation with one card; it is not safe for concurrent
// use.
package desfire
