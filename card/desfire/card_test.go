package desfire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"testing"

	"github.com/citycard/transit/card/apdu"
)

// script is a transport that checks each command against an expected one
// and answers with a canned response.
type script struct {
	t     *testing.T
	steps []step
	i     int
}

type step struct {
	cmd  []byte // nil: do not check
	resp []byte
	err  error
}

func (s *script) Transmit(cmd []byte) ([]byte, error) {
	s.t.Helper()
	if s.i >= len(s.steps) {
		s.t.Fatalf("unexpected APDU %X", cmd)
	}
	st := s.steps[s.i]
	s.i++
	if st.cmd != nil && !bytes.Equal(cmd, st.cmd) {
		s.t.Fatalf("APDU %d = %X, want %X", s.i, cmd, st.cmd)
	}
	return st.resp, st.err
}

func TestStatusErrors(t *testing.T) {
	codes := map[Status]error{
		StatusNoChanges: ErrNoChanges, StatusOutOfEEPROM: ErrOutOfEEPROM, StatusIllegalCommand: ErrIllegalCommand,
		StatusIntegrityError: ErrIntegrity, StatusNoSuchKey: ErrNoSuchKey, StatusLengthError: ErrLength,
		StatusPermissionDenied: ErrPermissionDenied, StatusParameterError: ErrParameter,
		StatusApplicationNotFound: ErrApplicationNotFound, StatusAuthenticationError: ErrAuthentication,
		StatusBoundaryError: ErrBoundary, StatusPICCIntegrity: ErrPICCIntegrity, StatusCommandAborted: ErrCommandAborted,
		StatusPICCDisabled: ErrPICCDisabled, StatusCountError: ErrCount, StatusDuplicateError: ErrDuplicate,
		StatusEEPROMError: ErrEEPROM, StatusFileNotFound: ErrFileNotFound, StatusFileIntegrity: ErrFileIntegrity,
	}
	for st, sentinel := range codes {
		c := New(&script{t: t, steps: []step{{cmd: []byte{0x90, 0xC7, 0, 0, 0}, resp: []byte{0x91, byte(st)}}}})
		err := c.CommitTransaction()
		if !errors.Is(err, sentinel) {
			t.Errorf("status %s: error %v does not match its sentinel", st, err)
		}
		var se *StatusError
		if !errors.As(err, &se) || se.Command != InsCommitTransaction || se.Status != st {
			t.Errorf("status %s: error %#v", st, err)
		}
		if st != StatusBoundaryError && errors.Is(err, ErrBoundary) {
			t.Errorf("status %s matches ErrBoundary", st)
		}
	}
}

func TestTransportErrors(t *testing.T) {
	tests := []struct {
		name string
		step step
		want error
	}{
		{"card removed", step{err: apdu.ErrCardRemoved}, apdu.ErrCardRemoved},
		{"no status word", step{resp: []byte{0x91}}, nil},
		{"not DESFire", step{resp: []byte{0x6E, 0x00}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(&script{t: t, steps: []step{tt.step}})
			_, err := c.GetKeyVersion(0)
			if err == nil || (tt.want != nil && !errors.Is(err, tt.want)) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	var ie *ISOError
	c := New(&script{t: t, steps: []step{{resp: []byte{0x6E, 0x00}}}})
	if _, err := c.GetKeyVersion(0); !errors.As(err, &ie) || ie.SW != 0x6E00 {
		t.Fatalf("got %v, want ISOError 6E00", err)
	}
}

func TestNeedsSession(t *testing.T) {
	c := New(&script{t: t})
	if _, err := c.GetCardUID(); !errors.Is(err, ErrNotAuthenticated) {
		t.Fatalf("GetCardUID: %v", err)
	}
	if err := c.ChangeKey(1, make([]byte, 16), 0, nil); !errors.Is(err, ErrNotAuthenticated) {
		t.Fatalf("ChangeKey: %v", err)
	}
	if err := c.ChangeKeySettings(0x0F); !errors.Is(err, ErrNotAuthenticated) {
		t.Fatalf("ChangeKeySettings: %v", err)
	}
	if err := c.Debit(1, -5, CommMAC); err == nil {
		t.Fatal("negative debit accepted")
	}
}

// fixedRand returns the same bytes forever.
type fixedRand []byte

func (f fixedRand) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = f[i%len(f)]
	}
	return len(p), nil
}

// TestAuthenticateAESExchange plays the card's side of an EV1 AES
// authentication written out step by step with crypto/cipher (IV zero for
// E(RndB), then CBC chaining over the exchange), independently of
// AuthStep, and checks the APDUs, the session key and the first CMAC.
func TestAuthenticateAESExchange(t *testing.T) {
	key := unhex(t, "00112233445566778899AABBCCDDEEFF")
	rndA := unhex(t, "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF")
	rndB := unhex(t, "B0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF")
	block, _ := aes.NewCipher(key)
	cbc := func(iv, in []byte) []byte {
		out := make([]byte, len(in))
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, in)
		return out
	}
	encB := cbc(make([]byte, 16), rndB)
	// The reader's answer, enciphered with IV = E(RndB).
	token := append(append([]byte{}, rndA...), rndB[1:]...)
	token = append(token, rndB[0])
	encAB := cbc(encB, token)
	// The card's proof, enciphered with IV = last block of the answer.
	encA := cbc(encAB[16:], append(append([]byte{}, rndA[1:]...), rndA[0]))

	sessionKey := unhex(t, "A0A1A2A3B0B1B2B3ACADAEAFBCBDBEBF")
	sess, _ := NewSession(0, sessionKey)
	mac := sess.CMAC([]byte{InsGetKeyVersion, 0x00})
	resp, _ := NewSession(0, sessionKey)
	resp.iv = mac
	respMAC := resp.CMAC([]byte{0x05, 0x00}) // key version 5, status 00

	s := &script{t: t, steps: []step{
		{cmd: []byte{0x90, 0xAA, 0, 0, 1, 0x00, 0}, resp: append(append([]byte{}, encB...), 0x91, 0xAF)},
		{cmd: append(append([]byte{0x90, 0xAF, 0, 0, 32}, encAB...), 0), resp: append(append([]byte{}, encA...), 0x91, 0x00)},
		{cmd: []byte{0x90, 0x64, 0, 0, 1, 0x00, 0}, resp: append(append([]byte{0x05}, respMAC[:8]...), 0x91, 0x00)},
	}}
	c := New(s, WithRand(fixedRand(rndA)))
	if err := c.AuthenticateAES(0, key); err != nil {
		t.Fatal(err)
	}
	v, err := c.GetKeyVersion(0)
	if err != nil || v != 5 {
		t.Fatalf("GetKeyVersion in session = %d, %v", v, err)
	}

	// A card that answers with the wrong proof is not authentic.
	bad := append([]byte{}, encA...)
	bad[0] ^= 1
	s = &script{t: t, steps: []step{
		{resp: append(append([]byte{}, encB...), 0x91, 0xAF)},
		{resp: append(bad, 0x91, 0x00)},
	}}
	c = New(s, WithRand(fixedRand(rndA)))
	if err := c.AuthenticateAES(0, key); !errors.Is(err, ErrCardNotAuthentic) {
		t.Fatalf("wrong proof: %v", err)
	}
}

func TestParseFileSettings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want FileSettings
		ok   bool
	}{
		{"std", "0003E012" + "2C0000", FileSettings{Type: FileStdData, Comm: CommEnciphered, Rights: AccessRights{Read: 1, Write: 2, ReadWrite: 0xE, Change: 0}, Size: 44}, true},
		{"value", "0201" + "201F" + "00000000" + "20A10700" + "00000000" + "00",
			FileSettings{Type: FileValue, Comm: CommMAC, Rights: AccessRights{Read: 1, Write: 0xF, ReadWrite: 2}, Limits: ValueLimits{Upper: 500000}}, true},
		{"record", "0403" + "1040" + "180000" + "0B0000" + "020000",
			FileSettings{Type: FileCyclicRecord, Comm: CommEnciphered, Rights: AccessRights{Read: 4, ReadWrite: 1}, RecordSize: 24, MaxRecords: 11, Records: 2}, true},
		{"short", "0003", FileSettings{}, false},
		{"unknown type", "0903E0122C0000", FileSettings{}, false},
		{"std too long", "0003E0122C000000", FileSettings{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFileSettings(unhex(t, tt.in))
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseFileSettings(%s) = %+v, %v", tt.in, got, err)
			}
		})
	}
}

func FuzzParseFileSettings(f *testing.F) {
	f.Add([]byte{0, 3, 0xE0, 0x12, 0x2C, 0, 0})
	f.Add([]byte{4, 3, 0x10, 0x40, 24, 0, 0, 11, 0, 0, 2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseFileSettings(b) })
}

func FuzzParseVersion(f *testing.F) {
	f.Add(make([]byte, 28))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseVersion(b) })
}

// FuzzResponses feeds arbitrary card answers to a reader in session: it
// must return errors, never panic.
func FuzzResponses(f *testing.F) {
	f.Add([]byte{0x91, 0x00}, []byte{0x91, 0xAF})
	f.Add(make([]byte, 18), []byte{0x01, 0x91, 0x00})
	f.Fuzz(func(t *testing.T, r1, r2 []byte) {
		sess, _ := NewSession(1, make([]byte, 16))
		for _, op := range []func(c *Card) error{
			func(c *Card) error { _, err := c.ReadData(1, 0, 0, CommEnciphered); return err },
			func(c *Card) error { _, err := c.ReadRecords(1, 0, 0, 24, CommMAC); return err },
			func(c *Card) error { _, err := c.GetVersion(); return err },
			func(c *Card) error { _, err := c.GetApplicationIDs(); return err },
			func(c *Card) error { _, err := c.GetDFNames(); return err },
			func(c *Card) error { _, err := c.GetISOFileIDs(); return err },
			func(c *Card) error { return c.SelectByDFName([]byte{0xF0}) },
		} {
			c := New(apdu.TransportFunc(func(cmd []byte) ([]byte, error) {
				r := r1
				r1 = r2
				r2 = []byte{0x91, 0xCA}
				return r, nil
			}))
			s := sess.Clone()
			c.s = s
			_ = op(c)
		}
	})
}
