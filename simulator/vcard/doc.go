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
//   - Record files are cyclic only (no linear record files,
//     CreateLinearRecordFile answers an illegal-command error).
//   - ISO/IEC 7816-4: SELECT by DF name selects the PICC level
//     (D2760000850100, 9000); applications have no DF names or ISO file
//     IDs (CreateApplication takes none), so SELECT of another name answers
//     6A82 and every other ISO command 6D00.
//   - Not emulated, answered as a real card answers an unknown command
//     (91 1C): SetConfiguration (so no random UID: the PC/SC UID
//     pseudo-APDU always gives the real 7-byte UID), GetDFNames,
//     GetISOFileIDs, CreateLinearRecordFile, CommitReaderID, and the
//     native legacy DES authentication (0A answers 91 AE).
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
