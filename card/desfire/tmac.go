package desfire

import (
	"crypto/aes"
	"encoding/binary"
	"fmt"
)

// The Transaction MAC (DESFire EV2/EV3, DESFire Light; MF2DL(H)x0 data
// sheet section 10.3): the card MACs every committed transaction of an
// application that holds a TransactionMAC file, with a key only the card
// and the issuer's back office hold, so the back office can tell a ride a
// genuine card committed from one a device made up.
//
//	SesTMMACKey = CMAC(AppTransactionMACKey, 5A 00 01 00 80 || TMC+1 || UID)
//	TMV         = MACt(SesTMMACKey, TMI)
//
// TMC is the transaction MAC counter (4 bytes, least significant first),
// UID the card's real 7-byte UID and TMI the Transaction MAC Input the
// card accumulates over the data commands of the transaction (TMI's
// methods). CommitTransaction with option 01 answers the new TMC and the
// TMV; the TransactionMAC file holds them too (TMC || TMV).

// FileTransactionMAC is the file type of a TransactionMAC file.
const FileTransactionMAC FileType = 0x05

// TMACFileSize is the content of a TransactionMAC file: TMC || TMV.
const TMACFileSize = 12

// TMI is a Transaction MAC Input under construction: each data command
// appends its fields, zero-padded to whole 16-byte blocks, and its data,
// zero-padded too. A zero TMI is empty: an empty transaction is not MACed.
type TMI []byte

func (t TMI) add(parts ...[]byte) TMI {
	for _, p := range parts {
		t = append(t, p...)
		t = append(t, make([]byte, padTo(len(p), 16))...)
	}
	return t
}

func fields(ins, fileNo byte, a, b int) []byte {
	return put24(put24([]byte{ins, fileNo}, a), b)
}

// ReadData: Cmd || FileNo || Offset || Length || padding || Data || padding.
// Length is the number of bytes read, also when the command asked for 0.
func (t TMI) ReadData(fileNo byte, offset int, data []byte) TMI {
	return t.add(fields(InsReadData, fileNo, offset, len(data)), data)
}

// WriteData: as ReadData, with the data written.
func (t TMI) WriteData(fileNo byte, offset int, data []byte) TMI {
	return t.add(fields(InsWriteData, fileNo, offset, len(data)), data)
}

// Value is GetValue, Credit, Debit or LimitedCredit (ins): Cmd || FileNo
// || Value (4 bytes, least significant first) || padding.
func (t TMI) Value(ins, fileNo byte, value int32) TMI {
	return t.add(binary.LittleEndian.AppendUint32([]byte{ins, fileNo}, uint32(value)))
}

// ReadRecords: Cmd || FileNo || RecNo || RecCount || padding || Data ||
// padding, RecCount the number of records read. The data sheet needs no
// padding after records that are whole blocks; records of other sizes are
// padded here as every other TMI update is.
func (t TMI) ReadRecords(fileNo byte, recNo, count int, data []byte) TMI {
	return t.add(fields(InsReadRecords, fileNo, recNo, count), data)
}

// WriteRecord: Cmd || FileNo || Offset || Length || padding || Data ||
// padding.
func (t TMI) WriteRecord(fileNo byte, offset int, data []byte) TMI {
	return t.add(fields(InsWriteRecord, fileNo, offset, len(data)), data)
}

// ClearRecordFile: Cmd || FileNo || padding.
func (t TMI) ClearRecordFile(fileNo byte) TMI {
	return t.add([]byte{InsClearRecordFile, fileNo})
}

// TMACSessionKey derives SesTMMACKey for the transaction that makes the
// counter tmc (the value CommitTransaction reports) on the card uid.
func TMACSessionKey(tmKey []byte, tmc uint32, uid []byte) ([16]byte, error) {
	var out [16]byte
	if len(uid) != 7 {
		return out, fmt.Errorf("desfire: Transaction MAC: UID of %d bytes, want the real 7-byte UID", len(uid))
	}
	b, err := aes.NewCipher(tmKey)
	if err != nil {
		return out, fmt.Errorf("desfire: Transaction MAC key: %w", err)
	}
	sv := binary.LittleEndian.AppendUint32([]byte{0x5A, 0x00, 0x01, 0x00, 0x80}, tmc)
	sv = append(sv, uid...)
	copy(out[:], newBlockMAC(b).sumIV(make([]byte, 16), sv))
	return out, nil
}

// TransactionMAC computes the TMV of a transaction: tmKey is the card's
// AppTransactionMACKey, tmc the counter CommitTransaction reported.
func TransactionMAC(tmKey []byte, tmc uint32, uid []byte, tmi TMI) ([8]byte, error) {
	var out [8]byte
	if len(tmi) == 0 {
		return out, fmt.Errorf("desfire: Transaction MAC over an empty transaction")
	}
	sk, err := TMACSessionKey(tmKey, tmc, uid)
	if err != nil {
		return out, err
	}
	b, _ := aes.NewCipher(sk[:])
	copy(out[:], MACt(newBlockMAC(b).sumIV(make([]byte, 16), tmi)))
	return out, nil
}

// CommitTMAC commits the transaction (CommitTransaction with option 01)
// and returns the card's new Transaction MAC counter and value, in the
// same exchange: an application with a TransactionMAC file only.
func (c *Card) CommitTMAC() (tmc uint32, tmv [8]byte, err error) {
	b, err := c.plain(InsCommitTransaction, 0x01)
	if err != nil {
		return 0, tmv, err
	}
	if len(b) != TMACFileSize {
		return 0, tmv, fmt.Errorf("%w: CommitTransaction answered %d bytes, want TMC and TMV (12)", ErrMalformedResponse, len(b))
	}
	copy(tmv[:], b[4:])
	return binary.LittleEndian.Uint32(b), tmv, nil
}

// CreateTransactionMACFile creates the application's TransactionMAC file
// with the card's AppTransactionMACKey (AES) and its version; the key
// travels enciphered, so it needs an EV2 session with the application
// master key. Read gives TMC || TMV; ReadWrite would allow
// CommitReaderID, which this system does not use (AccessNever).
func (c *Card) CreateTransactionMACFile(fileNo byte, comm CommMode, r AccessRights, key []byte, version byte) error {
	if c.e == nil {
		return fmt.Errorf("desfire: CreateTransactionMACFile: %w (an EV2 session: AuthenticateEV2First)", ErrNotAuthenticated)
	}
	if len(key) != 16 {
		return fmt.Errorf("desfire: CreateTransactionMACFile: %w", errKeyLength)
	}
	header := append(fileHeader(fileNo, comm, r), byte(KeyAES>>6)) // TMKeyOption 02: AES
	_, err := c.call(InsCreateTransactionMACFile, header, append(append([]byte(nil), key...), version), CommEnciphered, commandMode, -1)
	return err
}
