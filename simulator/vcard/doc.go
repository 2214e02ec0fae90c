// Package vcard is a DESFire EV1-compatible virtual card: APDU in, APDU
// out, state in memory, persistence separate (MarshalBinary /
// UnmarshalBinary). It speaks the same native command set and the same
// EV1 AES secure messaging as a real card, so card/desfire, the vpcd
// bridge and the validator run against it unchanged.
//
// Behaviour follows the EV1 datasheet where it is public; deviations:
//
//   - A new card is as a real one leaves the factory: PICC master key the
//     2K3DES zero key, key settings 0F 01. The PICC key may be DES/2K3DES,
//     3K3DES or AES (ISO authentication 0x1A, AES 0xAA; ChangeKey's key
//     type bits change it); application keys are AES only
//     (CreateApplication without the AES flag answers a parameter error).
//     The native legacy DES authentication (0x0A) answers with an
//     authentication error.
//   - WithGeneration makes it an EV1, EV2 or EV3 (GetVersion). EV2 and EV3
//     speak EV2 secure messaging (AuthenticateEV2First/NonFirst, CmdCtr,
//     TI, truncated MACs; frames of up to 128 bytes in a session) and
//     every command keeps the EV1 form too. PDcap2 and PCDcap2 are zero.
//   - On an EV2 or EV3 an application may hold a TransactionMAC file
//     (CreateTransactionMACFile, EV2 session with the master key): every
//     committed transaction with data commands is MACed (the TMI of the
//     MF2DL(H)x0 data sheet; record data that is not whole blocks is
//     zero-padded), CommitTransaction 01 answers TMC and TMV, ReadData of
//     the file gives them. CommitReaderID and the TMC limit setting are not
//     emulated.
//   - Record files are cyclic or linear (CreateLinearRecordFile): a full
//     linear file refuses WriteRecord with a boundary error until
//     ClearRecordFile is committed.
//   - ISO/IEC 7816-4: an application may have an ISO file ID and a DF name
//     (CreateApplication with the ISO flag 20 in its second key settings
//     byte), and its standard, backup and record files ISO file IDs
//     (least significant byte first after the file number; value and
//     TransactionMAC files take none). In an application created without
//     ISO file IDs a file ID answers a length error; in one created with
//     them a file may still be created without (the data sheet leaves
//     this open in what is public). GetDFNames (one application per
//     frame) and GetISOFileIDs list them. SELECT (00 A4) takes P1 04 (DF
//     name: D2760000850100 for the PICC level, or an application's), 00
//     (file ID: 3F00 for the PICC level, an application's, or a file of
//     the selected application) and 02 (a file of the selected
//     application), P2 00 or 0C, and answers 9000 with no FCI (an EV1 has
//     none; the optional FCI file of an EV2 is not emulated), 6A82 for an
//     unknown name or ID, 6A86 for another P1 or P2. Any SELECT ends the
//     session and the transaction, as NXP's reader library assumes; a
//     failed one leaves the selection as it was (ISO/IEC 7816-4). Selecting
//     a file changes nothing native commands see. The ISO data and
//     authentication commands (READ BINARY, UPDATE BINARY, READ RECORD,
//     APPEND RECORD, GET CHALLENGE, EXTERNAL and INTERNAL AUTHENTICATE)
//     are not emulated and answer 6D00, as does every other ISO
//     instruction.
//   - Not emulated, answered as a real card answers an unknown command
//     (91 1C): SetConfiguration (so no random UID: the PC/SC UID
//     pseudo-APDU always gives the real 7-byte UID; no ATS or default key
//     setting either), CommitReaderID, and the other EV2/EV3 commands
//     beyond EV2 secure messaging and the Transaction MAC (among them
//     GetFileCounters, ReadSig, delegated applications, key sets and the
//     proximity check). The native legacy DES authentication (0A) answers
//     91 AE.
//   - A value file's free GetValue option (bit 1 of CreateValueFile's
//     last byte) answers a parameter error; ChangeFileSettings needs a
//     session (a file whose Change right is free, E, cannot be changed in
//     plain).
//   - Only ISO-wrapped native commands (90 INS 00 00 Lc data 00) are
//     taken: a native frame sent bare answers 6E00 (6700 when shorter
//     than an APDU header).
//   - GetVersion gives a fixed batch number and production week, and the
//     ATR is the one PC/SC builds for an ISO 14443-4 type A card with no
//     historical bytes.
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
