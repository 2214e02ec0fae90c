package registry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// TestLifecycleTable pins the card lifecycle: any change to it must be
// deliberate, here and in the docs.
func TestLifecycleTable(t *testing.T) {
	want := map[registry.Status]string{
		registry.StatusOrdered:      "personalised",
		registry.StatusPersonalised: "active lost stolen",
		registry.StatusActive:       "blocked lost stolen expired",
		registry.StatusBlocked:      "active replaced expired",
		registry.StatusLost:         "replaced expired",
		registry.StatusStolen:       "replaced expired",
		registry.StatusReplaced:     "",
		registry.StatusExpired:      "",
	}
	for _, from := range registry.Statuses {
		var got []string
		for _, to := range registry.Statuses {
			if registry.CanTransition(from, to) {
				got = append(got, string(to))
			}
		}
		if strings.Join(got, " ") != want[from] {
			t.Errorf("from %s: allowed %v, want %s", from, got, want[from])
		}
	}
	// Nothing leads back to ordered, and every status but ordered is
	// reachable.
	reach := map[registry.Status]bool{registry.StatusOrdered: true}
	for from, tos := range registry.Transitions() {
		for _, to := range tos {
			if to == registry.StatusOrdered {
				t.Errorf("%s -> ordered is allowed", from)
			}
			reach[to] = true
		}
	}
	for _, s := range registry.Statuses {
		if !reach[s] {
			t.Errorf("status %s is unreachable", s)
		}
	}
	// The copy is a copy.
	tr := registry.Transitions()
	tr[registry.StatusReplaced] = []registry.Status{registry.StatusActive}
	if registry.CanTransition(registry.StatusReplaced, registry.StatusActive) {
		t.Error("changing Transitions() changed the lifecycle")
	}
}

func TestTransitionErrorSaysWhatIsAllowed(t *testing.T) {
	err := error(&registry.TransitionError{Card: 1001_0000_0000_0015, From: registry.StatusLost, To: registry.StatusActive})
	if !errors.Is(err, registry.ErrTransition) || !strings.Contains(err.Error(), "replaced, expired") {
		t.Errorf("%v; want ErrTransition listing replaced, expired", err)
	}
	err = &registry.TransitionError{From: registry.StatusExpired, To: registry.StatusActive}
	if !strings.Contains(err.Error(), "final") {
		t.Errorf("%v; want it to say expired is final", err)
	}
}

func TestLiveAndHotlisted(t *testing.T) {
	for _, s := range registry.Statuses {
		live := s != registry.StatusReplaced && s != registry.StatusExpired
		hot := s == registry.StatusBlocked || s == registry.StatusLost || s == registry.StatusStolen || s == registry.StatusReplaced
		if s.Live() != live || s.Hotlisted() != hot {
			t.Errorf("%s: Live %v Hotlisted %v", s, s.Live(), s.Hotlisted())
		}
	}
	if registry.Status("frozen").Live() {
		t.Error("unknown status is live")
	}
}

// TestPermissionTable pins who may do what.
func TestPermissionTable(t *testing.T) {
	want := map[registry.Role][]registry.Action{
		registry.RoleDesk: {registry.ActRegister, registry.ActReadPersonal, registry.ActEntitlements, registry.ActCards,
			registry.ActPersonalise, registry.ActExpiring},
		registry.RoleSupervisor: {registry.ActRegister, registry.ActReadPersonal, registry.ActEntitlements, registry.ActCards,
			registry.ActPersonalise, registry.ActExpiring, registry.ActImport, registry.ActCardEvents, registry.ActTokens,
			registry.ActStatements, registry.ActCloseStatements, registry.ActReconciliation},
		registry.RoleFinance: {registry.ActCardEvents, registry.ActStatements, registry.ActReconciliation,
			registry.ActReadHeld, registry.ActDecideHeld},
		registry.RoleAuditor:  {registry.ActAudit, registry.ActCardEvents, registry.ActReadHeld},
		registry.RoleResident: {registry.ActOwnData},
		registry.RoleService:  {registry.ActCardEvents, registry.ActIntrospect},
		registry.RoleOperator: {registry.ActMetrics, registry.ActReconciliation},
	}
	for _, r := range registry.Roles {
		for _, a := range registry.Actions {
			if got := registry.Allowed(r, a); got != slices.Contains(want[r], a) {
				t.Errorf("Allowed(%s, %s) = %v", r, a, got)
			}
		}
	}
	for _, a := range []registry.Action{registry.ActReadPersonal, registry.ActPersonalise, registry.ActExpiring, registry.ActRegister} {
		for _, r := range []registry.Role{registry.RoleFinance, registry.RoleAuditor, registry.RoleResident, registry.RoleService, registry.RoleOperator} {
			if registry.Allowed(r, a) {
				t.Errorf("%s may %s: only desk staff see personal data", r, a)
			}
		}
	}
	if registry.Allowed("admin", registry.ActAudit) {
		t.Error("an unknown role is allowed something")
	}
}

func TestPermitAndPurpose(t *testing.T) {
	desk := registry.Access{Actor: registry.Actor{User: "o", Role: registry.RoleDesk}}
	if err := desk.PermitRead(registry.ActReadPersonal, 5); !errors.Is(err, registry.ErrNoPurpose) || !strings.Contains(err.Error(), "purpose") {
		t.Errorf("read without purpose: %v", err)
	}
	desk.Purpose = strings.Repeat("x", registry.MaxPurposeLen+1)
	if err := desk.PermitRead(registry.ActReadPersonal, 5); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("read with an overlong purpose: %v", err)
	}
	desk.Purpose = "renewal"
	if err := desk.PermitRead(registry.ActReadPersonal, 5); err != nil {
		t.Errorf("read with purpose: %v", err)
	}
	me := registry.Access{Actor: registry.Actor{User: "r", Role: registry.RoleResident, Resident: 7}}
	if err := me.Permit(registry.ActOwnData, 7); err != nil {
		t.Errorf("own data: %v", err)
	}
	if err := me.Permit(registry.ActOwnData, 8); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("someone else's data: %v", err)
	}
}

func TestTokens(t *testing.T) {
	actor := registry.Actor{User: "olena", Role: registry.RoleDesk}
	s1, t1, err := registry.NewToken(actor, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s2, _, _ := registry.NewToken(actor, time.Now())
	if s1 == s2 || !strings.HasPrefix(s1, "rgt_") || len(s1) < 40 {
		t.Errorf("tokens %q and %q: want distinct, prefixed, long", s1, s2)
	}
	if t1.Hash != registry.HashToken(s1) || t1.Actor != actor || strings.Contains(fmt.Sprint(t1), s1) {
		t.Errorf("stored token %+v does not hash its secret, or shows it", t1)
	}
	if _, _, err := registry.NewToken(registry.Actor{User: "", Role: registry.RoleDesk}, time.Now()); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("token without a user: %v", err)
	}
}

func TestParseDate(t *testing.T) {
	for s, ok := range map[string]bool{"2026-11-30": true, "2024-02-29": true, "2026-02-29": false, "2026-13-01": false,
		"26-11-30": false, "2026-1-30": false, "": false, "30.11.2026": false} {
		d, err := registry.ParseDate(s)
		if (err == nil) != ok || (ok && d.String() != s) {
			t.Errorf("ParseDate(%q) = %v, %v", s, d, err)
		}
		if err != nil && !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("ParseDate(%q): %v does not wrap ErrInvalid", s, err)
		}
	}
	d := registry.Date{Year: 2024, Month: time.February, Day: 29}
	if d.AddYears(1) != (registry.Date{Year: 2025, Month: time.March, Day: 1}) || d.AddDays(1) != (registry.Date{Year: 2024, Month: time.March, Day: 1}) {
		t.Errorf("date arithmetic: %s %s", d.AddYears(1), d.AddDays(1))
	}
	kyiv, _ := time.LoadLocation("Europe/Kyiv")
	if got := registry.Today(time.Date(2026, 11, 30, 22, 30, 0, 0, time.UTC), kyiv); got != (registry.Date{Year: 2026, Month: 12, Day: 1}) {
		t.Errorf("Today at 22:30 UTC in Kyiv = %s, want 2026-12-01", got)
	}
}

func TestChangeValidate(t *testing.T) {
	for _, tc := range []struct {
		c  registry.Change
		ok bool
	}{
		{registry.Change{To: registry.StatusActive}, true},
		{registry.Change{To: registry.StatusBlocked, Reason: registry.ReasonFraud}, true},
		{registry.Change{To: registry.StatusLost, Reason: registry.ReasonLost}, true},
		{registry.Change{To: registry.StatusBlocked}, false},
		{registry.Change{To: registry.StatusBlocked, Reason: registry.ReasonLost}, false},
		{registry.Change{To: registry.StatusBlocked, Reason: registry.ReasonReplaced}, false},
		{registry.Change{To: registry.StatusActive, Reason: registry.ReasonFraud}, false},
		{registry.Change{To: registry.StatusReplaced}, false},
		{registry.Change{To: registry.StatusOrdered}, false},
		{registry.Change{To: "gone"}, false},
		{registry.Change{To: registry.StatusActive, Note: "a\x07"}, false},
	} {
		if err := tc.c.Validate(); (err == nil) != tc.ok {
			t.Errorf("Validate(%+v) = %v", tc.c, err)
		}
	}
}

func TestBalanceCarried(t *testing.T) {
	cardKop := int64(300)
	for _, tc := range []struct {
		b   registry.Balance
		kop int64
		src registry.BalanceSource
		ok  bool
	}{
		{registry.Balance{ClearingKop: 1200}, 1200, registry.BalanceFromClearing, true},
		{registry.Balance{ClearingKop: 1200, CardKop: &cardKop}, 300, registry.BalanceFromCard, true},
		{registry.Balance{ClearingKop: int64(card.PurseUpper)}, int64(card.PurseUpper), registry.BalanceFromClearing, true},
		{registry.Balance{ClearingKop: int64(card.PurseUpper) + 1}, 0, "", false},
		{registry.Balance{ClearingKop: -1, CardKop: &cardKop}, 0, "", false},
	} {
		kop, src, err := tc.b.Carried()
		if (err == nil) != tc.ok || kop != tc.kop || src != tc.src {
			t.Errorf("Carried(%+v) = %d %s %v", tc.b, kop, src, err)
		}
	}
}

func TestDiffEntitlement(t *testing.T) {
	have := registry.Entitlement{Category: 11, LegalBasis: "L", Evidence: "E", ValidFrom: registry.Date{Year: 2026, Month: 1, Day: 1},
		ValidTo: registry.Date{Year: 2027, Month: 1, Day: 1}, Funding: registry.FundingState}
	row := registry.ImportRow{Entitlement: have}
	if k, f := registry.DiffEntitlement(&have, &row); k != "" || f != nil {
		t.Errorf("same entitlement: %s %v", k, f)
	}
	row.Entitlement.MonthlyLimit = 5
	if k, f := registry.DiffEntitlement(&have, &row); k != registry.ChangedEntitlement || fmt.Sprint(f) != "[monthly_limit]" {
		t.Errorf("new limit: %s %v", k, f)
	}
	row = registry.ImportRow{Entitlement: have, Ended: true}
	row.Entitlement.ValidTo = registry.Date{Year: 2026, Month: 6, Day: 30}
	if k, f := registry.DiffEntitlement(&have, &row); k != registry.EndedEntitlement || fmt.Sprint(f) != "[valid_to]" {
		t.Errorf("ended: %s %v", k, f)
	}
}

// TestPersonalDataStaysOutOfLogs: a resident or personalisation printed
// or logged by mistake shows an id, not a person.
func TestPersonalDataStaysOutOfLogs(t *testing.T) {
	r := registry.Resident{ID: 42, RegistryNumber: "3652504575", Name: "Шевченко Тарас", Contact: "+380441234567"}
	p := registry.Personalisation{Holder: registry.Holder{Name: "Шевченко Тарас"}}
	var b strings.Builder
	slog.New(slog.NewTextHandler(&b, nil)).Info("x", "resident", r, "p", p)
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%v %+v %#v", r, r, r), fmt.Sprintf("%v %+v %#v", p, p, p), b.String()} {
		if strings.Contains(s, "Шевченко") || strings.Contains(s, "3652504575") || strings.Contains(s, "+380") {
			t.Errorf("personal data in %q", s)
		}
	}
}

func TestCardNumbersAreJSONStrings(t *testing.T) {
	n, err := card.NewNumber(1, 5)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{
		registry.Card{Number: n, Replaces: n},
		registry.CardEvent{Card: n},
		registry.BlockedCard{Card: n},
		registry.CardData{Number: n},
		registry.Personalisation{Card: registry.CardData{Number: n}, Holder: registry.Holder{Name: "x"}},
	} {
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(js), `"`+n.String()+`"`) || strings.Contains(string(js), fmt.Sprint(uint64(n))+",") {
			t.Errorf("%T as JSON: %s; want the number as %q", v, js, n.String())
		}
	}
	// And back.
	ev := registry.CardEvent{Seq: 3, Card: n, Replaces: n, Status: registry.StatusOrdered,
		Entitlements: []registry.CardEntitlement{{Category: 11, ValidFrom: registry.Date{Year: 2026, Month: 1, Day: 1}}}}
	js, _ := json.Marshal(ev)
	var back registry.CardEvent
	if err := json.Unmarshal(js, &back); err != nil || fmt.Sprint(back) != fmt.Sprint(ev) {
		t.Errorf("CardEvent round trip: %+v, %v; want %+v", back, err, ev)
	}
	c := registry.Card{Number: n, ReplacedBy: n, CarriedKop: 5}
	js, _ = json.Marshal(c)
	var backCard registry.Card
	if err := json.Unmarshal(js, &backCard); err != nil || backCard != c {
		t.Errorf("Card round trip: %+v, %v; want %+v", backCard, err, c)
	}
	js, _ = json.Marshal(registry.Personalisation{Holder: registry.Holder{Name: "Taras"}})
	if !strings.Contains(string(js), `"holder":{"name":"Taras"`) {
		t.Errorf("Personalisation JSON lost the holder: %s", js)
	}
}

func TestCardEntitlements(t *testing.T) {
	d := func(y int, m time.Month, day int) registry.Date { return registry.Date{Year: y, Month: m, Day: day} }
	es := []registry.Entitlement{
		{Category: 31, ValidFrom: d(2026, 9, 1), ValidTo: d(2027, 6, 30)},
		{Category: 11, ValidFrom: d(2020, 1, 1), ValidTo: d(2026, 11, 19)}, // ended yesterday
		{Category: 12, ValidFrom: d(2026, 9, 1), ValidTo: d(2026, 11, 20)}, // last day today
	}
	got := registry.CardEntitlements(es, d(2026, 11, 20))
	if len(got) != 2 || got[0].Category != 12 || got[1].Category != 31 {
		t.Errorf("CardEntitlements = %+v; want 12 then 31", got)
	}
}
