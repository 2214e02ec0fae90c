package vcard_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/card/desfire"
	"github.com/citycard/transit/simulator/vcard"
)

var _ apdu.Transport = (*vcard.Card)(nil)
var _ apdu.Transport = (*vcard.Tear)(nil)

func h(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func TestRespondStatusWords(t *testing.T) {
	tests := []struct {
		name string
		cmd  string
		want string
	}{
		{"get UID pseudo-APDU", "FFCA000000", "04440F32763180" + "9000"},
		{"pseudo-APDU, other P1", "FFCA010000", "6A86"},
		{"pseudo-APDU, other INS", "FFB0000000", "6D00"},
		{"ISO SELECT of no DF name", "00A4040000", "6A82"},
		{"ISO SELECT of the PICC's DF name", "00A4040007D276000085010000", "9000"},
		{"ISO SELECT by an unknown file ID", "00A4000C020100", "6A82"},
		{"ISO SELECT of the MF", "00A4000C023F00", "9000"},
		{"ISO SELECT of the MF, FCI asked", "00A40000023F0000", "9000"},
		{"ISO SELECT of an EF at PICC level", "00A4020C020101", "6A82"},
		{"ISO SELECT, file ID of one byte", "00A4000C013F", "6700"},
		{"ISO SELECT, other P1", "00A4080C023F00", "6A86"},
		{"ISO SELECT, other P2", "00A40004023F00", "6A86"},
		{"ISO SELECT of the PICC's DF name, no FCI", "00A4040C07D2760000850100", "9000"},
		{"GetDFNames, empty card", "906D000000", "9100"},
		{"GetISOFileIDs at PICC level", "9061000000", "911C"},
		{"CreateLinearRecordFile at PICC level", "90C100000A01000000100000040000" + "00", "911C"},
		{"CreateApplication with ISO flag, no file ID", "90CA0000050102030FA400", "917E"},
		{"CreateApplication with ISO file ID and DF name", "90CA00000E0102030FA401E1" + "F0010203040506" + "00", "9100"},
		{"CreateApplication with a reserved ISO file ID", "90CA0000070102030FA4003F00", "919E"},
		{"CreateApplication, DF name of 17 bytes", "90CA0000180102030FA401E1" + "0102030405060708090A0B0C0D0E0F1011" + "00", "917E"},
		{"CreateApplication, the PICC's DF name", "90CA00000E0102030FA401E1" + "D2760000850100" + "00", "91DE"},
		{"ISO READ BINARY", "00B0000000", "6D00"},
		{"FreeMemory, factory card", "906E000000", "001F00" + "9100"},
		{"unknown class", "80CA000000", "6E00"},
		{"bare native SelectApplication", "5A03C1F4", "6E00"},
		{"bare native GetVersion", "60", "6700"},
		{"too short", "9060", "6700"},
		{"Lc longer than data", "905A0000050102", "6700"},
		{"Lc zero with data", "905A00000000", "6700"},
		{"P1 set", "9060010000", "6A86"},
		{"unknown native command", "9042000000", "911C"},
		{"legacy DES authentication", "900A0000010000", "91AE"},
		{"AES authentication, length", "90AA000002000000", "917E"},
		{"AES authentication, no such key", "90AA0000010500", "9140"},
		{"continuation out of nowhere", "90AF000000", "911C"},
		{"select missing application", "905A00000301020300", "91A0"},
		{"read data at PICC level", "90BD0000070100000000000000", "911C"},
		{"GetApplicationIDs, empty card", "906A000000", "9100"},
		{"GetVersion frame 1", "9060000000", "04010101001A05" + "91AF"},
		{"GetCardUID without session", "9051000000", "91AE"},
		{"CreateApplication without AES flag", "90CA0000050102030F0400", "919E"},
		{"CreateApplication, free on a fresh card", "90CA0000050102030F8400", "9100"},
		{"CreateApplication, wrong length", "90CA0000040102030F00", "917E"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			card := vcard.New(testUID)
			got := card.Respond(h(tt.cmd))
			if !bytes.Equal(got, h(tt.want)) {
				t.Fatalf("Respond(%s) = %X, want %s", tt.cmd, got, tt.want)
			}
		})
	}
}

func TestGetVersionFrames(t *testing.T) {
	card := vcard.New(testUID)
	f1 := card.Respond(h("9060000000"))
	f2 := card.Respond(h("90AF000000"))
	f3 := card.Respond(h("90AF000000"))
	if len(f1) != 9 || len(f2) != 9 || len(f3) != 16 || !bytes.Equal(f3[len(f3)-2:], []byte{0x91, 0}) {
		t.Fatalf("GetVersion frames %X %X %X", f1, f2, f3)
	}
	if !bytes.Equal(f3[:7], testUID) {
		t.Fatalf("UID in frame 3 = %X", f3[:7])
	}
	if got := card.Respond(h("90AF000000")); !bytes.Equal(got, h("911C")) {
		t.Fatalf("fourth frame = %X", got)
	}
}

func TestStateRoundTrip(t *testing.T) {
	card := vcard.New(testUID)
	personalise(t, card)
	must(t, "tap", tap(desfire.New(card), pattern(recordSize, 1)))
	// An uncommitted change must not be saved.
	c := desfire.New(card)
	must(t, "select", c.SelectApplication(transportAID))
	must(t, "auth", c.AuthenticateAES(keyValidator, roleKey(keyValidator)))
	must(t, "pending debit", c.Debit(filePurse, 1, desfire.CommMAC))

	saved, err := card.MarshalBinary()
	must(t, "marshal", err)
	loaded := vcard.New(nil)
	must(t, "unmarshal", loaded.UnmarshalBinary(saved))
	again, err := loaded.MarshalBinary()
	must(t, "marshal again", err)
	if !bytes.Equal(saved, again) {
		t.Fatal("state changed across a save and load")
	}
	if !bytes.Equal(loaded.UID(), testUID) {
		t.Fatalf("UID = %X", loaded.UID())
	}
	v, recs := snapshot(t, loaded)
	if v != initialPurse-fare || len(recs) != 1 {
		t.Fatalf("loaded card: purse %d, %d records", v, len(recs))
	}
	must(t, "tap on loaded card", tap(desfire.New(loaded), pattern(recordSize, 2)))
}

func TestUnmarshalRejects(t *testing.T) {
	card := vcard.New(testUID)
	personalise(t, card)
	good, _ := card.MarshalBinary()
	tests := []struct {
		name string
		mut  func([]byte) []byte
	}{
		{"empty", func([]byte) []byte { return nil }},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"version", func(b []byte) []byte { b[4] = 9; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"trailing", func(b []byte) []byte { return append(b, 0) }},
		{"PICC with two keys", func(b []byte) []byte { b[4+1+1+7+4+1] = 2; return b }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := vcard.New(testUID)
			before, _ := target.MarshalBinary()
			err := target.UnmarshalBinary(tt.mut(append([]byte(nil), good...)))
			if !errors.Is(err, vcard.ErrState) {
				t.Fatalf("got %v, want ErrState", err)
			}
			after, _ := target.MarshalBinary()
			if !bytes.Equal(before, after) {
				t.Fatal("a rejected state changed the card")
			}
		})
	}
}

// Concurrent Respond and Reset from several goroutines: run with -race.
func TestConcurrentUse(t *testing.T) {
	card := vcard.New(testUID)
	personalise(t, card)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			card.Reset()
			_, _ = card.MarshalBinary()
		}
	}()
	for range 50 {
		_ = tap(desfire.New(card), pattern(recordSize, 3)) // may be interrupted by Reset
	}
	<-done
}
