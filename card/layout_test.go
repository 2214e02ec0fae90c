package card

import (
	"fmt"
	"strings"
	"testing"
)

func TestCityCardValid(t *testing.T) {
	l := CityCard()
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if len(l.Apps) != 3 {
		t.Fatalf("%d applications", len(l.Apps))
	}
}

// ops a role may perform on a file; the matrix below is the job each role
// has and nothing more.
type ops struct{ read, write, getValue, debit, credit, limitedCredit bool }

func TestTransportRoleMatrix(t *testing.T) {
	l := CityCard()
	app, ok := l.App(AIDTransport)
	if !ok {
		t.Fatal("no transport application")
	}
	want := map[Role]map[uint8]ops{
		RoleIssuer: {}, // the master key changes keys and settings, it reads and writes no data
		RoleValidator: {
			FileContract: {read: true},
			FilePurse:    {getValue: true, debit: true},
			FileTapLog:   {read: true, write: true, credit: true}, // credit here means ClearRecordFile
		},
		RoleTopUp: {
			FileContract: {write: true},                               // pass slots
			FilePurse:    {getValue: true, debit: true, credit: true}, // limited credit is disabled on the file
		},
		RoleDesk: {
			FileContract: {read: true, write: true},
		},
		RoleInspector: {
			FileTapLog: {read: true},
		},
	}
	for role, files := range want {
		key, ok := app.KeyFor(role)
		if !ok {
			t.Fatalf("no key for %s", role)
		}
		for _, f := range app.Files {
			r := f.Rights
			got := ops{read: r.CanRead(key), write: r.CanWrite(key)}
			if f.Type == Value {
				got = ops{getValue: r.CanGetValue(key), debit: r.CanDebit(key), credit: r.CanCredit(key), limitedCredit: r.CanLimitedCredit(key) && f.LimitedCredit}
			} else if f.Type == CyclicRecord || f.Type == LinearRecord {
				got.credit = r.CanCredit(key)
			}
			if got != files[f.No] {
				t.Errorf("%s on %s: can %+v, want %+v", role, f.Name, got, files[f.No])
			}
		}
	}
	purse, _ := app.File(FilePurse)
	if purse.LimitedCredit || purse.Lower != 0 || purse.Upper != PurseUpper {
		t.Errorf("purse %+v", purse)
	}
	if purse.Rights.CanCredit(KeyValidator) {
		t.Error("validator can credit the purse")
	}
	for _, f := range app.Files {
		if f.Rights.Read == Free || f.Rights.Write == Free || f.Rights.ReadWrite == Free || f.Rights.Change == Free {
			t.Errorf("transport file %s has a free access right", f.Name)
		}
		if f.Rights.Change != Access(KeyIssuer) {
			t.Errorf("transport file %s: settings changeable by key %d", f.Name, f.Rights.Change)
		}
	}
}

func TestHolderOnlyDesk(t *testing.T) {
	l := CityCard()
	app, _ := l.App(AIDHolder)
	if _, ok := app.KeyFor(RoleValidator); ok {
		t.Error("holder application has a validator key")
	}
	f, _ := app.File(FileHolder)
	if f.Comm != CommEnciphered {
		t.Errorf("holder file comm %s", f.Comm)
	}
	for k := uint8(0); k < 14; k++ {
		if can := f.Rights.CanRead(k) || f.Rights.CanWrite(k); can != (k == KeyHolderDesk) {
			t.Errorf("key %d read/write holder = %v", k, can)
		}
	}
	if f.Rights.CanRead(uint8(Free)) {
		t.Error("holder file free to read")
	}
}

// TestValidatorFramesFit checks the APDU budget of LAYOUT.md: every read
// and write a validator makes fits one frame, so none needs an 0xAF
// continuation.
func TestValidatorFramesFit(t *testing.T) {
	l := CityCard()
	app, _ := l.App(AIDTransport)
	const writeHeader = 1 + 1 + 3 + 3 // command, file, offset, length
	for _, tt := range []struct {
		file  uint8
		bytes int
		write bool
	}{
		{FileContract, ContractSize, false},
		{FileTapLog, TapRecordSize, false}, // the newest record
		{FileTapLog, TapRecordSize, true},
	} {
		f, _ := app.File(tt.file)
		n := WireSize(tt.bytes, f.Comm)
		if tt.write {
			n += writeHeader
		}
		if n > MaxFrame {
			t.Errorf("%s: %d bytes on the wire (write %v), more than one %d-byte frame", f.Name, n, tt.write, MaxFrame)
		}
	}
	for _, tt := range []struct {
		file uint8
		size int
	}{{FileContract, ContractSize}} {
		if f, _ := app.File(tt.file); f.Size != tt.size {
			t.Errorf("%s size %d, codec %d", f.Name, f.Size, tt.size)
		}
	}
	if f, _ := app.File(FileTapLog); f.RecordSize != TapRecordSize || f.Records != TapLogEntries+1 {
		t.Errorf("tap log %+v", f)
	}
	if f, _ := app.File(FileTapLog); f.Type != CyclicRecord {
		t.Errorf("tap log is %s; it must be a record file, which commits with the tap", f.Type)
	}
}

func TestAccessRightsBytes(t *testing.T) {
	r := AccessRights{Read: 1, Write: 2, ReadWrite: 3, Change: 0}
	if b := r.Bytes(); b != [2]byte{0x30, 0x12} {
		t.Errorf("Bytes = % x", b)
	}
	for _, a := range []Access{0, 5, 13, Free, Never} {
		r := AccessRights{Read: a, Write: Never - a%2, ReadWrite: Free, Change: a}
		if got := ParseAccessRights(r.Bytes()); got != r {
			t.Errorf("round trip %+v = %+v", r, got)
		}
	}
	if !(AccessRights{Read: Free}).CanRead(9) || (AccessRights{Read: Never}).CanRead(uint8(Never)) {
		t.Error("free/never nibbles wrong")
	}
}

func TestAIDBytes(t *testing.T) {
	if b := AIDTransport.Bytes(); b != [3]byte{0x03, 0xC1, 0xF4} {
		t.Errorf("Bytes = % x", b)
	}
}

func TestLayoutValidateRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Layout)
		want   string
	}{
		{"duplicate AID", func(l *Layout) { l.Apps[1].AID = l.Apps[0].AID }, "used twice"},
		{"key gap", func(l *Layout) { l.Apps[2].Keys[1].No = 7 }, "numbers must be"},
		{"right names missing key", func(l *Layout) { l.Apps[2].Files[0].Rights.Read = 9 }, "names key 9"},
		{"duplicate file", func(l *Layout) { l.Apps[2].Files[1].No = l.Apps[2].Files[0].No }, "used twice"},
		{"value limits", func(l *Layout) { l.Apps[2].Files[1].Initial = -1 }, "limits"},
		{"record count", func(l *Layout) { l.Apps[2].Files[2].Records = 1 }, "records"},
		{"size", func(l *Layout) { l.Apps[2].Files[0].Size = 0 }, "size"},
		{"comm", func(l *Layout) { l.Apps[2].Files[0].Comm = 2 }, "comm mode"},
		{"too many keys", func(l *Layout) {
			for i := len(l.Apps[0].Keys); i < 15; i++ {
				l.Apps[0].Keys = append(l.Apps[0].Keys, Key{No: uint8(i), Role: RoleDesk})
			}
		}, "keys, want 1..14"},
	}
	for _, tt := range tests {
		l := CityCard()
		tt.mutate(&l)
		err := l.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Validate() = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestCityCardISO: the ISO identifiers LAYOUT.md lists, and the checks
// Validate makes on them.
func TestCityCardISO(t *testing.T) {
	l := CityCard()
	want := map[AID]struct {
		fid  uint16
		name string
		efs  map[uint8]uint16
	}{
		AIDIdentification: {0xC101, "F05452414E53495401", map[uint8]uint16{FileIdentity: 0x0101}},
		AIDHolder:         {0xC102, "F05452414E53495402", map[uint8]uint16{FileHolder: 0x0101}},
		AIDTransport:      {0xC103, "F05452414E53495403", map[uint8]uint16{FileContract: 0x0101, FilePurse: 0, FileTapLog: 0x0104}},
	}
	for _, a := range l.Apps {
		w := want[a.AID]
		if a.ISOFileID != w.fid || fmt.Sprintf("%X", a.DFName) != w.name {
			t.Errorf("%s: ISO file ID %04X, DF name %X; want %04X, %s", a.Name, a.ISOFileID, a.DFName, w.fid, w.name)
		}
		for _, f := range a.Files {
			if f.ISOFileID != w.efs[f.No] {
				t.Errorf("%s file %s: ISO file ID %04X, want %04X", a.Name, f.Name, f.ISOFileID, w.efs[f.No])
			}
		}
	}
	tests := []struct {
		name string
		mut  func(l *Layout)
		msg  string
	}{
		{"DF name without file ID", func(l *Layout) { l.Apps[0].ISOFileID = 0 }, "needs an ISO file ID"},
		{"reserved file ID", func(l *Layout) { l.Apps[0].ISOFileID = 0x3F00 }, "reserved"},
		{"long DF name", func(l *Layout) { l.Apps[0].DFName = make([]byte, 17) }, "at most 16"},
		{"same file ID", func(l *Layout) { l.Apps[1].ISOFileID = l.Apps[0].ISOFileID }, "used by"},
		{"same DF name", func(l *Layout) { l.Apps[1].DFName = l.Apps[0].DFName }, "used by"},
		{"value file with file ID", func(l *Layout) { l.Apps[2].Files[1].ISOFileID = 0x0102 }, "value file"},
		{"EF file ID twice", func(l *Layout) { l.Apps[2].Files[2].ISOFileID = 0x0101 }, "used twice"},
		{"EF without a DF file ID", func(l *Layout) { l.Apps[0].ISOFileID, l.Apps[0].DFName = 0, nil }, "without one"},
	}
	for _, tt := range tests {
		l := CityCard()
		tt.mut(&l)
		if err := l.Validate(); err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: Validate = %v, want an error with %q", tt.name, err, tt.msg)
		}
	}
}
