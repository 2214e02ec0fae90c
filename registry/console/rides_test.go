package console_test

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/validator/tap"
)

// ridesSeed is what seedRides adds to the fixture: Alice's replacement
// card and the rides of both her cards and of Bob's.
type ridesSeed struct {
	newCard registry.Card
	// aliceNov are the routes of the rides seedRides gives Alice in
	// November (the fixture has 8 more, all on route "5").
	aliceNov []string
	// bobRoute is the route of every ride seedRides gives Bob.
	bobRoute string
}

// seedRides replaces Alice's card (lost) with a new active one and
// stores rides of both her cards around November 2026, of every kind a
// validator records, and rides of Bob's card at the same instants on the
// same validators.
func seedRides(t *testing.T, f *fixture) ridesSeed {
	t.Helper()
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	if _, err := f.reg.Transition(f.ctx, sup, f.aliceCard.Number, registry.Change{To: registry.StatusLost, Reason: registry.ReasonLost}); err != nil {
		t.Fatal(err)
	}
	_, repl, err := f.reg.Replace(f.ctx, sup, f.aliceCard.Number, registry.Balance{})
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []registry.Status{registry.StatusPersonalised, registry.StatusActive} {
		if repl, err = f.reg.Transition(f.ctx, sup, repl.Number, registry.Change{To: to}); err != nil {
			t.Fatal(err)
		}
	}
	seed := ridesSeed{newCard: repl, bobRoute: "BOB-ONLY"}
	var taps []tap.Tap
	seq := uint64(0)
	add := func(card uint64, route string, at time.Time, change func(*tap.Tap)) {
		seq++
		tp := tap.Tap{Device: "TRAM-3", Seq: seq, Time: at.UTC(), Card: card, Carrier: "ELEKTROTRANS", Route: route,
			Result: tap.Accepted, Reason: "ok", Product: "purse", FareKop: 800, ChargedKop: 800, CardCommitted: true}
		if change != nil {
			change(&tp)
		}
		taps = append(taps, tp)
		if card == uint64(f.bobCard.Number) {
			return
		}
		if m := at.In(f.kyiv); m.Year() == 2026 && m.Month() == time.November {
			seed.aliceNov = append(seed.aliceNov, route)
		}
	}
	old, cur, bob := uint64(f.aliceCard.Number), uint64(repl.Number), uint64(f.bobCard.Number)
	kyiv := func(day, hour, minute int) time.Time { return time.Date(2026, 11, day, hour, minute, 0, 0, f.kyiv) }
	// Everyday rides on the new card, and Bob's on the same tram at the
	// same instants.
	for i := range 24 {
		at := kyiv(10+i/3, 7+i%3*5, 15)
		add(cur, fmt.Sprintf("A%02d", i), at, nil)
		add(bob, seed.bobRoute, at, nil)
	}
	// One of each kind of outcome.
	add(old, "A-DENIED", kyiv(2, 8, 0), func(t *tap.Tap) {
		t.Result, t.Reason, t.Product, t.ChargedKop = tap.Denied, "insufficient-funds", "", 0
	})
	add(old, "A-CODE", kyiv(2, 9, 0), func(t *tap.Tap) {
		t.Result, t.Reason, t.Product, t.ChargedKop = tap.Denied, "door-closed", "", 0
	})
	add(cur, "A-PAID", kyiv(20, 8, 0), func(t *tap.Tap) {
		t.Result, t.Reason, t.ChargedKop = tap.AlreadyPaid, "already-paid", 0
	})
	add(cur, "A-TORN", kyiv(21, 8, 0), func(t *tap.Tap) { t.CardCommitted = false })
	add(cur, "A-PASS", kyiv(22, 8, 0), func(t *tap.Tap) { t.Product, t.ChargedKop = "pass", 0 })
	add(cur, "A-BENEFIT", kyiv(30, 23, 30), func(t *tap.Tap) {
		t.Product, t.Category, t.Funding, t.FareKop, t.ChargedKop, t.CompensationKop = "benefit", "11", "state", 1500, 0, 1500
	})
	// Just outside November in Kyiv: the last minute of October and the
	// first hour of December (the fixture's current month).
	add(old, "A-OCTOBER", kyiv(1, 0, 0).Add(-time.Minute), nil)
	add(cur, "A-DECEMBER", time.Date(2026, 12, 1, 0, 30, 0, 0, f.kyiv), nil)
	add(bob, seed.bobRoute, time.Date(2026, 12, 1, 0, 30, 0, 0, f.kyiv), nil)
	if _, _, err := f.clr.AddTaps(f.ctx, taps); err != nil {
		t.Fatal(err)
	}
	return seed
}

// rideCells are the cells of one row of the rides table.
type rideCells struct {
	iso, at, card, carrier, route, result, product, fare, charged, category string
}

var rideRow = regexp.MustCompile(`<tr><td[^>]*><time datetime="([^"]+)">([^<]+)</time></td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td>\s*` +
	`<td[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td>\s*<td class="num"[^>]*>([^<]*)</td><td class="num"[^>]*>([^<]*)</td><td[^>]*>([^<]*)</td></tr>`)

// groupedCard is a card number as pages show it: four groups of four
// digits with no-break spaces between.
var groupedCard = regexp.MustCompile(`^[0-9]{4}\x{a0}[0-9]{4}\x{a0}[0-9]{4}\x{a0}[0-9]{4}$`)

// rides returns the rows of the rides table of a page, and the links to
// the newer and older pages ("" when none).
func rides(t *testing.T, body string) (rows []rideCells, newer, older string) {
	t.Helper()
	table := ""
	if i := strings.Index(body, `<table id="rides"`); i >= 0 {
		table = body[i:]
		table = table[:strings.Index(table, "</table>")]
	}
	for _, m := range rideRow.FindAllStringSubmatch(table, -1) {
		if !groupedCard.MatchString(m[3]) {
			t.Errorf("ride of card %q: want the number grouped by four", m[3])
		}
		// The test compares bare numbers.
		rows = append(rows, rideCells{m[1], m[2], strings.ReplaceAll(m[3], "\u00a0", ""), m[4], m[5], m[6], m[7], m[8], m[9], m[10]})
	}
	if n := strings.Count(table, "<tr>") - 1; n != len(rows) && !(n == -1 && len(rows) == 0) {
		t.Fatalf("the table has %d rides, the test read %d of them:\n%s", n, len(rows), table)
	}
	link := func(id string) string {
		m := regexp.MustCompile(`<a href="([^"]+)" id="` + id + `"`).FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		return strings.ReplaceAll(m[1], "&amp;", "&")
	}
	return rows, link("rides-newer"), link("rides-older")
}

func routes(rows []rideCells) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.route)
	}
	return out
}

func TestResidentRides(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	seed := seedRides(t, f)
	alice, _ := f.login(aliceUser)

	// The current month (December in the fixture) is the default.
	r := alice.get("/me").want(t, http.StatusOK, "my data")
	if !strings.Contains(r.body, `<option value="2026-12" selected>December 2026</option>`) {
		t.Errorf("the month selector does not start at December 2026:\n%s", r.body)
	}
	rows, newer, older := rides(t, r.body)
	if got := routes(rows); !slices.Equal(got, []string{"A-DECEMBER"}) || newer != "" || older != "" {
		t.Errorf("December: rides %v, links %q %q; want A-DECEMBER alone, no pages", got, newer, older)
	}
	// The selector offers the months since her first card was issued.
	if !strings.Contains(r.body, `<option value="2026-11">November 2026</option>`) {
		t.Errorf("the month selector does not offer November 2026")
	}

	// November: 8 fixture rides and seedRides', newest first, 25 a page.
	r = alice.get("/me?month=2026-11").want(t, http.StatusOK, "November")
	first, newer, older := rides(t, r.body)
	if len(first) != 25 || newer != "" || older == "" {
		t.Fatalf("November's first page: %d rides, links %q %q; want 25 and a link to older rides", len(first), newer, older)
	}
	all := slices.Clone(first)
	next := older
	for pages := 1; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("the older links go on and on")
		}
		r = alice.get(next).want(t, http.StatusOK, "older rides")
		var page []rideCells
		page, newer, next = rides(t, r.body)
		if newer == "" || len(page) == 0 || len(page) > 25 {
			t.Fatalf("an older page: %d rides, newer link %q", len(page), newer)
		}
		all = append(all, page...)
	}
	// Back up: the newer link of the second page leads to the first.
	r = alice.get(older).want(t, http.StatusOK, "second page")
	_, newer, _ = rides(t, r.body)
	r = alice.get(newer).want(t, http.StatusOK, "back to the first page")
	if back, n, o := rides(t, r.body); !slices.Equal(back, first) || n != "" || o != older {
		t.Errorf("back at the first page: %v (links %q %q)\nwant %v (links \"\" %q)", routes(back), n, o, routes(first), older)
	}

	want := append(slices.Clone(seed.aliceNov), "5", "5", "5", "5", "5", "5", "5", "5")
	if got := routes(all); !sameElements(got, want) {
		t.Errorf("November's rides over all pages: %v\nwant (in any order) %v", got, want)
	}
	for i := 1; i < len(all); i++ {
		if all[i].iso > all[i-1].iso {
			t.Errorf("ride %d (%s) is newer than ride %d (%s): want newest first", i, all[i].iso, i-1, all[i-1].iso)
		}
	}
	byRoute := map[string]rideCells{}
	for _, row := range all {
		byRoute[row.route] = row
		if row.card != f.aliceCard.Number.String() && row.card != seed.newCard.Number.String() {
			t.Errorf("a ride of card %s, not one of Alice's", row.card)
		}
	}
	oldCard, newCard := f.aliceCard.Number.String(), seed.newCard.Number.String()
	for route, want := range map[string]rideCells{
		"A-DENIED": {at: "2026-11-02 08:00", card: oldCard, carrier: "ELEKTROTRANS", result: "refused: not enough money on the card",
			product: "—", fare: "8.00", charged: "0.00", category: "—"},
		"A-CODE": {at: "2026-11-02 09:00", card: oldCard, carrier: "ELEKTROTRANS", result: "refused: door-closed",
			product: "—", fare: "8.00", charged: "0.00", category: "—"},
		"A-PAID": {at: "2026-11-20 08:00", card: newCard, carrier: "ELEKTROTRANS", result: "already paid on this vehicle; not charged again",
			product: "card purse", fare: "8.00", charged: "0.00", category: "—"},
		// The card left before it was written: nothing was taken from it.
		"A-TORN": {at: "2026-11-21 08:00", card: newCard, carrier: "ELEKTROTRANS", result: "not completed: the card left the validator too early; nothing was charged",
			product: "card purse", fare: "8.00", charged: "0.00", category: "—"},
		"A-PASS": {at: "2026-11-22 08:00", card: newCard, carrier: "ELEKTROTRANS", result: "accepted",
			product: "travel pass", fare: "8.00", charged: "0.00", category: "—"},
		// 21:30 UTC on the 30th is 23:30 in Kyiv, still November.
		"A-BENEFIT": {at: "2026-11-30 23:30", card: newCard, carrier: "ELEKTROTRANS", result: "accepted",
			product: "benefit", fare: "15.00", charged: "0.00", category: "pensioner (11)"},
		"A00": {at: "2026-11-10 07:15", card: newCard, carrier: "ELEKTROTRANS", result: "accepted",
			product: "card purse", fare: "8.00", charged: "8.00", category: "—"},
	} {
		got := byRoute[route]
		want.iso, want.route = got.iso, route
		if got != want {
			t.Errorf("ride %s:\n got %+v\nwant %+v", route, got, want)
		}
	}
	if got := byRoute["5"]; got.card != oldCard || got.carrier == "" || got.result != "accepted" || got.product != "benefit" {
		t.Errorf("a fixture ride: %+v", got)
	}
	if all[0].route != "A-BENEFIT" {
		t.Errorf("the newest November ride is %s, want A-BENEFIT", all[0].route)
	}
}

// sameElements reports whether a and b hold the same strings as often.
func sameElements(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

// TestResidentRidesOnlyOwn checks that a resident sees the rides of their
// own cards only, whatever the request says, and that nothing of them
// goes to the log.
func TestResidentRidesOnlyOwn(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	seed := seedRides(t, f)
	alice, _ := f.login(aliceUser)
	bob, _ := f.login(bobUser)
	bobCard, oldCard, newCard := f.bobCard.Number.String(), f.aliceCard.Number.String(), seed.newCard.Number.String()

	noBob := func(what, body string) {
		t.Helper()
		// The language links repeat the request as it was typed; the
		// page's content is in main.
		main := body[strings.Index(body, "<main"):strings.Index(body, "</main>")]
		for _, bad := range []string{bobCard, seed.bobRoute, f.bob.Name} {
			if strings.Contains(main, bad) {
				t.Errorf("%s shows Bob's %q", what, bad)
			}
		}
	}
	for _, path := range []string{
		"/me?month=2026-11", "/me?month=2026-12",
		fmt.Sprintf("/me?month=2026-11&resident=%d", f.bob.ID),
		"/me?month=2026-11&cards=" + bobCard,
	} {
		r := alice.get(path).want(t, http.StatusOK, path)
		noBob(path, r.body)
		rows, _, _ := rides(t, r.body)
		if len(rows) == 0 {
			t.Errorf("%s: no rides; the check looks at nothing", path)
		}
	}
	// Asking for Bob's card by number is refused as for a card that does
	// not exist, and shows none of his rides.
	for _, path := range []string{"/me?month=2026-11&card=" + bobCard, "/me?card=" + bobCard, "/me?card=0000000000000001", "/me?card=x"} {
		r := alice.get(path).want(t, http.StatusNotFound, path)
		noBob(path, r.body)
		if !strings.Contains(r.body, "You have no card with this number") {
			t.Errorf("%s: the refusal does not say why:\n%s", path, r.body)
		}
	}
	// One of her own cards alone.
	r := alice.get("/me?month=2026-11&card="+oldCard).want(t, http.StatusOK, "the old card alone")
	rows, _, _ := rides(t, r.body)
	for _, row := range rows {
		if row.card != oldCard {
			t.Errorf("the old card's page shows a ride of card %s", row.card)
		}
	}
	if got := routes(rows); !sameElements(got, []string{"A-DENIED", "A-CODE", "5", "5", "5", "5", "5", "5", "5", "5"}) {
		t.Errorf("the old card's November rides: %v", got)
	}
	if !strings.Contains(r.body, `<option value="`+oldCard+`" selected>`) || !strings.Contains(r.body, `<option value="`+newCard+`">`) {
		t.Errorf("the card selector does not offer both of Alice's cards with the old one chosen")
	}
	// Bob sees his own and nothing of Alice's; with one card he gets no
	// card selector.
	r = bob.get("/me?month=2026-11").want(t, http.StatusOK, "Bob's November")
	rows, _, _ = rides(t, r.body)
	if len(rows) != 25 || strings.Contains(r.body, `id="card"`) {
		t.Errorf("Bob's November: %d rides (want a full page of 25), card selector shown: %v", len(rows), strings.Contains(r.body, `id="card"`))
	}
	for _, row := range rows {
		if row.card != bobCard {
			t.Errorf("Bob's page shows a ride of card %s", row.card)
		}
	}
	for _, bad := range []string{oldCard, newCard, "A-DENIED", "A00"} {
		if strings.Contains(r.body, bad) {
			t.Errorf("Bob's page shows Alice's %q", bad)
		}
	}
	// Rides are linked to people: the log has neither card numbers nor
	// what was asked.
	log := f.log.String()
	for _, bad := range []string{oldCard, newCard, bobCard, "month=", "older=", "card="} {
		if strings.Contains(log, bad) {
			t.Errorf("the console's log holds %q:\n%s", bad, log)
		}
	}
	// Each view is a read of her own record, in her access log.
	es, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: aliceUser, Role: registry.RoleResident, Resident: f.alice.ID}}, registry.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if last := es[len(es)-1]; last.User != registry.ResidentUser(f.alice.ID) || last.Purpose != registry.PurposeOwnView {
		t.Errorf("last audit entry %+v: want Alice's own view", last)
	}
}

func TestResidentRidesBadRequests(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	seedRides(t, f)
	alice, _ := f.login(aliceUser)
	before, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: f.alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{
		"/me?month=2026-13":                        "Write the month as YYYY-MM",
		"/me?month=november":                       "Write the month as YYYY-MM",
		"/me?month=2026-11&older=garbage":          "link to a page of rides is broken",
		"/me?month=2026-11&newer=1.0.TRAM-3":       "link to a page of rides is broken",
		"/me?older=1.1.TRAM-3&newer=1.1.TRAM-3":    "link to a page of rides is broken",
		"/me?month=2026-11&older=123.x.TRAM-3":     "link to a page of rides is broken",
		"/me?month=2026-11&older=1.99999999999999": "link to a page of rides is broken",
	} {
		r := alice.get(path).want(t, http.StatusBadRequest, path)
		if !strings.Contains(r.body, want) {
			t.Errorf("%s: the page does not say %q:\n%s", path, want, r.body)
		}
	}
	// A refused request read nothing, so it is not in the access log.
	after, err := f.reg.Audit(f.ctx, registry.Access{Actor: registry.Actor{User: "test", Role: registry.RoleAuditor}}, registry.AuditQuery{Resident: f.alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("refused requests added %d entries to Alice's access log: %+v", len(after)-len(before), after[len(before):])
	}
	// A month without rides, and one far back, still draw the page.
	for _, m := range []string{"2026-10", "2019-01", "2031-05"} {
		r := alice.get("/me?month="+m).want(t, http.StatusOK, m)
		rows, n, o := rides(t, r.body)
		if m == "2026-10" {
			if got := routes(rows); !slices.Equal(got, []string{"A-OCTOBER"}) {
				t.Errorf("October: %v, want A-OCTOBER alone", got)
			}
		} else if len(rows) != 0 || n != "" || o != "" || !strings.Contains(r.body, ": no rides.") {
			t.Errorf("%s: %d rides, links %q %q; want none, said so", m, len(rows), n, o)
		}
		if !strings.Contains(r.body, `<option value="`+m+`" selected>`) {
			t.Errorf("%s: the selector does not show the month asked for", m)
		}
	}
}

// TestResidentWithoutCard checks the page of a resident who has no card
// yet: no selector, no rides, and no query of clearing to fail.
func TestResidentWithoutCard(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	sup := registry.Access{Actor: registry.Actor{User: "fixture", Role: registry.RoleSupervisor}, Purpose: "test fixture"}
	res, err := f.reg.AddResident(f.ctx, sup, registry.Resident{RegistryNumber: storetest.RegistryNumber(3), Name: "Шевченко Марія",
		BirthDate: registry.Date{Year: 1990, Month: time.May, Day: 5}, Contact: "maria@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	f.residents["maria"] = res
	maria, _ := f.login("maria")
	r := maria.get("/me?month=2026-11").want(t, http.StatusOK, "a resident without a card")
	if !strings.Contains(r.body, "You have no card, so there are no rides to show.") || strings.Contains(r.body, `id="month"`) {
		t.Errorf("the page of a resident without a card:\n%s", r.body)
	}
	maria.get("/me?card="+f.aliceCard.Number.String()).want(t, http.StatusNotFound, "someone else's card")
}
