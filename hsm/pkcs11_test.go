//go:build cgo

package hsm

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"testing"

	"github.com/miekg/pkcs11"

	"github.com/citycard/transit/simulator/testenv"
)

func openToken(t testing.TB) *PKCS11 {
	t.Helper()
	env := testenv.SoftHSM(t)
	p, err := OpenPKCS11(PKCS11Config{Module: env.Module, Token: env.Token, PIN: env.PIN})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestBackendsAgree runs the contract on both backends with the same
// imported keys and checks that they give identical card keys, MACs and
// (Ed25519 being deterministic) signatures.
func TestBackendsAgree(t *testing.T) {
	tok := openToken(t)
	ks, _ := newKeystore(t)
	var softDiv, tokDiv [][16]byte
	var softSig, tokSig [][]byte
	t.Run("software", func(t *testing.T) { softDiv, softSig = contract(t, ks) })
	t.Run("pkcs11", func(t *testing.T) { tokDiv, tokSig = contract(t, tok) })
	if len(softDiv) == 0 || len(softDiv) != len(tokDiv) {
		t.Fatalf("results: %d software, %d pkcs11", len(softDiv), len(tokDiv))
	}
	for i := range softDiv {
		if softDiv[i] != tokDiv[i] {
			t.Errorf("result %d: software %X, pkcs11 %X", i, softDiv[i], tokDiv[i])
		}
	}
	for i := range softSig {
		if !bytes.Equal(softSig[i], tokSig[i]) {
			t.Errorf("signature %d differs between backends", i)
		}
	}
}

func TestPKCS11RefusesShortInput(t *testing.T) {
	tok := openToken(t)
	ctx := context.Background()
	ref := Ref{prefix(t) + "card-desk", 1}
	if err := tok.Import(ctx, ref, KindCardMaster, unhex(t, an10922Master)); err != nil {
		t.Fatal(err)
	}
	// 0x01||UID||AID is 11 bytes: plain CMAC would differ from AN10922.
	if _, err := tok.Diversify(ctx, ref, unhex(t, "04782E21801D803042F5")); err == nil {
		t.Fatal("PKCS#11 backend accepted a short input it cannot diversify correctly")
	}
}

func TestPKCS11WrongPIN(t *testing.T) {
	env := testenv.SoftHSM(t)
	_, err := OpenPKCS11(PKCS11Config{Module: env.Module, Token: env.Token, PIN: env.PIN + "0"})
	if !errors.Is(err, ErrBadPIN) {
		t.Fatalf("wrong PIN: %v, want ErrBadPIN", err)
	}
	_, err = OpenPKCS11(PKCS11Config{Module: env.Module, Token: "no-such-token", PIN: env.PIN})
	if err == nil {
		t.Fatal("opened a token that does not exist")
	}
}

// TestPKCS11KeysCannotBeRead tries to read generated keys out of the token.
func TestPKCS11KeysCannotBeRead(t *testing.T) {
	tok := openToken(t)
	ctx := context.Background()
	p := prefix(t)
	aesRef, err := tok.Generate(ctx, p+"card-issuer", KindCardMaster)
	if err != nil {
		t.Fatal(err)
	}
	edRef, err := tok.Generate(ctx, p+"sign-statement", KindSigning)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tok.Signer(ctx, edRef)
	if err != nil {
		t.Fatal(err)
	}
	if sig, err := s.Sign(nil, []byte("statement"), crypto.Hash(0)); err != nil || !verifyPub(s.Public(), []byte("statement"), sig) {
		t.Fatalf("token signature does not verify: %v", err)
	}

	tok.mu.Lock()
	defer tok.mu.Unlock()
	// A wrapping key that would accept anything, to show the refusal comes
	// from the target key's attributes.
	wrap, err := tok.ctx.GenerateKey(tok.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, true),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer tok.ctx.DestroyObject(tok.sess, wrap)
	for _, tc := range []struct {
		ref  Ref
		kind Kind
	}{{aesRef, KindCardMaster}, {edRef, KindSigning}} {
		k, err := tok.getLocked(tc.ref, "test", tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		attrs, err := tok.ctx.GetAttributeValue(tok.sess, k.handle, []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, nil),
			pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, nil),
		})
		if err != nil || len(attrs) != 2 || !bytes.Equal(attrs[0].Value, []byte{1}) || !bytes.Equal(attrs[1].Value, []byte{0}) {
			t.Errorf("%s: CKA_SENSITIVE/CKA_EXTRACTABLE = %v, %v; want true/false", tc.ref, attrs, err)
		}
		if v, err := tok.ctx.GetAttributeValue(tok.sess, k.handle, []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_VALUE, nil)}); err == nil {
			t.Errorf("%s: CKA_VALUE was readable: %x", tc.ref, v[0].Value)
		}
		mech := pkcs11.CKM_AES_KEY_WRAP
		if tc.kind == KindSigning {
			mech = pkcs11.CKM_AES_KEY_WRAP_PAD
		}
		if w, err := tok.ctx.WrapKey(tok.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(uint(mech), nil)}, wrap, k.handle); err == nil {
			t.Errorf("%s: wrapped out: %x", tc.ref, w)
		}
	}
}

func BenchmarkPKCS11(b *testing.B) { benchBackend(b, openToken(b)) }
