package statement_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/hsm"
)

// BenchmarkStatement measures the statement's own work on a month of a
// city of 50 carriers, 10 categories and 2 funding sources (1000 lines,
// what 100 million taps roll up to; the store's share is
// clearing/store/postgres's BenchmarkStatement100M): sealing it in form
// 3 (parts, hash, Ed25519 signature), verifying it with the public key,
// and making, writing, reading and verifying one carrier's copy.
func BenchmarkStatement(b *testing.B) {
	ctx := context.Background()
	ks, err := hsm.CreateKeystore(filepath.Join(b.TempDir(), "keys"), []byte("pw"), hsm.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1})
	if err != nil {
		b.Fatal(err)
	}
	defer ks.Close()
	ref, err := ks.Generate(ctx, hsm.LabelSignStatement, hsm.KindSigning)
	if err != nil {
		b.Fatal(err)
	}
	pub, _ := ks.PublicKey(ctx, ref)
	seal, err := statement.Sealer(ctx, ks, ref, "o.koval")
	if err != nil {
		b.Fatal(err)
	}
	draft := store.Statement{Period: "2026-11", Closed: true, ClosedAt: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	for c := range 50 {
		for k := range 10 {
			for _, f := range []string{"city", "state"} {
				n := int64(10_000 + c*k)
				draft.Lines = append(draft.Lines, store.Line{Carrier: fmt.Sprintf("C%02d", c), Category: fmt.Sprint(10 + k), Funding: f,
					Rides: n, FareKop: n * 1500, CompensationKop: n * 1200})
			}
		}
	}
	st := draft
	if err := seal(ctx, &st); err != nil {
		b.Fatal(err)
	}
	b.Run("seal", func(b *testing.B) {
		for range b.N {
			s := draft
			if err := seal(ctx, &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify", func(b *testing.B) {
		for range b.N {
			if err := statement.VerifyWith(&st, pub); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("carrier copy", func(b *testing.B) {
		for range b.N {
			bundle, err := statement.NewCarrierBundle([]store.Statement{st}, pub, "C07")
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			if err := bundle.Write(&buf, time.UTC); err != nil {
				b.Fatal(err)
			}
			back, err := statement.ReadBundle(buf.Bytes())
			if err != nil {
				b.Fatal(err)
			}
			if vs, err := back.Verify(pub); err != nil || len(vs[0].Statement.Lines) != 20 {
				b.Fatal(err)
			}
		}
	})
}
