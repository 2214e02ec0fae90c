package hsm

import (
	"context"
	"crypto"
	"testing"
)

func benchBackend(b *testing.B, a Admin) {
	ctx := context.Background()
	p := prefix(b)
	master := Ref{p + "card-validator", 1}
	signer := Ref{p + "sign-hotlist", 1}
	if err := a.Import(ctx, master, KindCardMaster, unhex(b, an10922Master)); err != nil {
		b.Fatal(err)
	}
	if err := a.Import(ctx, signer, KindSigning, unhex(b, signSeed)); err != nil {
		b.Fatal(err)
	}
	in := unhex(b, an10922Input)
	b.Run("diversify", func(b *testing.B) {
		for b.Loop() {
			if _, err := a.Diversify(ctx, master, in); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "diversifications/s")
	})
	b.Run("sign", func(b *testing.B) {
		s, err := a.Signer(ctx, signer)
		if err != nil {
			b.Fatal(err)
		}
		msg := make([]byte, 64)
		for b.Loop() {
			if _, err := s.Sign(nil, msg, crypto.Hash(0)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "signatures/s")
	})
}

func BenchmarkKeystore(b *testing.B) {
	ks, _ := newKeystore(b)
	benchBackend(b, ks)
}
