package golden

import (
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
)

// TestGoldenFilesAgree checks the hand-worked files against each other,
// without the system: each ride's previous ride is the card's newest
// committed one, the purses in README.md are what the rides charged, and
// README.md's statements add up to the compensable rides of expected.csv.
// It catches a slip of the pen before TestGoldenMonth blames the system
// for it.
func TestGoldenFilesAgree(t *testing.T) {
	m := loadMonth(t)
	closing, err := time.ParseInLocation(timeLayout, closeAt, m.loc)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{} // card -> its newest ride on the card
	spent := map[string]int64{}
	sums := map[[2]string]map[string]store.Line{}
	// named are the rides a later tap names as the card's previous ride:
	// the card's own evidence that it holds them.
	named := map[string]bool{}
	for _, r := range m.rides {
		named[r.want.prev] = true
	}
	for _, r := range m.rides {
		e := r.want
		// FORMAT.md, Terms: the previous ride is the newest record of the
		// card's log; steps 1 and 2 do not look at it.
		if e.step > 2 && e.prev != last[r.card] {
			t.Errorf("%s: previous ride %q, but the card's newest committed ride is %q", r.id, e.prev, last[r.card])
		}
		onCard := e.result == "accepted" && (e.committed == "yes" || e.committed == "unknown")
		if e.committed == "unknown" && !r.lost {
			t.Errorf("%s: commit unknown, but the card is not made to lose the commit's answer (torn \"N+lost\")", r.id)
		}
		if e.committed == "no" && (r.tear == 0 || r.lost) {
			t.Errorf("%s: not committed, but the card does not leave before the commit", r.id)
		}
		if onCard {
			last[r.card] = r.id
			spent[r.card] += e.chargedKop
		}
		if e.result != "accepted" && (e.chargedKop != 0 || e.owedKop != 0 || e.product != "") {
			t.Errorf("%s: %s but charged %s, owed %s, product %q", r.id, e.result, uah(e.chargedKop), uah(e.owedKop), e.product)
		}
		if e.product == "benefit" != (e.category != "") && e.reason != "insufficient-funds" {
			t.Errorf("%s: product %q with category %q", r.id, e.product, e.category)
		}
		// FORMAT.md, What is owed: compensable rides, in the statement of
		// their local month, or of the next open one when they arrive
		// after their own was closed. A commit-unknown ride is committed
		// once a later tap names it (clearing/rerate).
		if e.result != "accepted" || !(e.committed == "yes" || e.committed == "unknown" && named[r.id]) || e.owedKop == 0 {
			continue
		}
		period := r.at.In(m.loc).Format("2006-01")
		key := [2]string{period, ""}
		if d := m.byDevice[r.device]; period == november && !d.online.IsZero() && d.online.After(closing) {
			key = [2]string{december, november}
		}
		if sums[key] == nil {
			sums[key] = map[string]store.Line{}
		}
		lk := r.want.category + " " + r.want.funding + " " + m.byDevice[r.device].carrier
		l := sums[key][lk]
		l.Adjusts, l.Carrier, l.Category, l.Funding = key[1], m.byDevice[r.device].carrier, e.category, e.funding
		l.Add(store.Line{Rides: 1, FareKop: e.fareKop, ChargedKop: e.chargedKop, CompensationKop: e.owedKop})
		sums[key][lk] = l
	}
	for _, c := range m.cards {
		if end := c.purseKop - spent[c.label]; end != c.endKop {
			t.Errorf("card %s: starts with %s and the rides charge %s, so it ends with %s; README.md says %s",
				c.label, uah(c.purseKop), uah(spent[c.label]), uah(end), uah(c.endKop))
		}
	}
	for key, want := range m.statements {
		var lines []store.Line
		var total store.Line
		for _, l := range sums[key] {
			lines = append(lines, l)
			total.Add(l)
		}
		var sum store.Line
		for _, l := range want.lines {
			sum.Add(l)
		}
		if sum != want.total {
			t.Errorf("README.md statement %s%s: the lines add up to %+v, the total row says %+v", key[0], adjusting(key[1]), sum, want.total)
		}
		checkStatement(t, "README.md against expected.csv: statement "+key[0]+adjusting(key[1]), lines, total, want)
	}
	for key := range sums {
		if _, ok := m.statements[key]; !ok {
			t.Errorf("expected.csv has compensable rides for the statement %s%s, README.md has no table for it", key[0], adjusting(key[1]))
		}
	}
}
