package update

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/hotlist"
)

// publisher serves signed hotlists as the registry does: deltas from the
// versions it remembers, the full list otherwise.
type publisher struct {
	mu     sync.Mutex
	signer ed25519.PrivateKey
	lists  map[uint64][]hotlist.Entry // every version's entries
	newest uint64
	full   int // full lists served
	fail   bool
}

func (p *publisher) publish(t *testing.T, entries []hotlist.Entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.newest++
	p.lists[p.newest] = entries
}

func (p *publisher) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail {
		http.Error(w, "registry down for maintenance", http.StatusServiceUnavailable)
		return
	}
	issued := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if s := r.URL.Query().Get("since"); s != "" {
		since, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			http.Error(w, "bad since", http.StatusBadRequest)
			return
		}
		if since == p.newest {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if old, ok := p.lists[since]; ok {
			add, remove, err := hotlist.Diff(old, p.lists[p.newest])
			if err == nil {
				data, err := hotlist.BuildDelta(add, remove, since, p.newest, issued, p.signer, 1)
				if err == nil {
					w.Write(data)
					return
				}
			}
		}
	}
	data, err := hotlist.Build(p.lists[p.newest], p.newest, issued, p.signer, 1)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	p.full++
	w.Write(data)
}

func number(t *testing.T, serial uint64) uint64 {
	n, err := card.NewNumber(1001, serial)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(n)
}

func TestFetcherFollowsThePublisher(t *testing.T) {
	ctx := context.Background()
	pub, priv, _ := ed25519.GenerateKey(nil)
	p := &publisher{signer: priv, lists: map[uint64][]hotlist.Entry{}}
	srv := httptest.NewServer(p)
	defer srv.Close()
	keys := hotlist.KeyMap(map[int]ed25519.PublicKey{1: pub})
	h, err := hotlist.Open(ctx, hotlist.Config{Dir: t.TempDir()}, keys)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Base: srv.URL + "/v1/validator", Hotlist: h, Keys: keys}

	lost, stolen := number(t, 1), number(t, 2)
	p.publish(t, []hotlist.Entry{{Card: lost, Reason: hotlist.ReasonLost}})
	if ok, err := f.Once(ctx); err != nil || !ok || !h.Contains(lost) || h.Version() != 1 {
		t.Fatalf("first fetch: applied %v, %v; version %d", ok, err, h.Version())
	}
	if ok, err := f.Once(ctx); err != nil || ok {
		t.Fatalf("nothing new: applied %v, %v", ok, err)
	}
	p.publish(t, []hotlist.Entry{{Card: lost, Reason: hotlist.ReasonLost}, {Card: stolen, Reason: hotlist.ReasonStolen}})
	if ok, err := f.Once(ctx); err != nil || !ok || !h.Contains(stolen) || h.Version() != 2 || p.full != 1 {
		t.Fatalf("delta fetch: applied %v, %v; version %d, %d full lists served", ok, err, h.Version(), p.full)
	}
	// The publisher forgot version 2: it serves the full list, which fits.
	p.publish(t, []hotlist.Entry{{Card: stolen, Reason: hotlist.ReasonStolen}})
	delete(p.lists, 2)
	if ok, err := f.Once(ctx); err != nil || !ok || h.Contains(lost) || h.Version() != 3 {
		t.Fatalf("full fetch: applied %v, %v; version %d", ok, err, h.Version())
	}

	p.fail = true
	if _, err := f.Once(ctx); !errors.Is(err, ErrStatus) {
		t.Fatalf("publisher down: %v", err)
	}
	if h.Version() != 3 || !h.Contains(stolen) {
		t.Fatal("a failed fetch changed the list in force")
	}
}

func TestFetcherRefusesForgedLists(t *testing.T) {
	ctx := context.Background()
	pub, _, _ := ed25519.GenerateKey(nil)
	_, forger, _ := ed25519.GenerateKey(nil)
	p := &publisher{signer: forger, lists: map[uint64][]hotlist.Entry{}}
	p.publish(t, nil)
	srv := httptest.NewServer(p)
	defer srv.Close()
	keys := hotlist.KeyMap(map[int]ed25519.PublicKey{1: pub})
	h, err := hotlist.Open(ctx, hotlist.Config{Dir: t.TempDir()}, keys)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Base: srv.URL, Hotlist: h, Keys: keys}
	if _, err := f.Once(ctx); !errors.Is(err, hotlist.ErrSignature) {
		t.Fatalf("forged list: %v", err)
	}
	if h.Version() != 0 {
		t.Fatal("a forged list was applied")
	}
}

// TestScheduleBacksOffFromSecondsToMinutes checks the waits between polls:
// seconds after the first failure, doubling to minutes, back to the
// interval after a success, Retry-After honoured within the cap.
func TestScheduleBacksOffFromSecondsToMinutes(t *testing.T) {
	s := newSchedule(0, 0, 0)
	s.jitter = func() float64 { return 0.5 } // no spread
	fail := errors.New("registry unreachable")
	var got []time.Duration
	for range 10 {
		got = append(got, s.next(fail))
	}
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second,
		64 * time.Second, 128 * time.Second, 256 * time.Second, 5 * time.Minute, 5 * time.Minute}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("waits after failures %v, want %v", got, want)
	}
	if w := s.next(nil); w != DefaultInterval {
		t.Fatalf("after a success: %v, want %v", w, DefaultInterval)
	}
	if w := s.next(fail); w != DefaultMinBackoff {
		t.Fatalf("first failure after a success: %v, want %v", w, DefaultMinBackoff)
	}
	s.next(nil)
	busy := &statusError{status: "503 Service Unavailable", retryAfter: parseRetryAfter("60")}
	if !errors.Is(busy, ErrStatus) {
		t.Fatal("a status error does not match ErrStatus")
	}
	if w := s.next(busy); w != time.Minute {
		t.Fatalf("Retry-After 60: %v, want 1m", w)
	}
	if w := s.next(&statusError{retryAfter: parseRetryAfter("86400")}); w != DefaultMaxBackoff {
		t.Fatalf("Retry-After of a day: %v, want the cap %v", w, DefaultMaxBackoff)
	}
	for _, v := range []string{"", "0", "-5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"} {
		if d := parseRetryAfter(v); d != 0 {
			t.Errorf("Retry-After %q: %v, want none", v, d)
		}
	}
	// Jitter stays within 20% either way.
	for _, j := range []float64{0, 0.999} {
		s := newSchedule(time.Minute, time.Second, time.Minute)
		s.jitter = func() float64 { return j }
		if w := s.next(nil); w < 48*time.Second || w > 72*time.Second {
			t.Errorf("jitter %v: interval wait %v outside 48s..72s", j, w)
		}
	}
}

// TestRunRetriesSoonAfterAFailure: a validator that starts while the
// publisher is down gets the list soon after it comes back, not an
// interval later.
func TestRunRetriesSoonAfterAFailure(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub, priv, _ := ed25519.GenerateKey(nil)
	p := &publisher{signer: priv, lists: map[uint64][]hotlist.Entry{}, fail: true}
	p.publish(t, nil)
	srv := httptest.NewServer(p)
	defer srv.Close()
	keys := hotlist.KeyMap(map[int]ed25519.PublicKey{1: pub})
	h, err := hotlist.Open(ctx, hotlist.Config{Dir: t.TempDir()}, keys)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fetcher{Base: srv.URL, Hotlist: h, Keys: keys, Interval: time.Hour, MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	time.Sleep(100 * time.Millisecond) // a few failed polls
	p.mu.Lock()
	p.fail = false
	p.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for h.Version() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no list 10 s after the publisher came back, with an hour's interval: failures are not retried soon")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v, want context.Canceled", err)
	}
}
