//go:build cgo

package cardmac_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/clearing/cardmac"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/simulator/testenv"
)

// tokenKeys derives Transaction MAC keys in a PKCS#11 token, from a master
// imported under a label of its own (the test token is shared).
type tokenKeys struct {
	tok *hsm.PKCS11
	ref hsm.Ref
}

func (k tokenKeys) TMACKey(ctx context.Context, uid []byte, version int) (cardkey.Key, error) {
	a := card.AIDTransport.Bytes()
	v, err := k.tok.Diversify(ctx, k.ref, hsm.CardInput(uid, a[:], []byte(cardkey.SystemID)))
	return cardkey.Key{AID: card.AIDTransport, Version: uint8(version), Value: v}, err
}

// softHSMKeys is the city's software keystore for issuing, and the same
// Transaction MAC master in SoftHSM2 for clearing.
func softHSMKeys(t testing.TB) (*cardkey.Source, tokenKeys) {
	t.Helper()
	env := testenv.SoftHSM(t)
	tok, err := hsm.OpenPKCS11(hsm.PKCS11Config{Module: env.Module, Token: env.Token, PIN: env.PIN})
	must(t, "open token", err)
	t.Cleanup(func() { tok.Close() })
	ks, issuer := cityKeys(t)
	master := make([]byte, 16)
	rand.Read(master)
	ctx := context.Background()
	must(t, "import", ks.Import(ctx, hsm.Ref{Label: hsm.LabelTMACMaster, Version: 2}, hsm.KindTMACMaster, master))
	// Cards get the generation of their role masters: make it 2 as well.
	for _, r := range hsm.Roles {
		_, err := ks.Generate(ctx, hsm.CardMasterLabel(r), hsm.KindCardMaster)
		must(t, "rotate", err)
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	ref := hsm.Ref{Label: "cardmac-test-" + hex.EncodeToString(suffix), Version: 1}
	must(t, "import into the token", tok.Import(ctx, ref, hsm.KindTMACMaster, master))
	return issuer, tokenKeys{tok: tok, ref: ref}
}

// TestVerifyWithSoftHSM: clearing on a PKCS#11 token verifies what the
// software keystore's cards signed.
func TestVerifyWithSoftHSM(t *testing.T) {
	issuer, tok := softHSMKeys(t)
	taps := rides(t, issuer)
	v := &cardmac.Verifier{Keys: tok}
	vd, why, err := v.Verify(context.Background(), &taps[1])
	if err != nil || vd != cardmac.Signed {
		t.Fatalf("%s, %v, %v", vd, why, err)
	}
	taps[1].ChargedKop++
	if vd, _, _ := v.Verify(context.Background(), &taps[1]); vd != cardmac.Invalid {
		t.Fatalf("changed tap: %s", vd)
	}
}

// BenchmarkVerifySoftHSM is the verification rate with the card key
// diversified in SoftHSM2.
func BenchmarkVerifySoftHSM(b *testing.B) {
	issuer, tok := softHSMKeys(b)
	taps := rides(b, issuer)
	v := &cardmac.Verifier{Keys: tok}
	tp := taps[1]
	for b.Loop() {
		if vd, why, err := v.Verify(context.Background(), &tp); err != nil || vd != cardmac.Signed {
			b.Fatalf("%s %v %v", vd, why, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifications/s")
}
