package vcard_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/simulator/vcard"
)

var (
	isoAID    = desfire.AID{0x01, 0xE1, 0xF0}
	isoFID    = desfire.ISOFileID(0xE101)
	isoDFName = []byte("\xF0ISOAPP")
)

// sessions are the ways a reader talks to a card's PICC level: no
// session, an ISO (2K3DES) session with the factory key, or, on an EV3
// whose PICC key became AES, an EV2 session.
var sessions = []struct {
	name         string
	gen          vcard.Generation
	open, reopen func(t *testing.T, c *desfire.Card)
}{
	{"no session", vcard.EV1, func(t *testing.T, c *desfire.Card) {}, func(t *testing.T, c *desfire.Card) {}},
	{"ISO session", vcard.EV1, isoPICC, isoPICC},
	{"EV2 session", vcard.EV3, func(t *testing.T, c *desfire.Card) {
		isoPICC(t, c)
		must(t, "PICC key to AES", c.ChangeKeyType(0, desfire.KeyAES, zeroKey, 1, nil))
		must(t, "PICC auth EV2", c.AuthenticateEV2First(0, zeroKey))
	}, func(t *testing.T, c *desfire.Card) { must(t, "PICC auth EV2", c.AuthenticateEV2First(0, zeroKey)) }},
}

func isoPICC(t *testing.T, c *desfire.Card) {
	t.Helper()
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
}

// TestISOApplications: CreateISOApplication, GetDFNames (one frame per
// application, with the session's MAC after the last) and the checks a
// card makes, on each kind of session.
func TestISOApplications(t *testing.T) {
	long := []byte("0123456789ABCDEF")
	for _, s := range sessions {
		t.Run(s.name, func(t *testing.T) {
			card := vcard.New(testUID, vcard.WithGeneration(s.gen))
			c := desfire.New(card)
			s.open(t, c)
			must(t, "ISO app", c.CreateISOApplication(isoAID, 0x0F, 2, isoFID, isoDFName))
			must(t, "plain app", c.CreateApplication(desfire.AID{1, 2, 3}, 0x0F, 1))
			must(t, "no name", c.CreateISOApplication(desfire.AID{2, 0xE1, 0xF0}, 0x0F, 1, 0xE102, nil))
			must(t, "long name", c.CreateISOApplication(desfire.AID{3, 0xE1, 0xF0}, 0x0F, 1, 0xE103, long))
			// Settings 0F: creation is free, so each refusal (which ends the
			// session) is the card's duplicate check, not a missing session.
			wantErr(t, "same file ID", c.CreateISOApplication(desfire.AID{4, 4, 4}, 0x0F, 1, isoFID, []byte{0xF0, 9}), desfire.ErrDuplicate)
			wantErr(t, "same DF name", c.CreateISOApplication(desfire.AID{4, 4, 4}, 0x0F, 1, 0xE104, isoDFName), desfire.ErrDuplicate)
			wantErr(t, "the PICC's DF name", c.CreateISOApplication(desfire.AID{4, 4, 4}, 0x0F, 1, 0xE104, desfire.PICCDFName()), desfire.ErrDuplicate)
			s.reopen(t, c)
			before := c.APDUs()
			apps, err := c.GetDFNames()
			must(t, "GetDFNames", err)
			want := []desfire.ISOApplication{
				{AID: isoAID, FileID: isoFID, DFName: isoDFName},
				{AID: desfire.AID{2, 0xE1, 0xF0}, FileID: 0xE102},
				{AID: desfire.AID{3, 0xE1, 0xF0}, FileID: 0xE103, DFName: long},
			}
			if !reflect.DeepEqual(apps, want) {
				t.Fatalf("GetDFNames = %+v, want %+v", apps, want)
			}
			if n := c.APDUs() - before; n != 3 {
				t.Fatalf("GetDFNames took %d APDUs, want one per ISO application", n)
			}
			// The session survived: a MACed command still verifies.
			if _, err := c.GetApplicationIDs(); err != nil {
				t.Fatalf("after GetDFNames: %v", err)
			}
		})
	}
}

// TestGetDFNamesFull: a card full of ISO applications with 16-byte names
// answers them all, 28 frames.
func TestGetDFNamesFull(t *testing.T) {
	card := vcard.New(testUID)
	c := desfire.New(card)
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	var want []desfire.ISOApplication
	for i := range 28 {
		a := desfire.ISOApplication{AID: desfire.AID{byte(i + 1), 0, 0xF0}, FileID: desfire.ISOFileID(0x1000 + i), DFName: bytes.Repeat([]byte{byte(i)}, 16)}
		must(t, "create", c.CreateISOApplication(a.AID, 0x0F, 1, a.FileID, a.DFName))
		want = append(want, a)
	}
	wantErr(t, "29th", c.CreateISOApplication(desfire.AID{99, 0, 0xF0}, 0x0F, 1, 0x2000, nil), desfire.ErrCount)
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	got, err := c.GetDFNames()
	must(t, "GetDFNames", err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("GetDFNames: %d applications, want 28", len(got))
	}
}

// isoCard is a card with one ISO application holding a file of each type
// (the value file has no ISO file ID: a DESFire gives it none).
func isoCard(t testing.TB, gen vcard.Generation) *vcard.Card {
	card := vcard.New(testUID, vcard.WithGeneration(gen))
	c := desfire.New(card)
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	must(t, "ISO app", c.CreateISOApplication(isoAID, 0x09, 2, isoFID, isoDFName))
	must(t, "plain app", c.CreateApplication(transportAID, 0x09, 1))
	must(t, "select", c.SelectApplication(isoAID))
	must(t, "auth", c.AuthenticateAES(0, zeroKey))
	r := desfire.AccessRights{Read: 1, Write: 1, ReadWrite: 1, Change: 0}
	must(t, "std", c.CreateISOStdDataFile(1, 0x0101, desfire.CommPlain, r, 16))
	must(t, "backup", c.CreateISOBackupDataFile(2, 0x0102, desfire.CommMAC, r, 16))
	must(t, "value", c.CreateValueFile(3, desfire.CommMAC, r, desfire.ValueLimits{Upper: 100, Value: 7}))
	must(t, "cyclic", c.CreateISOCyclicRecordFile(4, 0x0104, desfire.CommEnciphered, r, 8, 3))
	must(t, "linear", c.CreateISOLinearRecordFile(5, 0x0105, desfire.CommEnciphered, r, 8, 3))
	must(t, "no file ID", c.CreateStdDataFile(6, desfire.CommPlain, r, 8))
	return card
}

func TestISOFiles(t *testing.T) {
	card := isoCard(t, vcard.EV1)
	c := desfire.New(card)
	must(t, "select", c.SelectApplication(isoAID))
	must(t, "auth", c.AuthenticateAES(0, zeroKey))
	ids, err := c.GetISOFileIDs()
	must(t, "GetISOFileIDs", err)
	if want := []desfire.ISOFileID{0x0101, 0x0102, 0x0104, 0x0105}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("GetISOFileIDs = %v, want %v", ids, want)
	}
	r := desfire.AccessRights{Read: 1, Write: 1, ReadWrite: 1}
	wantErr(t, "duplicate file ID", c.CreateISOStdDataFile(7, 0x0101, desfire.CommPlain, r, 8), desfire.ErrDuplicate)
	must(t, "auth", c.AuthenticateAES(0, zeroKey))
	wantErr(t, "the application's own ID", c.CreateISOStdDataFile(7, isoFID, desfire.CommPlain, r, 8), desfire.ErrDuplicate)
	// An application created without ISO file IDs takes files without.
	must(t, "select", c.SelectApplication(transportAID))
	must(t, "auth", c.AuthenticateAES(0, zeroKey))
	wantErr(t, "file ID in a plain application", c.CreateISOStdDataFile(1, 0x0201, desfire.CommPlain, r, 8), desfire.ErrLength)
	must(t, "auth", c.AuthenticateAES(0, zeroKey))
	ids, err = c.GetISOFileIDs()
	if err != nil || len(ids) != 0 {
		t.Fatalf("GetISOFileIDs of a plain application = %v, %v", ids, err)
	}
	// Listing needs the master key here (settings 09).
	must(t, "select", c.SelectApplication(isoAID))
	_, err = c.GetISOFileIDs()
	wantErr(t, "GetISOFileIDs without the master key", err, desfire.ErrAuthentication)
}

// TestISOSelect: every way of ISO SELECT, and what each leaves selected,
// checked through native commands that work only at that level.
func TestISOSelect(t *testing.T) {
	atApp := func(t *testing.T, c *desfire.Card) {
		t.Helper()
		// Key 1 exists in the ISO application only (the PICC has one key).
		must(t, "auth key 1 of the application", c.AuthenticateAES(1, zeroKey))
	}
	atPICC := func(t *testing.T, c *desfire.Card) {
		t.Helper()
		must(t, "auth PICC", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	}
	tests := []struct {
		name   string
		from   desfire.AID // selected before
		sel    func(c *desfire.Card) error
		err    error
		check  func(t *testing.T, c *desfire.Card)
		useApp bool
	}{
		{"DF name from PICC", desfire.AID{}, func(c *desfire.Card) error { return c.SelectByDFName(isoDFName) }, nil, atApp, true},
		{"DF name from another application", transportAID, func(c *desfire.Card) error { return c.SelectByDFName(isoDFName) }, nil, atApp, true},
		{"PICC DF name", isoAID, func(c *desfire.Card) error { return c.SelectByDFName(desfire.PICCDFName()) }, nil, atPICC, false},
		{"unknown DF name leaves the PICC", desfire.AID{}, func(c *desfire.Card) error { return c.SelectByDFName([]byte{0xF0, 0}) }, desfire.ErrISOFileNotFound, atPICC, false},
		{"unknown DF name leaves the application", isoAID, func(c *desfire.Card) error { return c.SelectByDFName([]byte{0xF0, 0}) }, desfire.ErrISOFileNotFound, atApp, true},
		{"file ID of the application", desfire.AID{}, func(c *desfire.Card) error { return c.SelectByFileID(isoFID) }, nil, atApp, true},
		{"MF", isoAID, func(c *desfire.Card) error { return c.SelectByFileID(desfire.ISOFileIDMF) }, nil, atPICC, false},
		{"file ID of a file", isoAID, func(c *desfire.Card) error { return c.SelectByFileID(0x0104) }, nil, atApp, true},
		{"EF", isoAID, func(c *desfire.Card) error { return c.SelectEF(0x0105) }, nil, atApp, true},
		{"EF at PICC level", desfire.AID{}, func(c *desfire.Card) error { return c.SelectEF(0x0105) }, desfire.ErrISOFileNotFound, atPICC, false},
		{"EF without file ID", isoAID, func(c *desfire.Card) error { return c.SelectEF(0x0106) }, desfire.ErrISOFileNotFound, atApp, true},
		{"application's ID as EF", desfire.AID{}, func(c *desfire.Card) error { return c.SelectEF(isoFID) }, desfire.ErrISOFileNotFound, atPICC, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card := isoCard(t, vcard.EV1)
			c := desfire.New(card)
			must(t, "select before", c.SelectApplication(tt.from))
			if tt.from == isoAID {
				must(t, "auth before", c.AuthenticateAES(0, zeroKey))
			} else if tt.from == (desfire.AID{}) {
				atPICC(t, c)
			}
			err := tt.sel(c)
			wantErr(t, tt.name, err, tt.err)
			if tt.err == nil && err != nil {
				t.Fatal(err)
			}
			if _, open := c.Authenticated(); open {
				t.Fatal("reader kept the session across ISO SELECT")
			}
			// The card ended its session too: a command that needs one fails.
			if _, err := card.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
			resp := card.Respond([]byte{0x90, 0x51, 0, 0, 0}) // GetCardUID
			if !bytes.Equal(resp, []byte{0x91, 0xAE}) {
				t.Fatalf("GetCardUID after ISO SELECT = %X, want 91AE", resp)
			}
			c = desfire.New(card)
			if tt.useApp {
				// Reader state as after the ISO select of an application.
				must(t, "reselect by name", c.SelectByDFName(isoDFName))
			}
			tt.check(t, c)
		})
	}
}

// TestChangeKeyAfterISOSelect: an application selected by DF name is an
// application to ChangeKey (no PICC key-type bits) and DeleteApplication
// returns the reader to PICC level.
func TestChangeKeyAfterISOSelect(t *testing.T) {
	card := isoCard(t, vcard.EV3)
	c := desfire.New(card)
	must(t, "select by name", c.SelectByDFName(isoDFName))
	if !c.AppSelected() {
		t.Fatal("AppSelected false after selecting an application by DF name")
	}
	must(t, "auth EV2", c.AuthenticateEV2First(0, zeroKey))
	must(t, "change key 1", c.ChangeKey(1, roleKey(1), 3, zeroKey))
	must(t, "auth with the new key", c.AuthenticateEV2First(1, roleKey(1)))
	must(t, "select by file ID", c.SelectByFileID(isoFID))
	must(t, "auth", c.AuthenticateEV2First(0, zeroKey))
	must(t, "delete the application", c.DeleteApplication(isoAID))
	if c.AppSelected() {
		t.Fatal("reader still at application level after deleting it")
	}
	ids, err := c.GetApplicationIDs()
	if err != nil || !reflect.DeepEqual(ids, []desfire.AID{transportAID}) {
		t.Fatalf("GetApplicationIDs = %v, %v", ids, err)
	}
	err = c.SelectByDFName(isoDFName)
	wantErr(t, "select deleted", err, desfire.ErrISOFileNotFound)
}

// TestLinearRecordFile: a linear file keeps every record up to its size
// and refuses one more with a boundary error, where a cyclic file drops
// its oldest; ClearRecordFile empties it at commit, on each generation
// and in each communication mode.
func TestLinearRecordFile(t *testing.T) {
	for _, gen := range []vcard.Generation{vcard.EV1, vcard.EV3} {
		for _, mode := range []desfire.CommMode{desfire.CommPlain, desfire.CommMAC, desfire.CommEnciphered} {
			t.Run(gen.String()+"/"+mode.String(), func(t *testing.T) { linearRecords(t, gen, mode) })
		}
	}
}

func linearRecords(t *testing.T, gen vcard.Generation, mode desfire.CommMode) {
	card := vcard.New(testUID, vcard.WithGeneration(gen))
	c := desfire.New(card)
	auth := func(k byte) {
		t.Helper()
		if gen >= vcard.EV2 {
			must(t, "auth", c.AuthenticateEV2First(k, zeroKey))
		} else {
			must(t, "auth", c.AuthenticateAES(k, zeroKey))
		}
	}
	must(t, "PICC auth", c.AuthenticateISO(0, desfire.KeyDES, desfire.FactoryPICCKey()))
	must(t, "app", c.CreateApplication(transportAID, 0x09, 2))
	must(t, "select", c.SelectApplication(transportAID))
	auth(0)
	r := desfire.AccessRights{Read: 1, Write: 1, ReadWrite: 1, Change: 0}
	must(t, "linear", c.CreateLinearRecordFile(1, mode, r, 16, 3))
	wantErr(t, "no records", c.CreateLinearRecordFile(2, mode, r, 16, 0), desfire.ErrParameter)
	auth(0)
	must(t, "one record", c.CreateLinearRecordFile(2, mode, r, 16, 1))
	fs, err := c.GetFileSettings(1)
	must(t, "GetFileSettings", err)
	if fs.Type != desfire.FileLinearRecord || fs.RecordSize != 16 || fs.MaxRecords != 3 || fs.Records != 0 {
		t.Fatalf("GetFileSettings = %+v", fs)
	}

	auth(1)
	for i := range 3 {
		must(t, "WriteRecord", c.WriteRecord(1, 0, pattern(16, byte(i)), mode))
		must(t, "commit", c.CommitTransaction())
	}
	wantErr(t, "fourth record", c.WriteRecord(1, 0, pattern(16, 9), mode), desfire.ErrBoundary)
	auth(1)
	recs, err := c.ReadRecords(1, 0, 0, 16, mode)
	must(t, "ReadRecords", err)
	if want := [][]byte{pattern(16, 0), pattern(16, 1), pattern(16, 2)}; !reflect.DeepEqual(recs, want) {
		t.Fatalf("ReadRecords = %X, want all three, oldest first", recs)
	}
	if recs, err = c.ReadRecords(1, 2, 1, 16, mode); err != nil || !bytes.Equal(recs[0], pattern(16, 0)) {
		t.Fatalf("ReadRecords offset 2 = %X, %v", recs, err)
	}
	// Clear and write in one transaction: the new record is the only one.
	must(t, "ClearRecordFile", c.ClearRecordFile(1))
	must(t, "write after clear", c.WriteRecord(1, 0, pattern(16, 5), mode))
	must(t, "commit", c.CommitTransaction())
	if recs, err = c.ReadRecords(1, 0, 0, 16, mode); err != nil || !reflect.DeepEqual(recs, [][]byte{pattern(16, 5)}) {
		t.Fatalf("after clear and write: %X, %v", recs, err)
	}
	must(t, "ClearRecordFile", c.ClearRecordFile(1))
	must(t, "commit", c.CommitTransaction())
	_, err = c.ReadRecords(1, 0, 0, 16, mode)
	wantErr(t, "read cleared", err, desfire.ErrBoundary)
	auth(1)
	// A one-record file is full after one write; an aborted write leaves
	// it empty.
	must(t, "write", c.WriteRecord(2, 0, pattern(16, 1), mode))
	must(t, "abort", c.AbortTransaction())
	must(t, "write", c.WriteRecord(2, 0, pattern(16, 2), mode))
	must(t, "commit", c.CommitTransaction())
	wantErr(t, "full", c.WriteRecord(2, 0, pattern(16, 3), mode), desfire.ErrBoundary)

	// The state keeps linear files.
	saved, err := card.MarshalBinary()
	must(t, "marshal", err)
	loaded := vcard.New(nil)
	must(t, "unmarshal", loaded.UnmarshalBinary(saved))
	c = desfire.New(loaded)
	must(t, "select", c.SelectApplication(transportAID))
	auth(1)
	wantErr(t, "still full after reload", c.WriteRecord(2, 0, pattern(16, 3), mode), desfire.ErrBoundary)
}

// TestISOState: ISO identifiers survive a save and load; a state saved
// before they existed (version 2) still loads, with none.
func TestISOState(t *testing.T) {
	card := isoCard(t, vcard.EV2)
	saved, err := card.MarshalBinary()
	must(t, "marshal", err)
	loaded := vcard.New(nil)
	must(t, "unmarshal", loaded.UnmarshalBinary(saved))
	c := desfire.New(loaded)
	apps, err := c.GetDFNames()
	if err != nil || len(apps) != 1 || apps[0].FileID != isoFID || !bytes.Equal(apps[0].DFName, isoDFName) {
		t.Fatalf("GetDFNames after reload = %+v, %v", apps, err)
	}
	must(t, "select by name", c.SelectByDFName(isoDFName))
	must(t, "auth", c.AuthenticateEV2First(0, zeroKey))
	ids, err := c.GetISOFileIDs()
	if err != nil || len(ids) != 4 {
		t.Fatalf("GetISOFileIDs after reload = %v, %v", ids, err)
	}

	raw, err := os.ReadFile("testdata/state-v2.hex")
	must(t, "read v2 state", err)
	v2, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	must(t, "decode v2 state", err)
	old := vcard.New(nil)
	must(t, "load a version 2 state", old.UnmarshalBinary(v2))
	if v, recs := snapshot(t, old); v != initialPurse-fare || len(recs) != 1 {
		t.Fatalf("version 2 card: purse %d, %d records", v, len(recs))
	}
	old.Reset() // out of the field: back at PICC level
	if apps, err := desfire.New(old).GetDFNames(); err != nil || len(apps) != 0 {
		t.Fatalf("version 2 card: GetDFNames = %v, %v", apps, err)
	}
	v3, _ := old.MarshalBinary()
	if v3[4] != 3 {
		t.Fatalf("a loaded version 2 state saves as version %d", v3[4])
	}
	must(t, "tap on the version 2 card", tap(desfire.New(old), pattern(recordSize, 2)))
}
