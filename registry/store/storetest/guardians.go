package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
)

// testGuardians: a desk links a child's record to a parent's on evidence;
// the parent, signed in as a resident, then reads the child's record and
// blocks the child's card, audited in the child's record under the
// parent's name, until the child turns 18 or a desk ends the link. Nobody
// else gains anything, and a refused link writes nothing.
func testGuardians(t *testing.T, e *env) {
	born := func(y int, m time.Month, d int) registry.Resident {
		p := e.person()
		p.BirthDate = registry.Date{Year: y, Month: m, Day: d}
		r, err := e.s.AddResident(e.ctx, desk, p)
		if err != nil {
			t.Fatalf("AddResident: %v", err)
		}
		return r
	}
	parent := born(1984, time.June, 2)
	child := born(2015, time.May, 1)
	nearly := born(2008, time.November, 25) // 18 five days after the suite's start
	adult := born(2000, time.January, 9)
	teen := born(2012, time.March, 3)
	stranger := born(1979, time.July, 7)
	const evidence = "birth certificate I-КВ 123456"

	before := e.state()
	for name, try := range map[string]struct {
		a               registry.Access
		guardian, child int64
		evidence        string
		want            error
	}{
		"self":                 {desk, parent.ID, parent.ID, evidence, registry.ErrInvalid},
		"an adult child":       {desk, parent.ID, adult.ID, evidence, registry.ErrInvalid},
		"a minor guardian":     {desk, teen.ID, child.ID, evidence, registry.ErrInvalid},
		"no evidence":          {desk, parent.ID, child.ID, "  ", registry.ErrInvalid},
		"evidence with a bidi": {desk, parent.ID, child.ID, "birth certificate \u202e654321", registry.ErrInvalid},
		"no such guardian":     {desk, 999999, child.ID, evidence, registry.ErrNotFound},
		"no such child":        {desk, parent.ID, 999999, evidence, registry.ErrNotFound},
		"by the parent":        {residentOf(parent.ID), parent.ID, child.ID, evidence, registry.ErrForbidden},
		"by finance":           {as(financeActor, "x"), parent.ID, child.ID, evidence, registry.ErrForbidden},
	} {
		if _, err := e.s.AddGuardianship(e.ctx, try.a, try.guardian, try.child, try.evidence); !errors.Is(err, try.want) {
			t.Errorf("%s: %v, want %v", name, err, try.want)
		}
	}
	if after := e.state(); after != before {
		t.Fatalf("refused links changed the registry:\n%s\n%s", before, after)
	}

	g, err := e.s.AddGuardianship(e.ctx, desk, parent.ID, child.ID, "  "+evidence+" ")
	if err != nil {
		t.Fatal(err)
	}
	if g.Evidence != evidence || g.CreatedBy != deskActor.User || g.ChildName != child.Name || !g.Active(registry.Today(start, e.opt.Location)) {
		t.Errorf("link %+v", g)
	}
	if _, err := e.s.AddGuardianship(e.ctx, desk, parent.ID, child.ID, evidence); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("the same link twice: %v, want ErrConflict", err)
	}
	g2, err := e.s.AddGuardianship(e.ctx, desk, parent.ID, nearly.ID, "court decision 757/1234/26")
	if err != nil {
		t.Fatal(err)
	}

	// The parent sees the child's record, audited in it under the
	// parent's name; the child does not see the parent's, nor a stranger
	// the child's.
	me := residentOf(parent.ID)
	d, err := e.s.Resident(e.ctx, me, child.ID)
	if err != nil || d.Resident.ID != child.ID {
		t.Fatalf("the parent's view of the child: %+v, %v", d.Resident, err)
	}
	for name, try := range map[string]struct {
		a  registry.Access
		id int64
	}{
		"the child's view of the parent": {residentOf(child.ID), parent.ID},
		"a stranger's view of the child": {residentOf(stranger.ID), child.ID},
		"the parent's view of an adult":  {me, adult.ID},
	} {
		if _, err := e.s.Resident(e.ctx, try.a, try.id); !errors.Is(err, registry.ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", name, err)
		}
	}
	entries, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: child.ID})
	if err != nil {
		t.Fatal(err)
	}
	last := entries[len(entries)-1]
	if last.User != me.Actor.User || last.Role != registry.RoleResident || last.Purpose != registry.PurposeGuardianView {
		t.Errorf("the child's audit log records the parent's read as %+v", last)
	}

	own, err := e.s.Resident(e.ctx, me, parent.ID)
	if err != nil || len(own.Guardianships) != 2 {
		t.Fatalf("the parent's children: %+v, %v", own.Guardianships, err)
	}
	// The parent sees of the child's links only the one that lets them.
	if len(d.Guardianships) != 1 || d.Guardianships[0].Guardian != parent.ID {
		t.Errorf("the parent's view of the child shows links %+v, want their own only", d.Guardianships)
	}
	if _, err := e.s.Resident(e.ctx, registry.Access{Actor: deskActor}, child.ID); !errors.Is(err, registry.ErrNoPurpose) {
		t.Errorf("a desk reads the links with no purpose: %v, want ErrNoPurpose", err)
	}

	// The parent blocks the child's lost card; a stranger cannot.
	c, err := e.s.OrderCard(e.ctx, desk, child.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, to := range []registry.Status{registry.StatusPersonalised, registry.StatusActive} {
		if c, err = e.s.Transition(e.ctx, desk, c.Number, registry.Change{To: to}); err != nil {
			t.Fatal(err)
		}
	}
	lost := registry.Change{To: registry.StatusLost, Reason: registry.ReasonLost}
	if _, err := e.s.Transition(e.ctx, residentOf(stranger.ID), c.Number, lost); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("a stranger blocks the child's card: %v, want ErrNotFound", err)
	}
	block := me
	block.Purpose = registry.PurposeGuardianBlock
	if c, err = e.s.Transition(e.ctx, block, c.Number, lost); err != nil || c.Status != registry.StatusLost {
		t.Fatalf("the parent blocks the child's card: %+v, %v", c, err)
	}
	entries, err = e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: child.ID})
	if err != nil {
		t.Fatal(err)
	}
	if last := entries[len(entries)-1]; last.User != me.Actor.User || !strings.Contains(last.Action, "lost") {
		t.Errorf("the block is recorded as %+v", last)
	}

	// A desk ends the first link; the second ends by itself at 18.
	ended, err := e.s.EndGuardianship(e.ctx, desk, g.ID, "custody transferred, court decision 757/99/26")
	if err != nil || ended.Ended.IsZero() || ended.EndedBy != deskActor.User {
		t.Fatalf("EndGuardianship: %+v, %v", ended, err)
	}
	if _, err := e.s.EndGuardianship(e.ctx, desk, g.ID, "again"); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("ending an ended link: %v, want ErrConflict", err)
	}
	if _, err := e.s.EndGuardianship(e.ctx, desk, g2.ID, ""); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("ending a link with no reason: %v, want ErrInvalid", err)
	}
	if _, err := e.s.Resident(e.ctx, me, child.ID); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("the parent's view after the link ended: %v, want ErrForbidden", err)
	}
	if _, err := e.s.Resident(e.ctx, me, nearly.ID); err != nil {
		t.Errorf("the parent's view of a 17-year-old: %v", err)
	}
	e.clock.Set(time.Date(2026, time.November, 24, 22, 0, 0, 0, time.UTC)) // 25 November, 00:00 in Kyiv
	if _, err := e.s.Resident(e.ctx, me, nearly.ID); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("the parent's view on the child's 18th birthday: %v, want ErrForbidden", err)
	}
	if own, err := e.s.Resident(e.ctx, me, parent.ID); err != nil || len(own.Guardianships) != 0 {
		t.Errorf("the parent's children once both links ended: %+v, %v", own.Guardianships, err)
	}
	all, err := e.s.Resident(e.ctx, desk, parent.ID)
	if err != nil || len(all.Guardianships) != 2 || all.Guardianships[0].EndReason == "" {
		t.Errorf("the desk's view of the parent's links: %+v, %v", all.Guardianships, err)
	}
}
