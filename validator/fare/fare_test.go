package fare

import (
	"testing"
	"time"

	"github.com/citycard/transit/validator/tap"
)

type setHotlist map[uint64]bool

func (s setHotlist) Contains(n uint64) bool { return s[n] }

var now = time.Date(2026, 11, 3, 8, 0, 0, 0, time.UTC)

func testTariff() *Tariff {
	return &Tariff{
		Version: 3,
		FareKop: map[string]int64{"KTE": 1500, "PRIV": 2000},
		Categories: map[string]Category{
			"PENS": {Code: "PENS", DiscountPct: 100, Funding: "city"},
			"STUD": {Code: "STUD", DiscountPct: 50, Funding: "state"},
		},
		Passback: 2 * time.Minute,
	}
}

func TestDecide(t *testing.T) {
	dev := Device{ID: "V-1", Carrier: "KTE", Route: "12", Vehicle: "AA1"}
	valid := func(cat string) []Entitlement {
		return []Entitlement{{Category: cat, ValidFrom: now.AddDate(0, -1, 0), ValidTo: now.AddDate(1, 0, 0)}}
	}
	cases := []struct {
		name      string
		card      Card
		dev       Device
		hot       setHotlist
		result    tap.Result
		reason    string
		charged   int64
		comp      int64
		category  string
		writeCard bool
	}{
		{name: "purse pays full fare", card: Card{Number: 1, PurseKop: 5000},
			result: tap.Accepted, reason: ReasonOK, charged: 1500, writeCard: true},
		{name: "pensioner rides free, city compensates", card: Card{Number: 2, Entitlements: valid("PENS")},
			result: tap.Accepted, reason: ReasonOK, comp: 1500, category: "PENS", writeCard: true},
		{name: "student pays half", card: Card{Number: 3, PurseKop: 750, Entitlements: valid("STUD")},
			result: tap.Accepted, reason: ReasonOK, charged: 750, comp: 750, category: "STUD", writeCard: true},
		{name: "best benefit wins", card: Card{Number: 4, Entitlements: append(valid("STUD"), valid("PENS")...)},
			result: tap.Accepted, reason: ReasonOK, comp: 1500, category: "PENS", writeCard: true},
		{name: "expired entitlement gives nothing", card: Card{Number: 5, PurseKop: 100, Entitlements: []Entitlement{
			{Category: "PENS", ValidFrom: now.AddDate(-2, 0, 0), ValidTo: now}}},
			result: tap.Denied, reason: ReasonInsufficientFunds},
		{name: "unknown category gives nothing", card: Card{Number: 6, PurseKop: 1500, Entitlements: valid("XXXX")},
			result: tap.Accepted, reason: ReasonOK, charged: 1500, writeCard: true},
		{name: "insufficient funds", card: Card{Number: 7, PurseKop: 1499},
			result: tap.Denied, reason: ReasonInsufficientFunds},
		{name: "hotlisted beats benefit", card: Card{Number: 8, Entitlements: valid("PENS")}, hot: setHotlist{8: true},
			result: tap.Denied, reason: ReasonHotlisted},
		{name: "blocked on card", card: Card{Number: 9, Blocked: true, PurseKop: 5000},
			result: tap.Denied, reason: ReasonBlocked},
		{name: "expired card", card: Card{Number: 10, Expiry: now, PurseKop: 5000},
			result: tap.Denied, reason: ReasonExpired},
		{name: "anti-passback on same vehicle", card: Card{Number: 11, PurseKop: 5000,
			LastTap: &LastTap{Time: now.Add(-30 * time.Second), Vehicle: "AA1"}},
			result: tap.AlreadyPaid, reason: ReasonPassback},
		{name: "passback window over", card: Card{Number: 12, PurseKop: 5000,
			LastTap: &LastTap{Time: now.Add(-2 * time.Minute), Vehicle: "AA1"}},
			result: tap.Accepted, reason: ReasonOK, charged: 1500, writeCard: true},
		{name: "other vehicle is a new ride", card: Card{Number: 13, PurseKop: 5000,
			LastTap: &LastTap{Time: now.Add(-10 * time.Second), Vehicle: "BB2"}},
			result: tap.Accepted, reason: ReasonOK, charged: 1500, writeCard: true},
		{name: "carrier without fare", card: Card{Number: 14, PurseKop: 5000}, dev: Device{Carrier: "NONE", Vehicle: "X"},
			result: tap.Denied, reason: ReasonNoFare},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := dev
			if c.dev.Carrier != "" {
				d = c.dev
			}
			got := Decide(c.card, testTariff(), c.hot, d, now)
			if got.Result != c.result || got.Reason != c.reason {
				t.Fatalf("got %v/%s, want %v/%s", got.Result, got.Reason, c.result, c.reason)
			}
			if got.ChargedKop != c.charged || got.CompensationKop != c.comp || got.Category != c.category {
				t.Fatalf("charged %d comp %d cat %q, want %d %d %q", got.ChargedKop, got.CompensationKop, got.Category,
					c.charged, c.comp, c.category)
			}
			if got.LogTap != c.writeCard || got.DebitKop != c.charged {
				t.Fatalf("card writes: log %v debit %d", got.LogTap, got.DebitKop)
			}
			if got.Result == tap.Accepted && got.ChargedKop+got.CompensationKop != got.FareKop {
				t.Fatalf("charged %d + compensation %d != fare %d", got.ChargedKop, got.CompensationKop, got.FareKop)
			}
		})
	}
}

func BenchmarkDecide(b *testing.B) {
	tf := testTariff()
	hot := setHotlist{99: true}
	c := Card{Number: 3, PurseKop: 5000, Entitlements: []Entitlement{{Category: "STUD", ValidFrom: now.AddDate(0, -1, 0), ValidTo: now.AddDate(1, 0, 0)}}}
	d := Device{ID: "V-1", Carrier: "KTE", Route: "12", Vehicle: "AA1"}
	for b.Loop() {
		Decide(c, tf, hot, d, now)
	}
}
