package storetest

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
)

func testResidentRoundTrip(t *testing.T, e *env) {
	in := e.person()
	r, err := e.s.AddResident(e.ctx, desk, in)
	if err != nil {
		t.Fatalf("AddResident: %v", err)
	}
	if r.ID <= 0 || !r.Created.Equal(start) {
		t.Fatalf("AddResident = id %d created %v; want an id and the clock's time", r.ID, r.Created)
	}
	d, err := e.s.Resident(e.ctx, desk, r.ID)
	if err != nil {
		t.Fatalf("Resident: %v", err)
	}
	got := d.Resident
	if got.RegistryNumber != in.RegistryNumber || got.Name != in.Name || got.BirthDate != in.BirthDate ||
		got.Contact != in.Contact || got.ID != r.ID || !got.Created.Equal(start) {
		t.Errorf("Resident = %+v %q %q %q, want what was registered", got.BirthDate, got.RegistryNumber, got.Name, got.Contact)
	}
	if len(d.Entitlements) != 0 || len(d.Cards) != 0 {
		t.Errorf("new resident has %d entitlements and %d cards", len(d.Entitlements), len(d.Cards))
	}
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[1].Action != "read resident" || es[1].User != deskActor.User || es[1].Role != registry.RoleDesk ||
		es[1].Purpose != desk.Purpose || es[1].Record != residentRecordOf(r.ID) || !es[1].At.Equal(start) {
		t.Errorf("audit after a register and a read = %+v; want the register, then the read with who, why and which record", es)
	}
	if _, err := e.s.Resident(e.ctx, desk, r.ID+1000); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("Resident(unknown) = %v, want ErrNotFound", err)
	}
}

func residentRecordOf(id int64) string { return "resident/" + itoa(id) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func testDuplicateResident(t *testing.T, e *env) {
	r := e.register()
	before := e.state()
	dup := e.person()
	dup.RegistryNumber = r.RegistryNumber
	_, err := e.s.AddResident(e.ctx, desk, dup)
	// The answer names nobody: who holds the number is found by a read
	// with a purpose, which the audit log keeps.
	if !errors.Is(err, registry.ErrDuplicate) || strings.Contains(err.Error(), "resident "+itoa(r.ID)) {
		t.Fatalf("second AddResident with the same registry number = %v; want ErrDuplicate not naming resident %d", err, r.ID)
	}
	if after := e.state(); after != before {
		t.Errorf("a refused registration changed the store: %s -> %s", before, after)
	}
	found, err := e.s.FindResidents(e.ctx, desk, registry.Search{RegistryNumber: r.RegistryNumber})
	if err != nil || len(found) != 1 || found[0].Name != r.Name {
		t.Errorf("after the duplicate, search = %v, %v; want the first record only", found, err)
	}
}

func testInvalidResident(t *testing.T, e *env) {
	before := e.state()
	for _, tc := range []struct {
		name  string
		edit  func(*registry.Resident)
		field string
	}{
		{"bad check digit", func(r *registry.Resident) { r.RegistryNumber = "3652504576" }, "registry_number"},
		{"nine digits", func(r *registry.Resident) { r.RegistryNumber = "365250457" }, "registry_number"},
		{"no name", func(r *registry.Resident) { r.Name = "" }, "name"},
		{"no birth date", func(r *registry.Resident) { r.BirthDate = registry.Date{} }, "birth_date"},
		{"born tomorrow", func(r *registry.Resident) { r.BirthDate = registry.Date{Year: 2026, Month: time.November, Day: 21} }, "birth_date"},
		{"born 1899", func(r *registry.Resident) { r.BirthDate = registry.Date{Year: 1899, Month: time.December, Day: 31} }, "birth_date"},
		{"control character", func(r *registry.Resident) { r.Contact = "+380\x00" }, "contact"},
		{"not UTF-8", func(r *registry.Resident) { r.Name = "Ko\xffal" }, "name"},
	} {
		r := e.person()
		tc.edit(&r)
		_, err := e.s.AddResident(e.ctx, desk, r)
		var fe *registry.FieldError
		if !errors.Is(err, registry.ErrInvalid) || !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s: AddResident = %v; want ErrInvalid naming field %s", tc.name, err, tc.field)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("refused registrations changed the store: %s -> %s", before, after)
	}
}

func testReadNeedsPurpose(t *testing.T, e *env) {
	r := e.register()
	c, err := e.s.OrderCard(e.ctx, desk, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	before := e.state()
	for _, purpose := range []string{"", "   "} {
		noWhy := as(deskActor, purpose)
		if _, err := e.s.Resident(e.ctx, noWhy, r.ID); !errors.Is(err, registry.ErrNoPurpose) {
			t.Errorf("Resident without purpose %q = %v; want ErrNoPurpose", purpose, err)
		}
		if _, err := e.s.FindResidents(e.ctx, noWhy, registry.Search{RegistryNumber: r.RegistryNumber}); !errors.Is(err, registry.ErrNoPurpose) {
			t.Errorf("FindResidents without purpose = %v; want ErrNoPurpose", err)
		}
		if _, err := e.s.Personalisation(e.ctx, noWhy, c.Number); !errors.Is(err, registry.ErrNoPurpose) {
			t.Errorf("Personalisation without purpose = %v; want ErrNoPurpose", err)
		}
		today := registry.Today(start, e.opt.Location)
		if _, err := e.s.Expiring(e.ctx, noWhy, today, today.AddDays(30)); !errors.Is(err, registry.ErrNoPurpose) {
			t.Errorf("Expiring without purpose = %v; want ErrNoPurpose", err)
		}
		if _, err := e.s.Import(e.ctx, as(supervisorActor, purpose), nil, true); !errors.Is(err, registry.ErrNoPurpose) {
			t.Errorf("Import without purpose = %v; want ErrNoPurpose", err)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("refused reads changed the store (audit entries without a read?): %s -> %s", before, after)
	}
}

func testRoles(t *testing.T, e *env) {
	a, b := e.register(), e.register()
	before := e.state()
	finance := as(financeActor, "reconciliation")
	for name, call := range map[string]func() error{
		"finance reads a resident": func() error { _, err := e.s.Resident(e.ctx, finance, a.ID); return err },
		"auditor reads a resident": func() error { _, err := e.s.Resident(e.ctx, as(auditorActor, "check"), a.ID); return err },
		"finance registers":        func() error { _, err := e.s.AddResident(e.ctx, finance, e.person()); return err },
		"resident reads another":   func() error { _, err := e.s.Resident(e.ctx, residentOf(a.ID), b.ID); return err },
		"resident orders a card":   func() error { _, err := e.s.OrderCard(e.ctx, residentOf(a.ID), a.ID); return err },
		"resident adds a benefit":  func() error { _, err := e.s.AddEntitlement(e.ctx, residentOf(a.ID), pensioner(a.ID)); return err },
		"desk imports":             func() error { _, err := e.s.Import(e.ctx, desk, nil, true); return err },
		"desk reads the audit log": func() error { _, err := e.s.Audit(e.ctx, desk, registry.AuditQuery{}); return err },
		"unknown role": func() error {
			_, err := e.s.Resident(e.ctx, as(registry.Actor{User: "x", Role: "admin"}, "why"), a.ID)
			return err
		},
		"resident token without id": func() error {
			_, err := e.s.Resident(e.ctx, registry.Access{Actor: registry.Actor{User: "x", Role: registry.RoleResident}}, 0)
			return err
		},
	} {
		if err := call(); !errors.Is(err, registry.ErrForbidden) {
			t.Errorf("%s: %v; want ErrForbidden", name, err)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("refused calls changed the store: %s -> %s", before, after)
	}
	d, err := e.s.Resident(e.ctx, residentOf(a.ID), a.ID)
	if err != nil || d.Resident.ID != a.ID {
		t.Fatalf("a resident reading their own record: %v", err)
	}
	es, err := e.s.Audit(e.ctx, residentOf(a.ID), registry.AuditQuery{})
	if err != nil || len(es) == 0 || es[len(es)-1].Purpose != registry.PurposeOwnView {
		t.Errorf("own read recorded as %+v, %v; want purpose %q", es, err, registry.PurposeOwnView)
	}
}

func testSearch(t *testing.T, e *env) {
	a := e.register()
	p := e.person()
	p.Name = "Шевченко  Тарас Григорович"
	b, err := e.s.AddResident(e.ctx, desk, p)
	if err != nil {
		t.Fatal(err)
	}
	p = e.person()
	p.Name = "Шевчук Марія"
	c, err := e.s.AddResident(e.ctx, desk, p)
	if err != nil {
		t.Fatal(err)
	}
	p = e.person()
	p.Name = "100%_ Test"
	if _, err := e.s.AddResident(e.ctx, desk, p); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.FindResidents(e.ctx, desk, registry.Search{RegistryNumber: a.RegistryNumber})
	if err != nil || len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("search by registry number = %v, %v; want resident %d", got, err, a.ID)
	}
	got, err = e.s.FindResidents(e.ctx, desk, registry.Search{NamePrefix: "шевч"})
	if err != nil || len(got) != 2 || got[0].ID != b.ID || got[1].ID != c.ID {
		t.Errorf("search by name prefix = %v, %v; want residents %d and %d in name order", got, err, b.ID, c.ID)
	}
	got, err = e.s.FindResidents(e.ctx, desk, registry.Search{NamePrefix: "ШЕВЧЕНКО ТАРАС"})
	if err != nil || len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("search ignoring case and spaces = %v, %v; want resident %d", got, err, b.ID)
	}
	got, err = e.s.FindResidents(e.ctx, desk, registry.Search{NamePrefix: "10_"})
	if err != nil || len(got) != 0 {
		t.Errorf("search for 10_ = %v, %v; want nothing (_ is not a wildcard)", got, err)
	}
	for _, q := range []registry.Search{{}, {NamePrefix: "ш"}, {RegistryNumber: "123"}} {
		if _, err := e.s.FindResidents(e.ctx, desk, q); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("search %+v = %v; want ErrInvalid", q, err)
		}
	}
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: c.ID})
	if err != nil {
		t.Fatal(err)
	}
	if n := countAction(es, "found in a search"); n != 1 {
		t.Errorf("resident %d was returned by one search; audit has %d search entries: %+v", c.ID, n, es)
	}
}

func countAction(es []registry.AuditEntry, action string) int {
	n := 0
	for _, e := range es {
		if e.Action == action {
			n++
		}
	}
	return n
}

func testEntitlements(t *testing.T, e *env) {
	r := e.register()
	c, err := e.s.OrderCard(e.ctx, desk, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	before := e.state()
	for _, tc := range []struct {
		edit  func(*registry.Entitlement)
		field string
	}{
		{func(x *registry.Entitlement) { x.Category = 0 }, "category"},
		{func(x *registry.Entitlement) { x.Funding = "oblast" }, "funding"},
		{func(x *registry.Entitlement) { x.MonthlyLimit = 256 }, "monthly_limit"},
		{func(x *registry.Entitlement) { x.LegalBasis = "" }, "legal_basis"},
		{func(x *registry.Entitlement) { x.Evidence = " " }, "evidence"},
		{func(x *registry.Entitlement) { x.ValidTo = x.ValidFrom.AddDays(-1) }, "valid_to"},
		{func(x *registry.Entitlement) { x.ValidFrom = registry.Date{Year: 1999, Month: 12, Day: 31} }, "valid_from"},
		{func(x *registry.Entitlement) { x.ValidTo = registry.Date{Year: 2180, Month: 1, Day: 1} }, "valid_to"},
	} {
		x := pensioner(r.ID)
		tc.edit(&x)
		_, err := e.s.AddEntitlement(e.ctx, desk, x)
		var fe *registry.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("AddEntitlement(bad %s) = %v; want a FieldError for it", tc.field, err)
		}
	}
	if _, err := e.s.AddEntitlement(e.ctx, desk, pensioner(r.ID+999)); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("AddEntitlement for an unknown resident = %v; want ErrNotFound", err)
	}
	if after := e.state(); after != before {
		t.Errorf("refused entitlements changed the store: %s -> %s", before, after)
	}

	x, err := e.s.AddEntitlement(e.ctx, desk, pensioner(r.ID))
	if err != nil {
		t.Fatalf("AddEntitlement: %v", err)
	}
	if x.ID <= 0 || x.Source != registry.SourceDesk {
		t.Errorf("AddEntitlement = %+v; want an id and source desk", x)
	}
	evs := e.events()
	last := evs[len(evs)-1]
	if last.Kind != registry.EventEntitlements || last.Card != c.Number || len(last.Entitlements) != 1 ||
		last.Entitlements[0] != x.ForCard() {
		t.Errorf("after AddEntitlement the last event is %+v; want an entitlements event for card %s with it", last, c.Number)
	}

	end := registry.Date{Year: 2026, Month: time.December, Day: 31}
	for _, bad := range []registry.Date{{}, {Year: 2028, Month: 1, Day: 1}, {Year: 2025, Month: 12, Day: 31}} {
		if _, err := e.s.EndEntitlement(e.ctx, desk, r.ID, x.ID, bad); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("EndEntitlement(%s) = %v; want ErrInvalid", bad, err)
		}
	}
	if _, err := e.s.EndEntitlement(e.ctx, desk, r.ID+1, x.ID, end); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("EndEntitlement of another resident's entitlement = %v; want ErrNotFound", err)
	}
	ended, err := e.s.EndEntitlement(e.ctx, desk, r.ID, x.ID, end)
	if err != nil || ended.ValidTo != end {
		t.Fatalf("EndEntitlement = %+v, %v; want valid to %s", ended, err, end)
	}
	evs = e.events()
	if last := evs[len(evs)-1]; last.Kind != registry.EventEntitlements || last.Entitlements[0].ValidTo != end {
		t.Errorf("after EndEntitlement the last event is %+v; want the new last day", last)
	}
	d, err := e.s.Resident(e.ctx, desk, r.ID)
	if err != nil || len(d.Entitlements) != 1 || d.Entitlements[0].ValidTo != end {
		t.Errorf("dossier after the end = %+v, %v", d.Entitlements, err)
	}
}

func testExpiring(t *testing.T, e *env) {
	today := registry.Today(start, e.opt.Location) // 2026-11-20
	a, b := e.register(), e.register()
	mk := func(r registry.Resident, to registry.Date, cat uint16) {
		x := pensioner(r.ID)
		x.ValidTo, x.Category = to, cat
		if _, err := e.s.AddEntitlement(e.ctx, desk, x); err != nil {
			t.Fatal(err)
		}
	}
	mk(a, today.AddDays(30), registry.CategoryPensioner) // last day in the window
	mk(a, today.AddDays(31), registry.CategoryVeteran)   // just outside
	mk(b, today, registry.CategoryDisability)            // ends today
	mk(b, today.AddDays(-1), registry.CategoryStudent)   // already ended
	got, err := e.s.Expiring(e.ctx, desk, today, today.AddDays(registry.DefaultExpiringDays))
	if err != nil {
		t.Fatalf("Expiring: %v", err)
	}
	if len(got) != 2 || got[0].Entitlement.Category != registry.CategoryDisability || got[0].Name != b.Name ||
		got[1].Entitlement.Category != registry.CategoryPensioner || got[1].Contact != a.Contact {
		t.Errorf("Expiring = %+v; want b's disability (today) then a's pension (in 30 days)", got)
	}
	if _, err := e.s.Expiring(e.ctx, desk, today, today.AddDays(-1)); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("Expiring over an empty window = %v; want ErrInvalid", err)
	}
	if _, err := e.s.Expiring(e.ctx, as(financeActor, "stats"), today, today); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("Expiring for finance = %v; want ErrForbidden", err)
	}
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: b.ID})
	if err != nil || countAction(es, "listed with an expiring entitlement") != 1 {
		t.Errorf("resident %d listed once; audit = %+v, %v", b.ID, es, err)
	}
}
