package agent

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/journal"
	"github.com/citycard/transit/validator/tap"
)

type fakeSession struct {
	card      fare.Card
	evidence  Evidence
	commitErr error
	committed *fare.Decision
}

func (s *fakeSession) Card() fare.Card    { return s.card }
func (s *fakeSession) Evidence() Evidence { return s.evidence }
func (s *fakeSession) Commit(_ context.Context, d fare.Decision, rec *tap.Tap) error {
	if rec.Seq == 0 {
		return errors.New("commit before the tap was journalled")
	}
	if s.commitErr != nil {
		return s.commitErr
	}
	s.committed = &d
	return nil
}

type fakeCards struct {
	sess *fakeSession
	err  error
}

func (f fakeCards) Begin(context.Context, apdu.Transport, []byte, time.Time) (Session, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.sess, nil
}

var testTariff = &fare.Tariff{Version: 4, FareKop: map[string]int64{"ATP-1": 1500},
	Categories: map[string]fare.Category{"11": {Code: "11", DiscountPct: 100, Funding: "state"}}}

func newAgent(t *testing.T, cards CardReader) (*Agent, *journal.Journal) {
	t.Helper()
	j, err := journal.Open(context.Background(), filepath.Join(t.TempDir(), "j.db"), "dev-1")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	now := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	return &Agent{Device: fare.Device{ID: "dev-1", Carrier: "ATP-1", Route: "12", Vehicle: "0417"},
		Tariff: testTariff, Cards: cards, Journal: j, Now: func() time.Time { return now }}, j
}

func journalled(t *testing.T, j *journal.Journal) []tap.Tap {
	t.Helper()
	taps, err := j.Unsent(context.Background(), 100)
	if err != nil {
		t.Fatal(err)
	}
	return taps
}

func TestTapOutcomes(t *testing.T) {
	benefit := fare.Card{Number: 42, PurseKop: 0, Entitlements: []fare.Entitlement{{Category: "11",
		ValidFrom: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), ValidTo: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	for _, tc := range []struct {
		name          string
		card          fare.Card
		commitErr     error
		wantResult    string
		wantReason    string
		wantGreen     bool
		wantCommitted bool
	}{
		{"purse ride", fare.Card{Number: 7, PurseKop: 5000}, nil, "accepted", "ok", true, true},
		{"benefit ride", benefit, nil, "accepted", "ok", true, true},
		{"insufficient funds", fare.Card{Number: 7, PurseKop: 100}, nil, "denied", fare.ReasonInsufficientFunds, false, true},
		{"torn before commit", fare.Card{Number: 7, PurseKop: 5000},
			fmt.Errorf("debit: %w", apdu.ErrCardRemoved), "error", ReasonTorn, false, false},
		{"card refused the debit", fare.Card{Number: 7, PurseKop: 5000},
			&Refusal{Reason: fare.ReasonInsufficientFunds, Err: errors.New("boundary error")}, "denied", fare.ReasonInsufficientFunds, false, true},
		{"card write failed", fare.Card{Number: 7, PurseKop: 5000},
			errors.New("boundary error"), "error", ReasonWriteFail, false, false},
		{"card lost during the commit", fare.Card{Number: 7, PurseKop: 5000},
			fmt.Errorf("commit: %w: %w", ErrCommitUnknown, apdu.ErrCardRemoved), "error", ReasonTorn, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prev := tap.CardRide{Device: 3, Seq: 9, Time: time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC), Carrier: 1, Route: 12, Product: "purse", ChargedKop: 1500}
			sess := &fakeSession{card: tc.card, commitErr: tc.commitErr, evidence: Evidence{DeviceNumber: 17, Prev: prev}}
			a, j := newAgent(t, fakeCards{sess: sess})
			ev, err := a.Tap(context.Background(), nil, []byte{1})
			if err != nil {
				t.Fatal(err)
			}
			if ev.Result != tc.wantResult || ev.Reason != tc.wantReason || ev.Green != tc.wantGreen || ev.Committed != tc.wantCommitted {
				t.Fatalf("event %+v, want result %s reason %s green %v committed %v", ev, tc.wantResult, tc.wantReason, tc.wantGreen, tc.wantCommitted)
			}
			taps := journalled(t, j)
			if len(taps) != 1 {
				t.Fatalf("journal holds %d settled taps, want 1", len(taps))
			}
			got := taps[0]
			if got.Seq != 1 || got.Card != tc.card.Number || got.CardCommitted != tc.wantCommitted || got.TariffVersion != 4 || got.Carrier != "ATP-1" {
				t.Fatalf("journalled %+v", got)
			}
			if got.DeviceNumber != 17 || got.Prev != prev {
				t.Fatalf("journalled evidence %d %+v, want 17 %+v", got.DeviceNumber, got.Prev, prev)
			}
			if unknown := errors.Is(tc.commitErr, ErrCommitUnknown); got.CommitUnknown != unknown {
				t.Fatalf("journalled commit unknown %v, want %v", got.CommitUnknown, unknown)
			}
			if tc.wantResult == "denied" && (got.Result != tap.Denied || got.ChargedKop != 0 || got.CompensationKop != 0) {
				t.Fatalf("a denied tap was journalled as %+v", got)
			}
			if tc.wantResult == "accepted" && sess.committed == nil {
				t.Fatal("accepted without writing the card")
			}
			if tc.wantResult == "denied" && tc.commitErr == nil && sess.committed != nil {
				t.Fatal("a denied tap wrote the card")
			}
		})
	}
}

func TestUnreadableCardIsNotJournalled(t *testing.T) {
	a, j := newAgent(t, fakeCards{err: errors.New("authentication error: not our card")})
	ev, err := a.Tap(context.Background(), nil, []byte{1})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Reason != ReasonUnreadable || ev.Green {
		t.Fatalf("event %+v", ev)
	}
	if _, ok := ev.Tap(); ok || len(journalled(t, j)) != 0 {
		t.Fatal("a card that could not be read was journalled")
	}
}

func TestJournalFailureStopsTheTap(t *testing.T) {
	sess := &fakeSession{card: fare.Card{Number: 7, PurseKop: 5000}}
	a, j := newAgent(t, fakeCards{sess: sess})
	j.Close()
	if _, err := a.Tap(context.Background(), nil, []byte{1}); err == nil {
		t.Fatal("tap succeeded with a closed journal")
	}
	if sess.committed != nil {
		t.Fatal("the card was written although the tap was not journalled")
	}
}

// fakeReader presents cards from a list; a nil entry is a reader failure.
type fakeReader struct {
	mu       sync.Mutex
	cards    []Presented
	removals int
	done     chan struct{}
}

type fakeCard struct{ uid []byte }

func (fakeCard) Transmit([]byte) ([]byte, error) { return nil, errors.New("unused") }
func (c fakeCard) UID() ([]byte, error)          { return c.uid, nil }

func (r *fakeReader) WaitCard(ctx context.Context) (Presented, error) {
	r.mu.Lock()
	if len(r.cards) == 0 {
		r.mu.Unlock()
		close(r.done)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c := r.cards[0]
	r.cards = r.cards[1:]
	r.mu.Unlock()
	if c == nil {
		return nil, errors.New("reader unplugged")
	}
	return c, nil
}

func (r *fakeReader) WaitRemoval(context.Context, Presented) error {
	r.mu.Lock()
	r.removals++
	r.mu.Unlock()
	return nil
}

func TestLoopSurvivesReaderFailures(t *testing.T) {
	sess := &fakeSession{card: fare.Card{Number: 7, PurseKop: 50000}}
	a, j := newAgent(t, fakeCards{sess: sess})
	r := &fakeReader{cards: []Presented{fakeCard{[]byte{1}}, nil, nil, fakeCard{[]byte{2}}}, done: make(chan struct{})}
	var shown []Event
	l := &Loop{Agent: a, Reader: r, Show: func(e Event) { shown = append(shown, e) }, MaxBackoff: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- l.Run(ctx) }()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("loop stalled")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if len(shown) != 2 || r.removals != 2 || len(journalled(t, j)) != 2 {
		t.Fatalf("shown %d events, %d removals, %d taps; want 2 each", len(shown), r.removals, len(journalled(t, j)))
	}
}

func TestMetricsCountTaps(t *testing.T) {
	reg := prometheus.NewRegistry()
	sess := &fakeSession{card: fare.Card{Number: 7, PurseKop: 5000}}
	a, j := newAgent(t, fakeCards{sess: sess})
	a.Metrics = NewMetrics(reg)
	reg.MustRegister(journal.NewCollector(j))
	for range 3 {
		if _, err := a.Tap(context.Background(), nil, []byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(a.Metrics.taps.WithLabelValues("accepted", "ok")); got != 3 {
		t.Fatalf("accepted taps %v, want 3", got)
	}
	if n := testutil.CollectAndCount(a.Metrics.cardTx); n != 1 {
		t.Fatalf("card transaction histogram: %d series", n)
	}
	want := "# HELP transit_validator_journal_backlog_taps Journalled taps not yet acknowledged by the bus.\n" +
		"# TYPE transit_validator_journal_backlog_taps gauge\ntransit_validator_journal_backlog_taps 3\n"
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "transit_validator_journal_backlog_taps"); err != nil {
		t.Fatal(err)
	}
}
