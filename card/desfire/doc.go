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
// Only AES-128 keys are supported; legacy DES/3DES authentication is not.
//
// A Card is one conversation with one card; it is not safe for concurrent
// use.
package desfire
