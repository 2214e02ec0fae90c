package hsm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Shared material imported into both backends, so their outputs can be compared.
var (
	an10922Master = "00112233445566778899AABBCCDDEEFF"
	an10922Input  = "04782E21801D80" + "3042F5" + "4E585020416275"
	an10922Want   = "A8DD63A3B89D54B37CA802473FDA9175"
	signSeed      = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	macKey        = "2b7e151628aed2a6abf7158809cf4f3c"
)

// prefix makes labels unique so that runs against a persistent token do
// not collide with earlier ones.
func prefix(t testing.TB) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("t%x-", b)
}

// contract runs the behaviour every backend must show. It returns the
// results that must be identical across backends.
func contract(t *testing.T, a Admin) (divs [][16]byte, sigs [][]byte) {
	ctx := context.Background()
	p := prefix(t)
	master := Ref{p + "card-validator", 1}
	if err := a.Import(ctx, master, KindCardMaster, unhex(t, an10922Master)); err != nil {
		t.Fatalf("import master: %v", err)
	}
	signer := Ref{p + "sign-hotlist", 1}
	if err := a.Import(ctx, signer, KindSigning, unhex(t, signSeed)); err != nil {
		t.Fatalf("import signing key: %v", err)
	}
	mac := Ref{p + "batch-device", 1}
	if err := a.Import(ctx, mac, KindMAC, unhex(t, macKey)); err != nil {
		t.Fatalf("import mac key: %v", err)
	}

	t.Run("AN10922 vector", func(t *testing.T) {
		got, err := a.Diversify(ctx, master, unhex(t, an10922Input))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got[:], unhex(t, an10922Want)) {
			t.Fatalf("diversified key %X, want %s", got, an10922Want)
		}
		divs = append(divs, got)
		for _, n := range []int{16, 20, 31} {
			in := bytes.Repeat([]byte{byte(n)}, n)
			d, err := a.Diversify(ctx, master, in)
			if err != nil {
				t.Fatalf("input of %d bytes: %v", n, err)
			}
			divs = append(divs, d)
		}
	})

	t.Run("sign and verify", func(t *testing.T) {
		s, err := a.Signer(ctx, signer)
		if err != nil {
			t.Fatal(err)
		}
		pub, err := a.PublicKey(ctx, signer)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("hotlist manifest v42")
		sig, err := s.Sign(nil, msg, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if !Verify(pub, msg, sig) {
			t.Fatal("signature does not verify with the exported public key")
		}
		if Verify(pub, []byte("hotlist manifest v43"), sig) {
			t.Fatal("signature verifies for another message")
		}
		sigs = append(sigs, sig)
	})

	t.Run("MAC and verify", func(t *testing.T) {
		msg := []byte("batch 17 of device bus-0042")
		tag, err := a.MAC(ctx, mac, msg)
		if err != nil {
			t.Fatal(err)
		}
		ok, err := VerifyMAC(ctx, a, mac, msg, tag[:])
		if err != nil || !ok {
			t.Fatalf("VerifyMAC = %v, %v", ok, err)
		}
		tag[0] ^= 1
		if ok, _ := VerifyMAC(ctx, a, mac, msg, tag[:]); ok {
			t.Fatal("tampered tag verifies")
		}
		tag[0] ^= 1
		divs = append(divs, tag)
	})

	t.Run("errors", func(t *testing.T) {
		tests := []struct {
			name string
			err  error
			want error
		}{
			{"missing key", func() error { _, err := a.Diversify(ctx, Ref{p + "nope", 1}, make([]byte, 16)); return err }(), ErrNotFound},
			{"missing version", func() error { _, err := a.Diversify(ctx, Ref{master.Label, 9}, make([]byte, 16)); return err }(), ErrNotFound},
			{"sign with AES key", func() error { _, err := a.Signer(ctx, master); return err }(), ErrWrongKind},
			{"diversify with signing key", func() error { _, err := a.Diversify(ctx, signer, make([]byte, 16)); return err }(), ErrWrongKind},
			{"MAC with card master", func() error { _, err := a.MAC(ctx, master, nil); return err }(), ErrWrongKind},
			{"import twice", a.Import(ctx, master, KindCardMaster, make([]byte, 16)), ErrExists},
		}
		for _, tc := range tests {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("%s: error %v, want %v", tc.name, tc.err, tc.want)
			}
		}
		if _, err := a.Diversify(ctx, master, make([]byte, 32)); err == nil {
			t.Error("32-byte input accepted")
		}
	})

	t.Run("rotation keeps old versions", func(t *testing.T) {
		label := p + "card-topup"
		r1, err := a.Generate(ctx, label, KindCardMaster)
		if err != nil || r1.Version != 1 {
			t.Fatalf("first generate = %v, %v", r1, err)
		}
		in := unhex(t, an10922Input)
		d1, err := a.Diversify(ctx, r1, in)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := a.Generate(ctx, label, KindCardMaster)
		if err != nil || r2 != (Ref{label, 2}) {
			t.Fatalf("rotate = %v, %v", r2, err)
		}
		d1again, err := a.Diversify(ctx, r1, in)
		if err != nil || d1again != d1 {
			t.Fatalf("version 1 after rotation: %X, %v; want %X", d1again, err, d1)
		}
		d2, _ := a.Diversify(ctx, r2, in)
		if d2 == d1 {
			t.Fatal("version 2 gives the same card key as version 1")
		}
		newest, _ := a.Diversify(ctx, Ref{Label: label}, in)
		if newest != d2 {
			t.Fatal("version 0 does not resolve to the newest version")
		}
		if _, err := a.Generate(ctx, label, KindSigning); !errors.Is(err, ErrWrongKind) {
			t.Fatalf("generate signing key under an AES label: %v", err)
		}
		sref, err := a.Generate(ctx, p+"sign-tariff", KindSigning)
		if err != nil {
			t.Fatal(err)
		}
		s, err := a.Signer(ctx, sref)
		if err != nil {
			t.Fatal(err)
		}
		sig, err := s.Sign(nil, []byte("tariff"), crypto.Hash(0))
		if err != nil || !verifyPub(s.Public(), []byte("tariff"), sig) {
			t.Fatalf("generated signer: %v", err)
		}
		keys, err := a.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var found []Ref
		for _, k := range keys {
			if k.Ref.Label == label {
				found = append(found, k.Ref)
			}
		}
		if len(found) != 2 || found[0].Version != 1 || found[1].Version != 2 {
			t.Fatalf("Keys lists %v for %s, want versions 1 and 2", found, label)
		}
	})
	return divs, sigs
}

func verifyPub(pub crypto.PublicKey, msg, sig []byte) bool {
	p, ok := pub.(ed25519.PublicKey)
	return ok && Verify(p, msg, sig)
}
