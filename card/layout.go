package card

import (
	"bytes"
	"errors"
	"fmt"
)

// AID is a DESFire application identifier (24 bits).
type AID uint32

// Application identifiers of the city card. The 0xF prefix marks them as
// outside the MIFARE Application Directory, as NXP recommends for closed
// systems.
const (
	AIDIdentification AID = 0xF4C101
	AIDHolder         AID = 0xF4C102
	AIDTransport      AID = 0xF4C103
)

// Bytes returns the AID in DESFire wire order (least significant byte
// first), as SelectApplication and CreateApplication send it.
func (a AID) Bytes() [3]byte { return [3]byte{byte(a), byte(a >> 8), byte(a >> 16)} }

// String returns the AID as six hex digits, most significant first.
func (a AID) String() string { return fmt.Sprintf("%06X", uint32(a)) }

// Role is who holds a key.
type Role uint8

// Roles. Each role has its own key per application, diversified per card.
const (
	RoleIssuer    Role = iota + 1 // application master key: personalisation, key changes
	RoleValidator                 // on-board validator: read contract, debit, count, log
	RoleTopUp                     // top-up point: credit purse, sell passes
	RoleDesk                      // issuance desk: holder data, entitlements, status
	RoleInspector                 // ticket inspector: read-only
)

// String returns the role's name.
func (r Role) String() string {
	switch r {
	case RoleIssuer:
		return "issuer"
	case RoleValidator:
		return "validator"
	case RoleTopUp:
		return "top-up"
	case RoleDesk:
		return "desk"
	case RoleInspector:
		return "inspector"
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// Access is one nibble of a file's access rights: a key number 0..13, or
// Free or Never.
type Access uint8

// Special access nibbles.
const (
	Free  Access = 0xE // no authentication needed
	Never Access = 0xF // denied to everyone
)

// AccessRights are a file's four access nibbles.
type AccessRights struct {
	Read      Access // ReadData, ReadRecords, GetValue, Debit
	Write     Access // WriteData, WriteRecord, GetValue, Debit, LimitedCredit
	ReadWrite Access // all of the above, plus Credit and ClearRecordFile
	Change    Access // ChangeFileSettings
}

// Bytes returns the rights as DESFire sends them: two bytes, least
// significant first (RW<<4|Change, Read<<4|Write).
func (r AccessRights) Bytes() [2]byte {
	return [2]byte{byte(r.ReadWrite)<<4 | byte(r.Change)&0xF, byte(r.Read)<<4 | byte(r.Write)&0xF}
}

// ParseAccessRights decodes the two wire bytes of Bytes.
func ParseAccessRights(b [2]byte) AccessRights {
	return AccessRights{Read: Access(b[1] >> 4), Write: Access(b[1] & 0xF), ReadWrite: Access(b[0] >> 4), Change: Access(b[0] & 0xF)}
}

func grants(a Access, key uint8) bool { return a == Free || (a < Free && uint8(a) == key) }

// CanRead reports whether a session authenticated with key may read data,
// records or a value.
func (r AccessRights) CanRead(key uint8) bool {
	return grants(r.Read, key) || grants(r.ReadWrite, key)
}

// CanWrite reports whether key may write data or records.
func (r AccessRights) CanWrite(key uint8) bool {
	return grants(r.Write, key) || grants(r.ReadWrite, key)
}

// CanGetValue reports whether key may read a value file: any of read, write
// or read&write.
func (r AccessRights) CanGetValue(key uint8) bool {
	return grants(r.Read, key) || grants(r.Write, key) || grants(r.ReadWrite, key)
}

// CanDebit reports whether key may debit a value file (same rule as
// GetValue: DESFire lets any granted key spend).
func (r AccessRights) CanDebit(key uint8) bool { return r.CanGetValue(key) }

// CanLimitedCredit reports whether key may make a limited credit.
func (r AccessRights) CanLimitedCredit(key uint8) bool {
	return grants(r.Write, key) || grants(r.ReadWrite, key)
}

// CanCredit reports whether key may credit a value file or clear a record
// file.
func (r AccessRights) CanCredit(key uint8) bool { return grants(r.ReadWrite, key) }

// CommMode is how a file's data travels once a session is authenticated.
type CommMode uint8

// Communication modes, with their DESFire codes.
const (
	CommPlain      CommMode = 0x00
	CommMAC        CommMode = 0x01
	CommEnciphered CommMode = 0x03
)

// String returns the mode's name.
func (m CommMode) String() string {
	switch m {
	case CommPlain:
		return "plain"
	case CommMAC:
		return "MAC"
	case CommEnciphered:
		return "enciphered"
	}
	return fmt.Sprintf("comm(%d)", uint8(m))
}

// FileType is a DESFire file type, with the code GetFileSettings reports.
type FileType uint8

// File types.
const (
	StdData      FileType = 0x00
	BackupData   FileType = 0x01
	Value        FileType = 0x02
	LinearRecord FileType = 0x03
	CyclicRecord FileType = 0x04
)

// String returns the type's name.
func (t FileType) String() string {
	switch t {
	case StdData:
		return "std"
	case BackupData:
		return "backup"
	case Value:
		return "value"
	case LinearRecord:
		return "linear-record"
	case CyclicRecord:
		return "cyclic-record"
	}
	return fmt.Sprintf("filetype(%d)", uint8(t))
}

// File describes one file of an application.
type File struct {
	No     uint8
	Name   string
	Type   FileType
	Comm   CommMode
	Rights AccessRights

	// Size is the byte size of a std or backup file.
	Size int
	// Lower, Upper and Initial are a value file's limits and starting
	// value; LimitedCredit enables the LimitedCredit command.
	Lower, Upper, Initial Money
	LimitedCredit         bool
	// RecordSize and Records are a record file's record size and record
	// count as given to CreateCyclicRecordFile. A cyclic file keeps one
	// record spare for the write in progress, so it holds Records-1.
	RecordSize, Records int
	// ISOFileID is the file's ISO/IEC 7816-4 file ID (an EF), 0 for none;
	// only files of an application with an ISO file ID have one, and a
	// value file never (DESFire gives it none).
	ISOFileID uint16
}

// Key is one key slot of an application and the role that holds it.
type Key struct {
	No   uint8
	Role Role
}

// Application describes one DESFire application.
type Application struct {
	Name string
	AID  AID
	// KeySettings is the key settings byte of CreateApplication (see
	// the KeySetting... bits).
	KeySettings byte
	Keys        []Key // all AES-128; Keys[i].No == i
	Files       []File
	// ISOFileID and DFName are the application's ISO/IEC 7816-4
	// identifiers (a DF): ISO SELECT finds it by either. ISOFileID 0 means
	// none, and then no DF name; a DF name is 1..16 bytes.
	ISOFileID uint16
	DFName    []byte
}

// Key settings bits of an application (DESFire EV1). The high nibble says
// which key may change other keys: 0 = the master key.
const (
	KeySettingMasterChangeable  = 0x01 // the master key can be changed
	KeySettingFreeDirectoryList = 0x02 // GetFileIDs/GetFileSettings without auth
	KeySettingFreeCreateDelete  = 0x04 // create/delete files without auth
	KeySettingConfigChangeable  = 0x08 // key settings can be changed
)

// KeyFor returns the key number that role holds in the application.
func (a *Application) KeyFor(r Role) (uint8, bool) {
	for _, k := range a.Keys {
		if k.Role == r {
			return k.No, true
		}
	}
	return 0, false
}

// File returns the file with number no.
func (a *Application) File(no uint8) (*File, bool) {
	for i := range a.Files {
		if a.Files[i].No == no {
			return &a.Files[i], true
		}
	}
	return nil, false
}

// Layout is the whole card: its applications in creation order.
type Layout struct {
	Apps []Application
}

// App returns the application with the given AID.
func (l *Layout) App(aid AID) (*Application, bool) {
	for i := range l.Apps {
		if l.Apps[i].AID == aid {
			return &l.Apps[i], true
		}
	}
	return nil, false
}

// File numbers of the identification application.
const FileIdentity uint8 = 0x01

// File numbers of the holder application.
const FileHolder uint8 = 0x01

// File numbers of the transport application.
const (
	FileContract uint8 = 0x01
	FilePurse    uint8 = 0x02
	// File 3 held the monthly ride counts in layout 1; they are in the tap
	// log's records now (TapRecord.Counts), and the number stays unused.
	FileTapLog uint8 = 0x04
	// FileTMAC is the TransactionMAC file that personalisation adds on
	// DESFire EV2 and EV3 cards (LAYOUT.md, "Transaction MAC"): TMC || TMV
	// of the last committed transaction, readable with the validator key.
	FileTMAC uint8 = 0x05
)

// Key numbers. Every application uses key 0 for the issuer; the transport
// application gives each role its own key.
const (
	KeyIssuer    uint8 = 0
	KeyValidator uint8 = 1
	KeyTopUp     uint8 = 2
	KeyDesk      uint8 = 3
	KeyInspector uint8 = 4

	// KeyHolderDesk is the desk's key in the holder application.
	KeyHolderDesk uint8 = 1
)

// ISO/IEC 7816-4 identifiers of the city card's applications (DFs) and
// files (EFs), LAYOUT.md "ISO identifiers". The DF names are proprietary
// (ISO/IEC 7816-5 category F: no registered provider): F0, "TRANSIT",
// then the application's last AID byte. An EF's file ID is 01 and its
// file number; a DF's is C1 and the last AID byte, as in the AIDs.
const (
	ISOFileIDIdentification uint16 = 0xC101
	ISOFileIDHolder         uint16 = 0xC102
	ISOFileIDTransport      uint16 = 0xC103
)

// DFName returns the DF name of the city card application aid: F0
// "TRANSIT" and the AID's low byte.
func DFName(aid AID) []byte { return append([]byte("\xF0TRANSIT"), byte(aid)) }

// efID is the ISO file ID of file no: 01 and the file number.
func efID(no uint8) uint16 { return 0x0100 | uint16(no) }

// isoReserved are file IDs ISO/IEC 7816-4 reserves: the MF, the current
// DF, and FFFF.
func isoReserved(id uint16) bool { return id == 0x3F00 || id == 0x3FFF || id == 0xFFFF }

// PurseUpper is the purse's upper limit: 5,000.00 UAH.
const PurseUpper Money = 500_000

// TapLogEntries is how many taps the cyclic log keeps.
const TapLogEntries = 10

// appSettings: only the master key changes keys or files; settings and the
// master key itself stay changeable so the issuer can rotate keys.
const appSettings = KeySettingMasterChangeable | KeySettingConfigChangeable

// CityCard returns the city card layout. Each call returns a fresh value
// that the caller may modify.
func CityCard() Layout {
	return Layout{Apps: []Application{
		{
			Name: "identification", AID: AIDIdentification, KeySettings: appSettings,
			ISOFileID: ISOFileIDIdentification, DFName: DFName(AIDIdentification),
			Keys: []Key{{KeyIssuer, RoleIssuer}},
			Files: []File{{
				No: FileIdentity, Name: "identity", Type: StdData, Comm: CommPlain, Size: IdentitySize, ISOFileID: efID(FileIdentity),
				// The number is printed on the card anyway; anyone may read it.
				Rights: AccessRights{Read: Free, Write: Access(KeyIssuer), ReadWrite: Never, Change: Access(KeyIssuer)},
			}},
		},
		{
			Name: "holder", AID: AIDHolder, KeySettings: appSettings,
			ISOFileID: ISOFileIDHolder, DFName: DFName(AIDHolder),
			Keys: []Key{{KeyIssuer, RoleIssuer}, {KeyHolderDesk, RoleDesk}},
			Files: []File{{
				No: FileHolder, Name: "holder", Type: StdData, Comm: CommEnciphered, Size: HolderSize, ISOFileID: efID(FileHolder),
				Rights: AccessRights{Read: Never, Write: Never, ReadWrite: Access(KeyHolderDesk), Change: Access(KeyIssuer)},
			}},
		},
		{
			Name: "transport", AID: AIDTransport, KeySettings: appSettings,
			ISOFileID: ISOFileIDTransport, DFName: DFName(AIDTransport),
			Keys: []Key{{KeyIssuer, RoleIssuer}, {KeyValidator, RoleValidator}, {KeyTopUp, RoleTopUp}, {KeyDesk, RoleDesk}, {KeyInspector, RoleInspector}},
			Files: []File{
				{
					No: FileContract, Name: "contract", Type: StdData, Comm: CommEnciphered, Size: ContractSize, ISOFileID: efID(FileContract),
					// Top-up writes the pass slots (WriteData at PassOffset)
					// without needing to read; the desk reads and writes all.
					Rights: AccessRights{Read: Access(KeyValidator), Write: Access(KeyTopUp), ReadWrite: Access(KeyDesk), Change: Access(KeyIssuer)},
				},
				{
					No: FilePurse, Name: "purse", Type: Value, Comm: CommMAC,
					Lower: 0, Upper: PurseUpper, Initial: 0, LimitedCredit: false,
					// Read grants GetValue and Debit, never Credit; W is
					// Never because it would grant LimitedCredit.
					Rights: AccessRights{Read: Access(KeyValidator), Write: Never, ReadWrite: Access(KeyTopUp), Change: Access(KeyIssuer)},
				},
				{
					No: FileTapLog, Name: "taplog", Type: CyclicRecord, Comm: CommEnciphered,
					RecordSize: TapRecordSize, Records: TapLogEntries + 1, ISOFileID: efID(FileTapLog),
					// The validator reads the newest record (anti-passback
					// across a vehicle's doors, transfers, the monthly ride
					// counts) and writes one per ride; RW also lets it clear
					// the log, a risk accepted in LAYOUT.md. Disputes use
					// clearing's records, not the card.
					Rights: AccessRights{Read: Access(KeyInspector), Write: Never, ReadWrite: Access(KeyValidator), Change: Access(KeyIssuer)},
				},
			},
		},
	}}
}

// MaxFrame is the most data a DESFire EV1 sends or takes in one frame;
// more needs additional-frame (0xAF) exchanges, each one more APDU.
const MaxFrame = 59

// WireSize is how many bytes n bytes of file data take on the wire in
// mode: a MAC adds 8 bytes; enciphering appends a CRC32 and pads to the
// AES block.
func WireSize(n int, mode CommMode) int {
	switch mode {
	case CommMAC:
		return n + 8
	case CommEnciphered:
		return (n + 4 + 15) / 16 * 16
	}
	return n
}

// Validate checks the layout's internal consistency: unique AIDs and file
// numbers, dense key numbers 0..13, access nibbles that name existing keys,
// and sizes and limits a card would accept.
func (l *Layout) Validate() error {
	var errs []error
	aids := map[AID]bool{}
	for ai := range l.Apps {
		a := &l.Apps[ai]
		if a.AID == 0 || a.AID > 0xFFFFFF {
			errs = append(errs, fmt.Errorf("application %q: AID %06X: 0 is the PICC and AIDs have 24 bits", a.Name, uint32(a.AID)))
		}
		if aids[a.AID] {
			errs = append(errs, fmt.Errorf("application %q: AID %s used twice", a.Name, a.AID))
		}
		aids[a.AID] = true
		errs = append(errs, l.validateISO(ai)...)
		if len(a.Keys) == 0 || len(a.Keys) > 14 {
			errs = append(errs, fmt.Errorf("application %q: %d keys, want 1..14", a.Name, len(a.Keys)))
		}
		for i, k := range a.Keys {
			if int(k.No) != i {
				errs = append(errs, fmt.Errorf("application %q: key slot %d has number %d; numbers must be 0..n-1", a.Name, i, k.No))
			}
		}
		files := map[uint8]bool{}
		for _, f := range a.Files {
			where := fmt.Sprintf("application %q file %d (%s)", a.Name, f.No, f.Name)
			if f.No > 31 || files[f.No] {
				errs = append(errs, fmt.Errorf("%s: file number out of range 0..31 or used twice", where))
			}
			files[f.No] = true
			for _, n := range []Access{f.Rights.Read, f.Rights.Write, f.Rights.ReadWrite, f.Rights.Change} {
				if n < Free && int(n) >= len(a.Keys) {
					errs = append(errs, fmt.Errorf("%s: access right names key %d, application has %d keys", where, n, len(a.Keys)))
				}
				if n > Never {
					errs = append(errs, fmt.Errorf("%s: access nibble %#x", where, uint8(n)))
				}
			}
			if f.Comm != CommPlain && f.Comm != CommMAC && f.Comm != CommEnciphered {
				errs = append(errs, fmt.Errorf("%s: comm mode %d", where, f.Comm))
			}
			switch f.Type {
			case StdData, BackupData:
				if f.Size <= 0 || f.Size > 0xFFFFFF {
					errs = append(errs, fmt.Errorf("%s: size %d", where, f.Size))
				}
			case Value:
				if f.Lower > f.Upper || f.Initial < f.Lower || f.Initial > f.Upper {
					errs = append(errs, fmt.Errorf("%s: limits %d..%d with initial %d", where, f.Lower, f.Upper, f.Initial))
				}
			case LinearRecord, CyclicRecord:
				if f.RecordSize <= 0 || f.Records < 2 {
					errs = append(errs, fmt.Errorf("%s: %d records of %d bytes", where, f.Records, f.RecordSize))
				}
			default:
				errs = append(errs, fmt.Errorf("%s: file type %d", where, f.Type))
			}
		}
	}
	return errors.Join(errs...)
}

// validateISO checks application ai's ISO identifiers as a DESFire would
// at CreateApplication and file creation.
func (l *Layout) validateISO(ai int) []error {
	a := &l.Apps[ai]
	var errs []error
	switch {
	case a.ISOFileID == 0 && len(a.DFName) > 0:
		errs = append(errs, fmt.Errorf("application %q: a DF name needs an ISO file ID", a.Name))
	case a.ISOFileID != 0 && isoReserved(a.ISOFileID):
		errs = append(errs, fmt.Errorf("application %q: ISO file ID %04X is reserved by ISO/IEC 7816-4", a.Name, a.ISOFileID))
	case len(a.DFName) > 16:
		errs = append(errs, fmt.Errorf("application %q: DF name of %d bytes, at most 16", a.Name, len(a.DFName)))
	}
	for _, b := range l.Apps[:ai] {
		if a.ISOFileID != 0 && b.ISOFileID == a.ISOFileID {
			errs = append(errs, fmt.Errorf("application %q: ISO file ID %04X used by %q too", a.Name, a.ISOFileID, b.Name))
		}
		if len(a.DFName) > 0 && bytes.Equal(a.DFName, b.DFName) {
			errs = append(errs, fmt.Errorf("application %q: DF name %X used by %q too", a.Name, a.DFName, b.Name))
		}
	}
	ids := map[uint16]bool{}
	for _, f := range a.Files {
		if f.ISOFileID == 0 {
			continue
		}
		where := fmt.Sprintf("application %q file %d (%s)", a.Name, f.No, f.Name)
		switch {
		case a.ISOFileID == 0:
			errs = append(errs, fmt.Errorf("%s: an ISO file ID in an application without one", where))
		case f.Type == Value:
			errs = append(errs, fmt.Errorf("%s: a value file takes no ISO file ID", where))
		case isoReserved(f.ISOFileID) || f.ISOFileID == a.ISOFileID || ids[f.ISOFileID]:
			errs = append(errs, fmt.Errorf("%s: ISO file ID %04X is reserved, the application's, or used twice", where, f.ISOFileID))
		}
		ids[f.ISOFileID] = true
	}
	return errs
}
