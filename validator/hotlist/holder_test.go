package hotlist

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// mustRegistry registers c in a pedantic registry, which checks that the
// descriptions and metrics agree.
func mustRegistry(t *testing.T, c prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return reg
}

func quietConfig(dir string) Config {
	return Config{Dir: dir, Log: slog.New(slog.DiscardHandler)}
}

func dirVersions(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, strings.TrimLeft(strings.TrimSuffix(e.Name(), fileSuffix), "0"))
	}
	return names
}

func TestHolderPersistence(t *testing.T) {
	ctx := context.Background()
	signer, kv, keys := hsmKey(t)
	dir := filepath.Join(t.TempDir(), "hotlist")
	rng := rand.New(rand.NewPCG(7, 8))

	h, err := Open(ctx, quietConfig(dir), keys)
	if err != nil {
		t.Fatal(err)
	}
	if h.Version() != 0 || h.Contains(1) || !h.Stale(t0) || h.Age(t0) != math.MaxInt64 {
		t.Fatalf("empty holder: version %d, stale %v, age %v", h.Version(), h.Stale(t0), h.Age(t0))
	}

	v1 := genEntries(rng, 1000)
	must := func(data []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	apply := func(h *Holder, data []byte) {
		t.Helper()
		if _, err := h.Apply(ctx, data, keys); err != nil {
			t.Fatal(err)
		}
	}
	apply(h, must(Build(v1, 1, t0, signer, kv)))
	v2 := append(slices.Clone(v1[10:]), Entry{mustNumber(t, 2201, 99_000_000), ReasonStolen})
	add, rm, err := Diff(v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	apply(h, must(BuildDelta(add, rm, 1, 2, t0.Add(time.Hour), signer, kv)))
	checkList(t, h.Current(), v2)

	// Reopen: the full file and the delta are replayed.
	h2, err := Open(ctx, quietConfig(dir), keys)
	if err != nil {
		t.Fatal(err)
	}
	if h2.Version() != 2 || !h2.IssuedAt().Equal(t0.Add(time.Hour)) {
		t.Fatalf("reopened at version %d issued %v, want 2 at %v", h2.Version(), h2.IssuedAt(), t0.Add(time.Hour))
	}
	checkList(t, h2.Current(), v2)
	if got := dirVersions(t, dir); !slices.Equal(got, []string{"1", "2"}) {
		t.Errorf("files %v, want 1 and 2", got)
	}

	// A full file makes the older files unnecessary; a delta follows it.
	v3 := genEntries(rng, 500)
	apply(h2, must(Build(v3, 3, t0.Add(2*time.Hour), signer, kv)))
	if got := dirVersions(t, dir); !slices.Equal(got, []string{"3"}) {
		t.Errorf("files after full 3: %v, want only 3", got)
	}
	apply(h2, must(BuildDelta(nil, []uint64{v3[0].Card}, 3, 4, t0.Add(3*time.Hour), signer, kv)))

	// A damaged newest delta costs that delta only; a crash's temp file goes.
	if err := os.WriteFile(h2.path(4), []byte("not a hotlist"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, tempPrefix+"123"+tempSuffix), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	h3, err := Open(ctx, quietConfig(dir), keys)
	if err != nil {
		t.Fatal(err)
	}
	if h3.Version() != 3 {
		t.Fatalf("after damage: version %d, want 3", h3.Version())
	}
	checkList(t, h3.Current(), v3)
	if got := dirVersions(t, dir); !slices.Equal(got, []string{"3", "4"}) {
		t.Errorf("files %v, want 3 and 4 (temp file removed)", got)
	}

	// Rollback across a restart: version 2 again is refused.
	if _, err := h3.Apply(ctx, must(Build(v2, 2, t0, signer, kv)), keys); !errors.Is(err, ErrRollback) {
		t.Errorf("old full after reopen: %v, want ErrRollback", err)
	}

	// Files signed by a key the validator no longer trusts are not loaded.
	other := seedKey(9)
	h4, err := Open(ctx, quietConfig(dir), KeyMap(map[int]ed25519.PublicKey{kv: other.Public().(ed25519.PublicKey)}))
	if err != nil {
		t.Fatal(err)
	}
	if h4.Version() != 0 {
		t.Errorf("with an untrusted key: version %d, want 0", h4.Version())
	}
}

func TestHolderRefusesWithoutChange(t *testing.T) {
	ctx := context.Background()
	signer := seedKey(1)
	keys := KeyMap(map[int]ed25519.PublicKey{1: signer.Public().(ed25519.PublicKey)})
	dir := t.TempDir()
	h, err := Open(ctx, quietConfig(dir), keys)
	if err != nil {
		t.Fatal(err)
	}
	c := mustNumber(t, 2201, 1)
	full, err := Build([]Entry{{c, ReasonLost}}, 5, t0, signer, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply(ctx, full, keys); err != nil {
		t.Fatal(err)
	}
	delta, err := BuildDelta(nil, []uint64{c}, 4, 6, t0, signer, 1)
	if err != nil {
		t.Fatal(err)
	}
	bad := slices.Clone(full)
	bad[len(bad)-1] ^= 1
	for _, tc := range []struct {
		data []byte
		want error
	}{{full, ErrRollback}, {delta, ErrWrongBase}, {bad, ErrSignature}} {
		if _, err := h.Apply(ctx, tc.data, keys); !errors.Is(err, tc.want) {
			t.Errorf("err %v, want %v", err, tc.want)
		}
	}
	if h.Version() != 5 || !h.Contains(c) {
		t.Errorf("after refusals: version %d, contains %v", h.Version(), h.Contains(c))
	}
	if got := dirVersions(t, dir); !slices.Equal(got, []string{"5"}) {
		t.Errorf("files %v, want only 5", got)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	next, err := Build(nil, 7, t0, signer, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply(cancelled, next, keys); !errors.Is(err, context.Canceled) || h.Version() != 5 {
		t.Errorf("cancelled apply: %v, version %d", err, h.Version())
	}
}

// TestConcurrentApply reads while versions are applied. Version v blocks
// marker cards 1..v and not v+1, so a reader that saw a half-applied list
// or a version that does not match its content would notice. Run with
// -race.
func TestConcurrentApply(t *testing.T) {
	ctx := context.Background()
	signer := seedKey(1)
	keys := KeyMap(map[int]ed25519.PublicKey{1: signer.Public().(ed25519.PublicKey)})
	rng := rand.New(rand.NewPCG(9, 10))
	bulk := genEntries(rng, 20_000)
	const versions = 30
	marker := func(v int) uint64 { return mustNumber(t, 5555, uint64(v)) }
	files := make([][]byte, versions+1)
	var err error
	if files[1], err = Build(append(slices.Clone(bulk), Entry{marker(1), ReasonFraud}), 1, t0, signer, 1); err != nil {
		t.Fatal(err)
	}
	for v := 2; v <= versions; v++ {
		if v%10 == 0 { // a full file now and then
			es := slices.Clone(bulk)
			for i := 1; i <= v; i++ {
				es = append(es, Entry{marker(i), ReasonFraud})
			}
			files[v], err = Build(es, uint64(v), t0, signer, 1)
		} else {
			files[v], err = BuildDelta([]Entry{{marker(v), ReasonFraud}}, nil, uint64(v-1), uint64(v), t0, signer, 1)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	h, err := Open(ctx, quietConfig(t.TempDir()), keys)
	if err != nil {
		t.Fatal(err)
	}

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				l := h.Current()
				v := int(l.Version())
				h.Contains(bulk[int(reads.Add(1))%len(bulk)].Card) // through the Holder too
				if v > 0 && (!l.Contains(marker(v)) || !l.Contains(marker(1)) || l.Contains(marker(v+1)) || l.Len() != len(bulk)+v) {
					errs <- fmt.Sprintf("inconsistent list at version %d (%s): %d cards", v, l.Manifest().Kind, l.Len())
					return
				}
			}
		})
	}
	for v := 1; v <= versions; v++ {
		if _, err := h.Apply(ctx, files[v], keys); err != nil {
			t.Fatalf("version %d: %v", v, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if h.Version() != versions || reads.Load() == 0 {
		t.Errorf("version %d after %d reads", h.Version(), reads.Load())
	}
}

func TestStaleAndCollector(t *testing.T) {
	ctx := context.Background()
	signer := seedKey(1)
	keys := KeyMap(map[int]ed25519.PublicKey{1: signer.Public().(ed25519.PublicKey)})
	cfg := quietConfig(t.TempDir())
	cfg.MaxAge = 6 * time.Hour
	h, err := Open(ctx, cfg, keys)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	col := NewCollector(h, func() time.Time { return now })
	const none = `
# HELP transit_hotlist_age_seconds Seconds since the registry issued the loaded hotlist; +Inf when none is loaded.
# TYPE transit_hotlist_age_seconds gauge
transit_hotlist_age_seconds +Inf
# HELP transit_hotlist_stale 1 when the loaded hotlist is older than the validator's max age or none is loaded, else 0.
# TYPE transit_hotlist_stale gauge
transit_hotlist_stale 1
# HELP transit_hotlist_version Version of the hotlist the validator decides with; 0 when none is loaded.
# TYPE transit_hotlist_version gauge
transit_hotlist_version 0
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(none)); err != nil {
		t.Error(err)
	}
	full, err := Build(nil, 12, t0, signer, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Apply(ctx, full, keys); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after time.Duration
		stale bool
	}{{-time.Minute, false}, {0, false}, {6 * time.Hour, false}, {6*time.Hour + time.Millisecond, true}, {30 * 24 * time.Hour, true}} {
		now = t0.Add(tc.after)
		if h.Age(now) != tc.after || h.Stale(now) != tc.stale {
			t.Errorf("at +%v: age %v, stale %v; want %v, %v", tc.after, h.Age(now), h.Stale(now), tc.after, tc.stale)
		}
	}
	now = t0.Add(90 * time.Minute)
	const fresh = `
# HELP transit_hotlist_age_seconds Seconds since the registry issued the loaded hotlist; +Inf when none is loaded.
# TYPE transit_hotlist_age_seconds gauge
transit_hotlist_age_seconds 5400
# HELP transit_hotlist_stale 1 when the loaded hotlist is older than the validator's max age or none is loaded, else 0.
# TYPE transit_hotlist_stale gauge
transit_hotlist_stale 0
# HELP transit_hotlist_version Version of the hotlist the validator decides with; 0 when none is loaded.
# TYPE transit_hotlist_version gauge
transit_hotlist_version 12
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(fresh)); err != nil {
		t.Error(err)
	}
	now = t0.Add(7 * time.Hour)
	const loaded = `
# HELP transit_hotlist_age_seconds Seconds since the registry issued the loaded hotlist; +Inf when none is loaded.
# TYPE transit_hotlist_age_seconds gauge
transit_hotlist_age_seconds 25200
# HELP transit_hotlist_stale 1 when the loaded hotlist is older than the validator's max age or none is loaded, else 0.
# TYPE transit_hotlist_stale gauge
transit_hotlist_stale 1
# HELP transit_hotlist_version Version of the hotlist the validator decides with; 0 when none is loaded.
# TYPE transit_hotlist_version gauge
transit_hotlist_version 12
`
	if err := testutil.CollectAndCompare(col, strings.NewReader(loaded)); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(mustRegistry(t, col)); err != nil || n != 3 {
		t.Errorf("registered collector gives %d metrics, %v", n, err)
	}
	if h.MaxAge() != 6*time.Hour {
		t.Errorf("MaxAge %v", h.MaxAge())
	}
}

func TestOpenConfig(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, Config{}, nil); err == nil {
		t.Error("Open without a directory succeeded")
	}
	if _, err := Open(ctx, Config{Dir: t.TempDir(), MaxAge: -time.Second}, nil); err == nil {
		t.Error("Open with a negative max age succeeded")
	}
	h, err := Open(ctx, quietConfig(t.TempDir()), nil)
	if err != nil || h.MaxAge() != DefaultMaxAge {
		t.Errorf("zero MaxAge: %v, %v", h, err)
	}
}
