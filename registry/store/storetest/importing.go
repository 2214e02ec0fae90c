package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
)

// row makes an import row for person i and decision id.
func importRow(line, person int, decision string, cat uint16, to registry.Date) registry.ImportRow {
	return registry.ImportRow{
		Line: line,
		Resident: registry.Resident{RegistryNumber: RegistryNumber(1000 + person), Name: fmt.Sprintf("Бондаренко Іван %d", person),
			BirthDate: registry.Date{Year: 1948, Month: time.May, Day: 1 + person%28}},
		Entitlement: registry.Entitlement{Category: cat, LegalBasis: "Law 3551-XII", Evidence: "decision " + decision,
			ValidFrom: registry.Date{Year: 2026, Month: 1, Day: 1}, ValidTo: to, Funding: registry.FundingState,
			Source: registry.SourceImport, SourceRef: decision},
	}
}

var endOf2027 = registry.Date{Year: 2027, Month: 12, Day: 31}

func testImport(t *testing.T, e *env) {
	// Person 1 is already registered at the desk, with a card.
	existing := importRow(0, 1, "", 0, endOf2027).Resident
	existing.Name = "Бондаренко Іван 1"
	r, err := e.s.AddResident(e.ctx, desk, existing)
	if err != nil {
		t.Fatal(err)
	}
	c, err := e.s.OrderCard(e.ctx, desk, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	rows := []registry.ImportRow{
		importRow(2, 1, "D-1", registry.CategoryVeteran, endOf2027),
		importRow(3, 2, "D-2", registry.CategoryPensioner, endOf2027),
		importRow(4, 2, "D-3", registry.CategoryDisability, endOf2027),
	}
	audits, events := e.auditCount(), len(e.events())
	dry, err := e.s.Import(e.ctx, supervisor, rows, true)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if !dry.DryRun || dry.Rows != 3 || dry.NewResidents != 1 || dry.NewEntitlements != 3 || dry.ChangedEntitlements != 0 || len(dry.Changes) != 4 {
		t.Errorf("dry run report = %+v; want 1 new resident, 3 new entitlements", dry)
	}
	for _, ch := range dry.Changes {
		if ch.Line == 3 && ch.Resident != 0 {
			t.Errorf("dry run names resident %d for a resident it did not create", ch.Resident)
		}
	}
	// Only the audit entry of the one existing resident it read is new.
	if a, ev := e.auditCount(), len(e.events()); a != audits+1 || ev != events {
		t.Errorf("dry run: %d audit entries and %d events, was %d and %d; want one more audit entry and no event", a, ev, audits, events)
	}
	if found, err := e.s.FindResidents(e.ctx, supervisor, registry.Search{RegistryNumber: rows[1].Resident.RegistryNumber}); err != nil || len(found) != 0 {
		t.Errorf("after a dry run the new resident exists: %v, %v", found, err)
	}
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: r.ID})
	if err != nil || countAction(es, "import benefit recipients (dry run)") != 1 {
		t.Errorf("dry run read resident %d; audit = %+v, %v", r.ID, es, err)
	}

	real, err := e.s.Import(e.ctx, supervisor, rows, false)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if real.DryRun || real.NewResidents != dry.NewResidents || real.NewEntitlements != dry.NewEntitlements {
		t.Errorf("real run = %+v; want what the dry run reported (%+v)", real, dry)
	}
	d, err := e.s.Resident(e.ctx, desk, r.ID)
	if err != nil || len(d.Entitlements) != 1 || d.Entitlements[0].Source != registry.SourceImport || d.Entitlements[0].SourceRef != "D-1" {
		t.Fatalf("resident 1 after import = %+v, %v", d.Entitlements, err)
	}
	evs := e.events()
	if last := evs[len(evs)-1]; last.Card != c.Number || last.Kind != registry.EventEntitlements {
		t.Errorf("import gave resident 1 an entitlement but the last event is %+v", last)
	}

	// Same file again: nothing changes.
	again, err := e.s.Import(e.ctx, supervisor, rows, false)
	if err != nil || again.Unchanged != 3 || len(again.Changes) != 0 {
		t.Errorf("second import of the same rows = %+v, %v; want 3 unchanged", again, err)
	}

	// A changed limit, an ended decision, the end of an unknown one.
	changed := rows[1]
	changed.Line, changed.Entitlement.MonthlyLimit = 2, 40
	ended := rows[2]
	ended.Line, ended.Ended, ended.Entitlement.ValidTo = 3, true, registry.Date{Year: 2026, Month: 11, Day: 30}
	unknown := importRow(4, 3, "D-99", registry.CategoryStudent, registry.Date{Year: 2026, Month: 6, Day: 30})
	unknown.Ended = true
	rep, err := e.s.Import(e.ctx, supervisor, []registry.ImportRow{changed, ended, unknown}, false)
	if err != nil {
		t.Fatalf("third import: %v", err)
	}
	if rep.ChangedEntitlements != 1 || rep.EndedEntitlements != 1 || rep.Ignored != 1 || rep.NewResidents != 0 ||
		len(rep.Changes) != 2 || fmt.Sprint(rep.Changes[0].Fields) != "[monthly_limit]" || fmt.Sprint(rep.Changes[1].Fields) != "[valid_to]" {
		t.Errorf("third import = %+v; want 1 changed (monthly_limit), 1 ended (valid_to), 1 ignored and no new resident", rep)
	}
	d, err = e.s.Resident(e.ctx, desk, rep.Changes[1].Resident)
	if err != nil || len(d.Entitlements) != 2 || d.Entitlements[1].ValidTo != ended.Entitlement.ValidTo || d.Entitlements[0].MonthlyLimit != 40 {
		t.Errorf("after the third import resident %d has %+v, %v", rep.Changes[1].Resident, d.Entitlements, err)
	}
}

func testImportConflict(t *testing.T, e *env) {
	rows := []registry.ImportRow{importRow(2, 1, "D-1", registry.CategoryVeteran, endOf2027)}
	if _, err := e.s.Import(e.ctx, supervisor, rows, false); err != nil {
		t.Fatal(err)
	}
	before := e.state()
	// Line 3 claims person 1's decision for person 2; line 4 gives
	// person 1 another birth date; line 2 alone would be fine.
	steal := importRow(3, 2, "D-1", registry.CategoryVeteran, endOf2027)
	born := importRow(4, 1, "D-5", registry.CategoryVeteran, endOf2027)
	born.Resident.BirthDate = registry.Date{Year: 1949, Month: 1, Day: 1}
	bad := []registry.ImportRow{importRow(2, 5, "D-4", registry.CategoryStudent, endOf2027), steal, born}
	for _, dry := range []bool{true, false} {
		_, err := e.s.Import(e.ctx, supervisor, bad, dry)
		var errs registry.ImportErrors
		if !errors.As(err, &errs) || len(errs) != 2 || errs[0].Line != 3 || errs[0].Field != "decision_id" ||
			errs[1].Line != 4 || errs[1].Field != "birth_date" || !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("import with conflicts (dry run %v) = %v; want ErrConflict on line 3 decision_id and line 4 birth_date", dry, err)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("a failed import changed the store: %s -> %s", before, after)
	}
	if found, err := e.s.FindResidents(e.ctx, supervisor, registry.Search{RegistryNumber: RegistryNumber(1005)}); err != nil || len(found) != 0 {
		t.Errorf("a failed import left its valid line 2 applied: %v, %v", found, err)
	}
	// A row that fails validation is refused before anything is read.
	invalid := importRow(7, 6, "D-6", 0, endOf2027)
	_, err := e.s.Import(e.ctx, supervisor, []registry.ImportRow{invalid}, false)
	var errs registry.ImportErrors
	if !errors.As(err, &errs) || errs[0].Line != 7 || errs[0].Field != "category" {
		t.Errorf("import of an invalid row = %v; want line 7, category", err)
	}
}

func testAuditOwn(t *testing.T, e *env) {
	a, b := e.register(), e.register()
	for _, id := range []int64{a.ID, b.ID, a.ID} {
		if _, err := e.s.Resident(e.ctx, as(deskActor, fmt.Sprintf("visit about %d", id)), id); err != nil {
			t.Fatal(err)
		}
	}
	own, err := e.s.Audit(e.ctx, residentOf(a.ID), registry.AuditQuery{Resident: b.ID})
	if err != nil {
		t.Fatalf("Audit as a resident: %v", err)
	}
	if len(own) != 3 { // registered, then read twice
		t.Errorf("resident %d sees %d audit entries, want 3: %+v", a.ID, len(own), own)
	}
	for _, en := range own {
		if en.Resident != a.ID {
			t.Errorf("resident %d sees an entry about resident %d: %+v", a.ID, en.Resident, en)
		}
	}
	all, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{})
	if err != nil || len(all) != 5 { // two registrations, three reads
		t.Fatalf("auditor sees %d entries, %v; want 5", len(all), err)
	}
	page, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{After: all[1].ID, Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != all[2].ID {
		t.Errorf("audit page after %d = %+v, %v", all[1].ID, page, err)
	}
	if _, err := e.s.Audit(e.ctx, as(financeActor, ""), registry.AuditQuery{}); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("Audit for finance = %v; want ErrForbidden", err)
	}
}
