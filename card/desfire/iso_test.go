package desfire

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseDFNames(t *testing.T) {
	tests := []struct {
		name   string
		frames []string
		want   []ISOApplication
		ok     bool
	}{
		{"none", nil, []ISOApplication{}, true},
		{"one with a name", []string{"03C1F4" + "03C1" + "F05452414E53495403"},
			[]ISOApplication{{AID: AID{3, 0xC1, 0xF4}, FileID: 0xC103, DFName: []byte("\xF0TRANSIT\x03")}}, true},
		{"file ID, no name", []string{"010203" + "0110"}, []ISOApplication{{AID: AID{1, 2, 3}, FileID: 0x1001}}, true},
		{"two", []string{"010203" + "0110" + "AA", "040506" + "0220" + "000102030405060708090A0B0C0D0E0F"},
			[]ISOApplication{{AID: AID{1, 2, 3}, FileID: 0x1001, DFName: []byte{0xAA}},
				{AID: AID{4, 5, 6}, FileID: 0x2002, DFName: []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}}}, true},
		{"frame too short", []string{"01020301"}, nil, false},
		{"name of 17 bytes", []string{"010203" + "0110" + "000102030405060708090A0B0C0D0E0F10"}, nil, false},
		{"second frame bad", []string{"010203" + "0110", "01"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var frames [][]byte
			for _, f := range tt.frames {
				frames = append(frames, unhex(t, f))
			}
			got, err := ParseDFNames(frames)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseDFNames = %v, %v", got, err)
			}
			if tt.ok && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseDFNames = %+v, want %+v", got, tt.want)
			}
			if !tt.ok && !errors.Is(err, ErrMalformedResponse) {
				t.Fatalf("error %v is not ErrMalformedResponse", err)
			}
		})
	}
}

func TestParseISOFileIDs(t *testing.T) {
	tests := []struct {
		in   string
		want []ISOFileID
		ok   bool
	}{
		{"", []ISOFileID{}, true},
		{"0101", []ISOFileID{0x0101}, true},
		{"01E104E1", []ISOFileID{0xE101, 0xE104}, true},
		{"01", nil, false},
		{"01E104", nil, false},
	}
	for _, tt := range tests {
		got, err := ParseISOFileIDs(unhex(t, tt.in))
		if (err == nil) != tt.ok || (tt.ok && !reflect.DeepEqual(got, tt.want)) {
			t.Errorf("ParseISOFileIDs(%s) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseDFNames(f *testing.F) {
	f.Add([]byte{3, 0xC1, 0xF4, 3, 0xC1, 0xF0}, []byte{1, 2, 3, 1, 0x10})
	f.Add([]byte{}, []byte{1})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		apps, err := ParseDFNames([][]byte{a, b})
		if err != nil {
			return
		}
		for i, f := range [][]byte{a, b} {
			if len(apps[i].DFName) != len(f)-5 {
				t.Fatalf("frame %X gave DF name %X", f, apps[i].DFName)
			}
		}
	})
}

func FuzzParseISOFileIDs(f *testing.F) {
	f.Add([]byte{1, 0xE1, 4, 0xE1})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := ParseISOFileIDs(b)
		if err == nil && len(ids)*2 != len(b) {
			t.Fatalf("%X gave %d IDs", b, len(ids))
		}
	})
}

// TestISOCommandBytes checks the wire form of the ISO commands: native
// commands send file IDs least significant byte first, ISO SELECT most
// significant first, with P2 0C.
func TestISOCommandBytes(t *testing.T) {
	ok := []byte{0x91, 0x00}
	tests := []struct {
		name  string
		steps []step
		run   func(c *Card) error
	}{
		{"CreateISOApplication", []step{{cmd: unhex(t, "90CA00001003C1F409A503C1F05452414E534954"+"03"+"00"), resp: ok}},
			func(c *Card) error {
				return c.CreateISOApplication(AID{3, 0xC1, 0xF4}, 0x09, 5, 0xC103, []byte("\xF0TRANSIT\x03"))
			}},
		{"CreateISOApplication without DF name", []step{{cmd: unhex(t, "90CA000007010203"+"0FA1"+"0110"+"00"), resp: ok}},
			func(c *Card) error { return c.CreateISOApplication(AID{1, 2, 3}, 0x0F, 1, 0x1001, nil) }},
		{"CreateISOStdDataFile", []step{{cmd: unhex(t, "90CD0000090101C103E0122C000000"), resp: ok}},
			func(c *Card) error {
				return c.CreateISOStdDataFile(1, 0xC101, CommEnciphered, AccessRights{Read: 1, Write: 2, ReadWrite: 0xE}, 44)
			}},
		{"CreateISOBackupDataFile", []step{{cmd: unhex(t, "90CB000009020201000000200000"+"00"), resp: ok}},
			func(c *Card) error { return c.CreateISOBackupDataFile(2, 0x0102, CommPlain, AccessRights{}, 32) }},
		{"CreateISOCyclicRecordFile", []step{{cmd: unhex(t, "90C000000C040401031040220000"+"0B0000"+"00"), resp: ok}},
			func(c *Card) error {
				return c.CreateISOCyclicRecordFile(4, 0x0104, CommEnciphered, AccessRights{Read: 4, ReadWrite: 1}, 34, 11)
			}},
		{"CreateLinearRecordFile", []step{{cmd: unhex(t, "90C100000A0601E0EE100000040000"+"00"), resp: ok}},
			func(c *Card) error {
				return c.CreateLinearRecordFile(6, CommMAC, AccessRights{Read: 0xE, Write: 0xE, ReadWrite: 0xE}, 16, 4)
			}},
		{"CreateISOLinearRecordFile", []step{{cmd: unhex(t, "90C100000C060601"+"01E0EE100000040000"+"00"), resp: ok}},
			func(c *Card) error {
				return c.CreateISOLinearRecordFile(6, 0x0106, CommMAC, AccessRights{Read: 0xE, Write: 0xE, ReadWrite: 0xE}, 16, 4)
			}},
		{"SelectByDFName", []step{{cmd: unhex(t, "00A4040C09F05452414E53495403"), resp: []byte{0x90, 0x00}}},
			func(c *Card) error { return c.SelectByDFName([]byte("\xF0TRANSIT\x03")) }},
		{"SelectByFileID", []step{{cmd: unhex(t, "00A4000C02C103"), resp: []byte{0x90, 0x00}}},
			func(c *Card) error { return c.SelectByFileID(0xC103) }},
		{"SelectEF", []step{{cmd: unhex(t, "00A4020C020104"), resp: []byte{0x90, 0x00}}},
			func(c *Card) error { return c.SelectEF(0x0104) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{t: t, steps: tt.steps}
			if err := tt.run(New(s)); err != nil {
				t.Fatal(err)
			}
			if s.i != len(s.steps) {
				t.Fatalf("%d of %d APDUs sent", s.i, len(s.steps))
			}
		})
	}
}

func TestISOSelectState(t *testing.T) {
	sw := func(w string) []byte { return unhex(t, w) }
	tests := []struct {
		name    string
		run     func(c *Card) error
		resp    string
		wantErr error
		wantApp bool
	}{
		{"DF name of an application", func(c *Card) error { return c.SelectByDFName([]byte{0xF0, 1}) }, "9000", nil, true},
		{"PICC DF name", func(c *Card) error { return c.SelectByDFName(PICCDFName()) }, "9000", nil, false},
		{"unknown DF name", func(c *Card) error { return c.SelectByDFName([]byte{0xF0, 1}) }, "6A82", ErrISOFileNotFound, false},
		{"MF", func(c *Card) error { return c.SelectByFileID(ISOFileIDMF) }, "9000", nil, false},
		{"application file ID", func(c *Card) error { return c.SelectByFileID(0xC103) }, "9000", nil, true},
		{"answer with data", func(c *Card) error { return c.SelectByFileID(0xC103) }, "6F009000", ErrMalformedResponse, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(&script{t: t, steps: []step{{resp: sw(tt.resp)}}})
			c.s, _ = NewSession(0, make([]byte, 16))
			err := tt.run(c)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if _, open := c.Authenticated(); open {
				t.Fatal("session survived ISO SELECT")
			}
			if c.AppSelected() != tt.wantApp || c.Selected() != (AID{}) {
				t.Fatalf("AppSelected = %v, Selected = %s", c.AppSelected(), c.Selected())
			}
		})
	}
	// Arguments a card would refuse fail before any APDU.
	c := New(&script{t: t})
	for _, err := range []error{
		c.SelectByDFName(nil),
		c.SelectByDFName(make([]byte, 17)),
		c.CreateISOApplication(AID{1, 2, 3}, 0x0F, 1, ISOFileIDMF, nil),
		c.CreateISOApplication(AID{1, 2, 3}, 0x0F, 1, 0x1001, make([]byte, 17)),
		c.CreateISOStdDataFile(1, 0xFFFF, CommPlain, AccessRights{}, 8),
	} {
		if err == nil {
			t.Error("invalid argument accepted")
		}
	}
}

// GetDFNames keeps the card's frames apart: one application each.
func TestGetDFNamesFrames(t *testing.T) {
	s := &script{t: t, steps: []step{
		{cmd: unhex(t, "906D000000"), resp: unhex(t, "010203"+"0110"+"AABB"+"91AF")},
		{cmd: unhex(t, "90AF000000"), resp: unhex(t, "040506"+"0220"+"91AF")},
		{cmd: unhex(t, "90AF000000"), resp: unhex(t, "070809"+"0330"+"CC"+"9100")},
	}}
	c := New(s)
	apps, err := c.GetDFNames()
	if err != nil {
		t.Fatal(err)
	}
	want := []ISOApplication{
		{AID: AID{1, 2, 3}, FileID: 0x1001, DFName: []byte{0xAA, 0xBB}},
		{AID: AID{4, 5, 6}, FileID: 0x2002},
		{AID: AID{7, 8, 9}, FileID: 0x3003, DFName: []byte{0xCC}},
	}
	if !reflect.DeepEqual(apps, want) || c.APDUs() != 3 {
		t.Fatalf("GetDFNames = %+v in %d APDUs", apps, c.APDUs())
	}
}
