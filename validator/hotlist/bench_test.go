package hotlist

import (
	"crypto/ed25519"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
)

const benchCards = 10_000_000

type benchFixture struct {
	keys KeyLookup
	file []byte
	list *List
	err  error
}

// bench10M is built once per test binary: 10 million valid card numbers
// under one issuer (the realistic, clustered case), about one serial in
// seven blocked.
var bench10M = sync.OnceValue(func() *benchFixture {
	signer := seedKey(3)
	fx := &benchFixture{keys: KeyMap(map[int]ed25519.PublicKey{1: signer.Public().(ed25519.PublicKey)})}
	rng := rand.New(rand.NewPCG(11, 12))
	entries := make([]Entry, benchCards)
	for i := range entries {
		n, err := card.NewNumber(2201, uint64(i)*7+rng.Uint64N(7))
		if err != nil {
			fx.err = err
			return fx
		}
		entries[i] = Entry{Card: uint64(n), Reason: Reason(1 + rng.IntN(6))}
	}
	if fx.file, fx.err = Build(entries, 1, time.Now(), signer, 1); fx.err != nil {
		return fx
	}
	fx.list, fx.err = Load(fx.file, fx.keys)
	return fx
})

func fixture(b *testing.B) *benchFixture {
	b.Helper()
	fx := bench10M()
	if fx.err != nil {
		b.Fatal(fx.err)
	}
	return fx
}

// BenchmarkLookup10M looks up a mix of listed cards and valid cards that
// are not listed, in random order so caches do not flatter the figure.
func BenchmarkLookup10M(b *testing.B) {
	fx := fixture(b)
	rng := rand.New(rand.NewPCG(13, 14))
	queries := make([]uint64, 1<<20)
	for i := range queries {
		if i%2 == 0 {
			queries[i] = fx.list.cards[rng.IntN(len(fx.list.cards))]
		} else {
			n, _ := card.NewNumber(2201, rng.Uint64N(7*benchCards))
			queries[i] = uint64(n)
		}
	}
	found := 0
	i := 0
	for b.Loop() {
		if fx.list.Contains(queries[i&(len(queries)-1)]) {
			found++
		}
		i++
	}
	if found < i/2 {
		b.Fatalf("%d of %d lookups found, want at least half", found, i)
	}
}

// BenchmarkLoad10M verifies and loads a signed full file of 10 million
// cards, and reports the memory the list takes.
func BenchmarkLoad10M(b *testing.B) {
	fx := fixture(b)
	b.SetBytes(int64(len(fx.file)))
	var l *List
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for b.Loop() {
		var err error
		if l, err = Load(fx.file, fx.keys); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if l.Len() != benchCards {
		b.Fatalf("loaded %d cards, want %d", l.Len(), benchCards)
	}
	b.ReportMetric(float64(l.SizeBytes())/benchCards, "bytes/card")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/benchCards, "heap-bytes/card")
	b.ReportMetric(float64(len(fx.file))/benchCards, "file-bytes/card")
	runtime.KeepAlive(l)
}

// BenchmarkApplyDelta10M applies a day's changes (1000 cards unblocked,
// 1000 blocked) to a list of 10 million.
func BenchmarkApplyDelta10M(b *testing.B) {
	fx := fixture(b)
	signer := seedKey(3)
	var add []Entry
	var remove []uint64
	for i := range 1000 {
		remove = append(remove, fx.list.cards[i*9000])
		n, _ := card.NewNumber(2201, 7*benchCards+uint64(i))
		add = append(add, Entry{Card: uint64(n), Reason: ReasonLost})
	}
	delta, err := BuildDelta(add, remove, 1, 2, time.Now(), signer, 1)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		l, err := fx.list.Apply(delta, fx.keys)
		if err != nil || l.Len() != benchCards {
			b.Fatalf("apply: %v", err)
		}
	}
}
