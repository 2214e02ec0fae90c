package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
)

// all queues every candidate, as a rule that says yes to all would.
func all(cs []registry.NoticeCandidate) []registry.Notice {
	var out []registry.Notice
	for _, c := range cs {
		out = append(out, registry.Notice{Kind: registry.NoticeBenefitEnding, Resident: c.Resident, Entitlement: c.Entitlement, Ends: c.Ends})
	}
	return out
}

func retryMinutes(attempts int) time.Duration { return time.Duration(attempts) * time.Minute }

func testNoticeOutbox(t *testing.T, e *env) {
	today := registry.Today(start, e.opt.Location)
	from, to := today, today.AddDays(30)
	a, b, c := e.register(), e.register(), e.register()
	ent := func(r registry.Resident, ends registry.Date) registry.Entitlement {
		x := pensioner(r.ID)
		x.ValidTo = ends
		got, err := e.s.AddEntitlement(e.ctx, desk, x)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	ea := ent(a, today.AddDays(10))
	eb := ent(b, today.AddDays(30))
	ent(c, today.AddDays(31)) // outside the window
	if err := e.s.SetNoticeOptOut(e.ctx, residentOf(b.ID), b.ID, true); err != nil {
		t.Fatalf("opt out: %v", err)
	}

	// The rule sees the candidates, with the opt-out; it may not invent one.
	var seen []registry.NoticeCandidate
	before := e.state()
	_, err := e.s.QueueNotices(e.ctx, from, to, func(cs []registry.NoticeCandidate) []registry.Notice {
		seen = cs
		return []registry.Notice{{Kind: registry.NoticeBenefitEnding, Entitlement: 99999}}
	})
	if err == nil {
		t.Error("a notice for an entitlement that is no candidate was queued")
	}
	if e.state() != before {
		t.Error("a refused queue wrote something")
	}
	if len(seen) != 2 || seen[0].Entitlement != ea.ID || seen[0].Contact != a.Contact || seen[0].OptedOut ||
		seen[1].Entitlement != eb.ID || !seen[1].OptedOut || seen[1].Ends != eb.ValidTo || seen[1].Category != registry.CategoryPensioner {
		t.Errorf("candidates = %+v; want a's (not opted out) then b's (opted out)", seen)
	}
	q, err := e.s.QueueNotices(e.ctx, from, to, func(cs []registry.NoticeCandidate) []registry.Notice { return all(cs)[:1] })
	if err != nil || len(q) != 1 || q[0].Resident != a.ID || q[0].Contact != a.Contact || q[0].ID == 0 || !q[0].Created.Equal(start) {
		t.Fatalf("QueueNotices = %+v, %v; want a's notice", q, err)
	}
	// Once queued, an entitlement is no candidate again.
	q2, err := e.s.QueueNotices(e.ctx, from, to, func(cs []registry.NoticeCandidate) []registry.Notice {
		if len(cs) != 1 || cs[0].Entitlement != eb.ID {
			t.Errorf("second run's candidates = %+v; want b's only", cs)
		}
		return nil
	})
	if err != nil || len(q2) != 0 {
		t.Errorf("second QueueNotices = %+v, %v", q2, err)
	}
	if _, err := e.s.QueueNotices(e.ctx, to, from, all); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("an empty window = %v; want ErrInvalid", err)
	}

	// A candidate the rule turns down is recorded once, dropped, with why,
	// and is no candidate again.
	qb, err := e.s.QueueNotices(e.ctx, from, to, func(cs []registry.NoticeCandidate) []registry.Notice {
		ns := all(cs)
		for i := range ns {
			ns[i].DropReason = registry.NoticeOptedOut
		}
		return ns
	})
	if err != nil || len(qb) != 1 || qb[0].Resident != b.ID || qb[0].Pending() || qb[0].DropReason != registry.NoticeOptedOut {
		t.Fatalf("QueueNotices of a declined candidate = %+v, %v", qb, err)
	}
	if _, err := e.s.QueueNotices(e.ctx, from, to, func(cs []registry.NoticeCandidate) []registry.Notice {
		if len(cs) != 0 {
			t.Errorf("after recording both, candidates = %+v", cs)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Durable: a restarted runner finds it.
	e.reopen()
	claims, err := e.s.ClaimNotices(e.ctx, 10, 3, retryMinutes)
	if err != nil || len(claims) != 1 {
		t.Fatalf("ClaimNotices = %+v, %v", claims, err)
	}
	cl := claims[0]
	if cl.ID != q[0].ID || cl.Attempts != 1 || !cl.NextAttempt.Equal(start.Add(time.Minute)) || cl.CurrentContact != a.Contact ||
		cl.CurrentEnds != ea.ValidTo || cl.OptedOut {
		t.Errorf("claim = %+v", cl)
	}
	// Claimed: nobody else takes it until its next attempt.
	if again, err := e.s.ClaimNotices(e.ctx, 10, 3, retryMinutes); err != nil || len(again) != 0 {
		t.Errorf("a second claim at once = %+v, %v; want none", again, err)
	}
	if err := e.s.FinishNotice(e.ctx, cl.ID, registry.NoticeOutcome{Error: "451 try\r\nlater"}); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(start.Add(time.Minute))
	claims, err = e.s.ClaimNotices(e.ctx, 10, 3, retryMinutes)
	if err != nil || len(claims) != 1 || claims[0].Attempts != 2 || claims[0].LastError != "451 try later" ||
		!claims[0].NextAttempt.Equal(start.Add(3*time.Minute)) {
		t.Fatalf("claim after the retry wait = %+v, %v", claims, err)
	}
	if err := e.s.FinishNotice(e.ctx, cl.ID, registry.NoticeOutcome{SentTo: a.Contact, Sender: "file"}); err != nil {
		t.Fatal(err)
	}
	// Sent once: never again.
	if err := e.s.FinishNotice(e.ctx, cl.ID, registry.NoticeOutcome{SentTo: a.Contact, Sender: "file"}); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("recording a second send = %v; want ErrConflict", err)
	}
	e.clock.Set(start.Add(time.Hour))
	if again, err := e.s.ClaimNotices(e.ctx, 10, 3, retryMinutes); err != nil || len(again) != 0 {
		t.Errorf("a sent notice was claimed again: %+v, %v", again, err)
	}
	for _, o := range []registry.NoticeOutcome{{}, {SentTo: "x"}, {Error: "e", Drop: "d"}} {
		if err := e.s.FinishNotice(e.ctx, cl.ID, o); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("FinishNotice(%+v) = %v; want ErrInvalid", o, err)
		}
	}
	if err := e.s.FinishNotice(e.ctx, 99999, registry.NoticeOutcome{Drop: "x"}); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("FinishNotice(unknown) = %v; want ErrNotFound", err)
	}

	rn, err := e.s.ResidentNotices(e.ctx, residentOf(a.ID), a.ID)
	if err != nil || rn.OptedOut || len(rn.Notices) != 1 {
		t.Fatalf("ResidentNotices = %+v, %v", rn, err)
	}
	n := rn.Notices[0]
	if n.SentTo != a.Contact || n.Sender != "file" || !n.Sent.Equal(start.Add(time.Minute)) || n.Attempts != 2 || n.Pending() ||
		n.Ends != ea.ValidTo || n.Kind != registry.NoticeBenefitEnding {
		t.Errorf("the sent notice = %+v", n)
	}
	if rn, err := e.s.ResidentNotices(e.ctx, desk, b.ID); err != nil || !rn.OptedOut || len(rn.Notices) != 1 || rn.Notices[0].Dropped.IsZero() {
		t.Errorf("b's notices = %+v, %v; want opted out, one dropped", rn, err)
	}
	if es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: b.ID}); err != nil || countAction(es, "benefit-ending notice dropped") != 1 {
		t.Errorf("b's audit = %+v, %v; want the declined notice once", es, err)
	}
	es, err := e.s.Audit(e.ctx, auditor, registry.AuditQuery{Resident: a.ID})
	if err != nil {
		t.Fatal(err)
	}
	if countAction(es, "benefit-ending notice queued") != 1 || countAction(es, "benefit-ending notice sent") != 1 ||
		countAction(es, "read contact to send a benefit-ending notice") != 2 {
		t.Errorf("a's audit = %+v; want the queue, each read of the contact, the send", es)
	}
	for _, x := range es {
		if x.Action == "benefit-ending notice sent" &&
			(x.User != registry.NoticesActor.User || x.Purpose != registry.PurposeNotice || x.Record != "notice/"+itoa(cl.ID)) {
			t.Errorf("the send's audit entry = %+v", x)
		}
	}
}

func testNoticeGivesUpAndMoves(t *testing.T, e *env) {
	today := registry.Today(start, e.opt.Location)
	r := e.register()
	x := pensioner(r.ID)
	x.ValidTo = today.AddDays(20)
	ent, err := e.s.AddEntitlement(e.ctx, desk, x)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.QueueNotices(e.ctx, today, today.AddDays(30), all); err != nil {
		t.Fatal(err)
	}
	// Claimed twice without an outcome (the runner crashed): the third
	// claim drops it.
	for i := range 2 {
		cs, err := e.s.ClaimNotices(e.ctx, 10, 2, retryMinutes)
		if err != nil || len(cs) != 1 {
			t.Fatalf("claim %d = %+v, %v", i+1, cs, err)
		}
		e.clock.Set(e.clock.Now().Add(time.Hour))
	}
	if cs, err := e.s.ClaimNotices(e.ctx, 10, 2, retryMinutes); err != nil || len(cs) != 0 {
		t.Fatalf("claim after the last attempt = %+v, %v; want none", cs, err)
	}
	rn, err := e.s.ResidentNotices(e.ctx, desk, r.ID)
	if err != nil || len(rn.Notices) != 1 || rn.Notices[0].Dropped.IsZero() || rn.Notices[0].DropReason == "" {
		t.Fatalf("after giving up = %+v, %v; want it dropped with a reason", rn, err)
	}
	// The benefit's end moves: a notice about the new end is queued, and
	// a pending claim sees the new end.
	if _, err := e.s.EndEntitlement(e.ctx, desk, r.ID, ent.ID, today.AddDays(5)); err != nil {
		t.Fatal(err)
	}
	q, err := e.s.QueueNotices(e.ctx, today, today.AddDays(30), all)
	if err != nil || len(q) != 1 || q[0].Ends != today.AddDays(5) {
		t.Fatalf("queue after the end moved = %+v, %v", q, err)
	}
	if _, err := e.s.EndEntitlement(e.ctx, desk, r.ID, ent.ID, today.AddDays(3)); err != nil {
		t.Fatal(err)
	}
	cs, err := e.s.ClaimNotices(e.ctx, 10, 2, retryMinutes)
	if err != nil || len(cs) != 1 || cs[0].Ends != today.AddDays(5) || cs[0].CurrentEnds != today.AddDays(3) {
		t.Fatalf("claim after a second move = %+v, %v", cs, err)
	}
	if err := e.s.FinishNotice(e.ctx, cs[0].ID, registry.NoticeOutcome{Drop: "the benefit's last day\nchanged"}); err != nil {
		t.Fatal(err)
	}
	rn, err = e.s.ResidentNotices(e.ctx, desk, r.ID)
	if err != nil || len(rn.Notices) != 2 || rn.Notices[0].DropReason != "the benefit's last day changed" {
		t.Errorf("notices = %+v, %v", rn, err)
	}
}

func testNoticeOptOutRights(t *testing.T, e *env) {
	r, other := e.register(), e.register()
	before := e.state()
	for _, c := range []struct {
		name string
		a    registry.Access
		id   int64
		want error
	}{
		{"finance", as(financeActor, "x"), r.ID, registry.ErrForbidden},
		{"another resident", residentOf(other.ID), r.ID, registry.ErrForbidden},
		{"unknown resident", desk, 99999, registry.ErrNotFound},
	} {
		if err := e.s.SetNoticeOptOut(e.ctx, c.a, c.id, true); !errors.Is(err, c.want) {
			t.Errorf("%s: SetNoticeOptOut = %v; want %v", c.name, err, c.want)
		}
	}
	if _, err := e.s.ResidentNotices(e.ctx, as(deskActor, ""), r.ID); !errors.Is(err, registry.ErrNoPurpose) {
		t.Errorf("ResidentNotices without a purpose = %v", err)
	}
	if _, err := e.s.ResidentNotices(e.ctx, residentOf(other.ID), r.ID); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("ResidentNotices of another resident = %v", err)
	}
	if e.state() != before {
		t.Error("a refused call wrote something")
	}
	// Set twice, then undone by the desk.
	for range 2 {
		if err := e.s.SetNoticeOptOut(e.ctx, residentOf(r.ID), r.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	if rn, err := e.s.ResidentNotices(e.ctx, residentOf(r.ID), r.ID); err != nil || !rn.OptedOut {
		t.Errorf("after opting out = %+v, %v", rn, err)
	}
	if err := e.s.SetNoticeOptOut(e.ctx, desk, r.ID, false); err != nil {
		t.Fatal(err)
	}
	if rn, err := e.s.ResidentNotices(e.ctx, residentOf(r.ID), r.ID); err != nil || rn.OptedOut {
		t.Errorf("after the desk opted them in = %+v, %v", rn, err)
	}
	es, err := e.s.Audit(e.ctx, residentOf(r.ID), registry.AuditQuery{})
	if err != nil || countAction(es, "notices: opted out") != 2 || countAction(es, "notices: opted in") != 1 {
		t.Errorf("the resident's audit = %+v, %v", es, err)
	}
}

// testNoticeQueueInParts: more candidates than one transaction reads are
// all queued, each once.
func testNoticeQueueInParts(t *testing.T, e *env) {
	today := registry.Today(start, e.opt.Location)
	r := e.register()
	const n = 501 // one more than sqlstore reads at a time
	for i := range n {
		x := pensioner(r.ID)
		x.ValidTo = today.AddDays(1 + i%30)
		if _, err := e.s.AddEntitlement(e.ctx, desk, x); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[int64]bool{}
	q, err := e.s.QueueNotices(e.ctx, today, today.AddDays(30), func(cs []registry.NoticeCandidate) []registry.Notice {
		for _, c := range cs {
			if seen[c.Entitlement] {
				t.Errorf("entitlement %d is a candidate twice", c.Entitlement)
			}
			seen[c.Entitlement] = true
		}
		return all(cs)
	})
	if err != nil || len(q) != n || len(seen) != n {
		t.Fatalf("QueueNotices = %d queued of %d candidates, %v; want %d", len(q), len(seen), err, n)
	}
	if again, err := e.s.QueueNotices(e.ctx, today, today.AddDays(30), all); err != nil || len(again) != 0 {
		t.Errorf("a second pass queued %d, %v", len(again), err)
	}
}
