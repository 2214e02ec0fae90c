package desfire

import (
	"encoding/binary"
	"fmt"
)

// AID is an application identifier in wire order (least significant byte
// first), e.g. card.AIDTransport.Bytes(). The zero AID is the PICC level.
type AID [3]byte

// String returns the AID as six hex digits, most significant first.
func (a AID) String() string { return fmt.Sprintf("%02X%02X%02X", a[2], a[1], a[0]) }

// CommMode is how a file's data travels in an authenticated session.
type CommMode byte

// Communication modes, with their DESFire codes.
const (
	CommPlain      CommMode = 0x00
	CommMAC        CommMode = 0x01
	CommEnciphered CommMode = 0x03
)

func (m CommMode) String() string {
	switch m {
	case CommPlain:
		return "plain"
	case CommMAC:
		return "MAC"
	case CommEnciphered:
		return "enciphered"
	}
	return fmt.Sprintf("CommMode(0x%02X)", byte(m))
}

// Valid reports whether m is one of the three DESFire modes.
func (m CommMode) Valid() bool { return m == CommPlain || m == CommMAC || m == CommEnciphered }

// Access nibble values besides key numbers 0..13.
const (
	AccessFree  byte = 0xE // no authentication needed
	AccessNever byte = 0xF // denied to everyone
)

// AccessRights are a file's four access nibbles: each a key number 0..13,
// AccessFree or AccessNever.
type AccessRights struct {
	Read, Write, ReadWrite, Change byte
}

// Bytes encodes the rights as DESFire sends them: RW<<4|Change, then
// Read<<4|Write.
func (r AccessRights) Bytes() [2]byte {
	return [2]byte{r.ReadWrite<<4 | r.Change&0xF, r.Read<<4 | r.Write&0xF}
}

// ParseAccessRights decodes the two wire bytes of Bytes.
func ParseAccessRights(b [2]byte) AccessRights {
	return AccessRights{Read: b[1] >> 4, Write: b[1] & 0xF, ReadWrite: b[0] >> 4, Change: b[0] & 0xF}
}

// KeySettings is the key settings byte of an application (or the PICC).
type KeySettings byte

// Key settings bits.
const (
	// AllowChangeMasterKey lets the master key be changed.
	AllowChangeMasterKey KeySettings = 0x01
	// FreeDirectoryList allows GetFileIDs, GetFileSettings,
	// GetKeySettings (GetApplicationIDs at PICC level) without the master
	// key.
	FreeDirectoryList KeySettings = 0x02
	// FreeCreateDelete allows creating and deleting files (applications
	// at PICC level) without the master key.
	FreeCreateDelete KeySettings = 0x04
	// ConfigurationChangeable allows ChangeKeySettings.
	ConfigurationChangeable KeySettings = 0x08
)

// ChangeKeyAccess is the high nibble: 0 the master key changes keys,
// 1..13 that key does, 0xE each key changes itself, 0xF keys are frozen.
func (s KeySettings) ChangeKeyAccess() byte { return byte(s) >> 4 }

// WithChangeKeyAccess returns s with the change-key nibble set to k.
func (s KeySettings) WithChangeKeyAccess(k byte) KeySettings {
	return KeySettings(k<<4) | s&0x0F
}

// FileType is a DESFire file type.
type FileType byte

// File types.
const (
	FileStdData      FileType = 0x00
	FileBackupData   FileType = 0x01
	FileValue        FileType = 0x02
	FileLinearRecord FileType = 0x03
	FileCyclicRecord FileType = 0x04
)

func (t FileType) String() string {
	switch t {
	case FileStdData:
		return "standard data"
	case FileBackupData:
		return "backup data"
	case FileValue:
		return "value"
	case FileLinearRecord:
		return "linear record"
	case FileCyclicRecord:
		return "cyclic record"
	case FileTransactionMAC:
		return "transaction MAC"
	}
	return fmt.Sprintf("FileType(0x%02X)", byte(t))
}

// ValueLimits configure a value file.
type ValueLimits struct {
	Lower, Upper int32
	// Value is the initial value at creation; in GetFileSettings it is
	// the limited credit value.
	Value         int32
	LimitedCredit bool
}

// FileSettings is the answer to GetFileSettings.
type FileSettings struct {
	Type   FileType
	Comm   CommMode
	Rights AccessRights
	// Size of a data file.
	Size int
	// Limits of a value file (Value is the current limited credit value).
	Limits ValueLimits
	// Record geometry of a record file.
	RecordSize, MaxRecords, Records int
}

// ParseFileSettings decodes a GetFileSettings response.
func ParseFileSettings(b []byte) (FileSettings, error) {
	if len(b) < 4 {
		return FileSettings{}, fmt.Errorf("%w: file settings of %d bytes", ErrMalformedResponse, len(b))
	}
	fs := FileSettings{Type: FileType(b[0]), Comm: CommMode(b[1] & 3), Rights: ParseAccessRights([2]byte{b[2], b[3]})}
	rest := b[4:]
	want := map[FileType]int{FileStdData: 3, FileBackupData: 3, FileValue: 13, FileLinearRecord: 9, FileCyclicRecord: 9, FileTransactionMAC: 2}[fs.Type]
	if want == 0 || len(rest) != want {
		return FileSettings{}, fmt.Errorf("%w: file settings for type %s: %d bytes after header", ErrMalformedResponse, fs.Type, len(rest))
	}
	switch fs.Type {
	case FileStdData, FileBackupData:
		fs.Size = get24(rest)
	case FileTransactionMAC:
		fs.Size = TMACFileSize
	case FileValue:
		fs.Limits = ValueLimits{
			Lower:         int32(binary.LittleEndian.Uint32(rest)),
			Upper:         int32(binary.LittleEndian.Uint32(rest[4:])),
			Value:         int32(binary.LittleEndian.Uint32(rest[8:])),
			LimitedCredit: rest[12]&1 != 0,
		}
	default:
		fs.RecordSize, fs.MaxRecords, fs.Records = get24(rest), get24(rest[3:]), get24(rest[6:])
	}
	return fs, nil
}

// Version is the answer to GetVersion.
type Version struct {
	// Hardware and Software are the first two frames: vendor, type,
	// subtype, major, minor, storage size, protocol.
	Hardware, Software [7]byte
	// UID is the 7-byte UID; zeros when the card hides it (random ID).
	UID                            [7]byte
	BatchNo                        [5]byte
	ProductionWeek, ProductionYear byte
}

// ParseVersion decodes the 28 bytes of GetVersion's three frames.
func ParseVersion(b []byte) (Version, error) {
	if len(b) != 28 {
		return Version{}, fmt.Errorf("%w: version of %d bytes, want 28", ErrMalformedResponse, len(b))
	}
	var v Version
	copy(v.Hardware[:], b)
	copy(v.Software[:], b[7:])
	copy(v.UID[:], b[14:])
	copy(v.BatchNo[:], b[21:])
	v.ProductionWeek, v.ProductionYear = b[26], b[27]
	return v, nil
}

func put24(b []byte, v int) []byte { return append(b, byte(v), byte(v>>8), byte(v>>16)) }
func get24(b []byte) int           { return int(b[0]) | int(b[1])<<8 | int(b[2])<<16 }
