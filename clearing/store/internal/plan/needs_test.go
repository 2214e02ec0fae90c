package plan

import (
	"slices"
	"testing"
	"time"
)

func TestNeedsRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 3, 9, 0, 0, 123000, time.UTC)
	in := []Need{{Card: 1 << 62, Time: at, Prev: at.Add(-time.Hour), Judged: true}, {Card: 7, Time: at}}
	out, err := ParseNeeds(AppendNeeds(nil, in))
	if err != nil || !slices.EqualFunc(in, out, func(a, b Need) bool {
		return a.Card == b.Card && a.Time.Equal(b.Time) && a.Prev.Equal(b.Prev) && a.Judged == b.Judged
	}) {
		t.Fatalf("ParseNeeds(AppendNeeds(%+v)) = %+v, %v", in, out, err)
	}
}

// FuzzParseNeeds: a queue row is read back whole or refused.
func FuzzParseNeeds(f *testing.F) {
	f.Add(AppendNeeds(nil, []Need{{Card: 5, Time: time.Unix(1, 0), Judged: true}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ns, err := ParseNeeds(b)
		if err != nil {
			return
		}
		if got := AppendNeeds(nil, ns); len(got) > len(b) {
			t.Fatalf("%d needs re-encode to %d bytes from %d", len(ns), len(got), len(b))
		}
	})
}
