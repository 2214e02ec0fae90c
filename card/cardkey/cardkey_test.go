package cardkey

import (
	"context"
	"encoding/hex"
	"errors"
	"path/filepath"
	"testing"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/hsm/cmac"
)

// cheapKDF keeps the keystore fast to create; real keystores use
// hsm.DefaultKDF.
var cheapKDF = hsm.KDFParams{Time: 1, MemoryKiB: 64, Threads: 1}

var testUID = []byte{0x04, 0x78, 0x2E, 0x21, 0x80, 0x1D, 0x80}

func newKeystore(t *testing.T) *hsm.Keystore {
	t.Helper()
	ks, err := hsm.CreateKeystore(filepath.Join(t.TempDir(), "keys.json"), []byte("test"), cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	return ks
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSystemIDLength(t *testing.T) {
	// 0x01 || UID || AID || SystemID must be 17..32 bytes for an HSM's
	// plain CMAC to equal AN10922.
	n := 1 + UIDSize + 3 + len(SystemID)
	if n < 17 || n > 32 {
		t.Fatalf("diversification message is %d bytes, want 17..32", n)
	}
}

// TestKeyIsAN10922 checks the derived key against plain AES-CMAC over
// 0x01 || UID || AID (wire order) || SystemID, computed here without the
// hsm package's AN10922 code: from 17 bytes on the two are equal.
func TestKeyIsAN10922(t *testing.T) {
	ctx := context.Background()
	ks := newKeystore(t)
	master := unhex(t, "00112233445566778899AABBCCDDEEFF")
	if err := ks.Import(ctx, hsm.Ref{Label: "card-validator", Version: 1}, hsm.KindCardMaster, master); err != nil {
		t.Fatal(err)
	}
	got, err := New(ks).Key(ctx, card.RoleValidator, testUID, card.AIDTransport, 1)
	if err != nil {
		t.Fatal(err)
	}
	msg := append([]byte{0x01}, testUID...)
	msg = append(msg, 0x03, 0xC1, 0xF4) // F4C103, least significant byte first
	msg = append(msg, "CITYCARD-UA"...)
	m, err := cmac.New(master)
	if err != nil {
		t.Fatal(err)
	}
	if want := m.Sum(msg); got.Value != want {
		t.Fatalf("key %X, want %X", got.Value, want)
	}
	if got.Version != 1 || got.Role != card.RoleValidator || got.AID != card.AIDTransport {
		t.Fatalf("key metadata %+v", got)
	}
}

func TestVersions(t *testing.T) {
	ctx := context.Background()
	ks := newKeystore(t)
	for range 3 {
		if _, err := ks.Generate(ctx, "card-desk", hsm.KindCardMaster); err != nil {
			t.Fatal(err)
		}
	}
	s := New(ks)
	newest, err := s.Key(ctx, card.RoleDesk, testUID, card.AIDHolder, 0)
	if err != nil {
		t.Fatal(err)
	}
	if newest.Version != 3 {
		t.Fatalf("version 0 gave version %d, want the newest, 3", newest.Version)
	}
	v3, _ := s.Key(ctx, card.RoleDesk, testUID, card.AIDHolder, 3)
	v2, err := s.Key(ctx, card.RoleDesk, testUID, card.AIDHolder, 2)
	if err != nil {
		t.Fatal(err)
	}
	if v3.Value != newest.Value || v2.Value == v3.Value || v2.Version != 2 {
		t.Fatalf("v2 %X/%d, v3 %X, newest %X", v2.Value, v2.Version, v3.Value, newest.Value)
	}
	if n, err := s.Newest(ctx, card.RoleDesk); err != nil || n != 3 {
		t.Fatalf("Newest = %d, %v", n, err)
	}
	if _, err := s.Key(ctx, card.RoleDesk, testUID, card.AIDHolder, 4); !errors.Is(err, hsm.ErrNotFound) {
		t.Fatalf("missing version: %v, want hsm.ErrNotFound", err)
	}
	if _, err := s.Key(ctx, card.RoleDesk, testUID, card.AIDHolder, 256); err == nil {
		t.Fatal("version 256 accepted; a card stores one byte")
	}
}

// TestKeysDiffer: every role, application and card gets its own key, and
// the PICC level (AID 0) is an application like any other.
func TestKeysDiffer(t *testing.T) {
	ctx := context.Background()
	ks := newKeystore(t)
	for _, r := range hsm.Roles {
		if _, err := ks.Generate(ctx, hsm.CardMasterLabel(r), hsm.KindCardMaster); err != nil {
			t.Fatal(err)
		}
	}
	s := New(ks)
	other := append([]byte(nil), testUID...)
	other[6] ^= 1
	seen := map[[16]byte]string{}
	for _, uid := range [][]byte{testUID, other} {
		for _, aid := range []card.AID{0, card.AIDIdentification, card.AIDHolder, card.AIDTransport} {
			for _, r := range []card.Role{card.RoleIssuer, card.RoleValidator, card.RoleTopUp, card.RoleDesk, card.RoleInspector} {
				k, err := s.Key(ctx, r, uid, aid, 0)
				if err != nil {
					t.Fatal(err)
				}
				name := hex.EncodeToString(uid) + "/" + aid.String() + "/" + r.String()
				if prev, dup := seen[k.Value]; dup {
					t.Fatalf("%s has the same key as %s", name, prev)
				}
				seen[k.Value] = name
			}
		}
	}
}

func TestRoles(t *testing.T) {
	for _, hr := range hsm.Roles {
		cr, err := CardRole(hr)
		if err != nil {
			t.Fatal(err)
		}
		back, err := HSMRole(cr)
		if err != nil || back != hr {
			t.Fatalf("%s -> %s -> %s, %v", hr, cr, back, err)
		}
	}
	if _, err := HSMRole(card.Role(99)); !errors.Is(err, ErrRole) {
		t.Fatalf("role 99: %v", err)
	}
	if _, err := CardRole("janitor"); !errors.Is(err, ErrRole) {
		t.Fatalf("role janitor: %v", err)
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	ks := newKeystore(t)
	s := New(ks)
	if _, err := s.Key(ctx, card.RoleIssuer, testUID, card.AIDTransport, 0); !errors.Is(err, hsm.ErrNotFound) {
		t.Fatalf("no master: %v, want hsm.ErrNotFound", err)
	}
	if _, err := ks.Generate(ctx, "card-issuer", hsm.KindCardMaster); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(ctx, card.RoleIssuer, testUID[:4], card.AIDTransport, 0); err == nil {
		t.Fatal("4-byte UID accepted")
	}
	if _, err := s.Key(ctx, card.RoleIssuer, testUID, 0x1000000, 0); err == nil {
		t.Fatal("25-bit AID accepted")
	}
	// A label that holds a key of another kind is refused.
	if err := ks.Import(ctx, hsm.Ref{Label: "card-inspector", Version: 1}, hsm.KindMAC, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Key(ctx, card.RoleInspector, testUID, card.AIDTransport, 0); !errors.Is(err, hsm.ErrWrongKind) {
		t.Fatalf("MAC key as card master: %v, want hsm.ErrWrongKind", err)
	}
}
