package storetest

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
)

// Small documents of each accepted type, and one that is not.
var (
	pdfDoc = []byte("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	pngDoc = append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), make([]byte, 40)...)
	exeDoc = append([]byte("MZ\x90\x00"), make([]byte, 60)...)
)

// testApplications: a resident applies online for a benefit and a card
// with documents; bad documents and second applications are refused with
// nothing written; the documents are read only by their owner and by
// staff with a purpose, audited; a desk's acceptance creates the
// entitlement or the card through the desk's own checks, a refusal needs
// a reason, and a decision is final.
func testApplications(t *testing.T, e *env) {
	r := e.register()
	me := residentOf(r.ID)
	benefit := registry.Application{Resident: r.ID, Kind: registry.ApplyBenefit, Category: registry.CategoryStudent,
		Note: "студентка 2 курсу", Attachments: []registry.Attachment{{Name: `C:\scans\студентський.pdf`, Data: pdfDoc}}}

	before := e.state()
	big := make([]byte, registry.MaxAttachmentBytes+1)
	copy(big, pdfDoc)
	for name, try := range map[string]struct {
		a    registry.Access
		ap   func(*registry.Application)
		want error
	}{
		"an executable":       {me, func(ap *registry.Application) { ap.Attachments[0].Data = exeDoc }, registry.ErrInvalid},
		"too big":             {me, func(ap *registry.Application) { ap.Attachments[0].Data = big }, registry.ErrInvalid},
		"no document":         {me, func(ap *registry.Application) { ap.Attachments = nil }, registry.ErrInvalid},
		"an unknown category": {me, func(ap *registry.Application) { ap.Category = 99 }, registry.ErrInvalid},
		"a note with a bidi":  {me, func(ap *registry.Application) { ap.Note = "x\u202ey" }, registry.ErrInvalid},
		"five documents":      {me, func(ap *registry.Application) { ap.Attachments = make([]registry.Attachment, 5) }, registry.ErrInvalid},
		"for somebody else":   {residentOf(r.ID + 1000), func(*registry.Application) {}, registry.ErrForbidden},
		"by finance":          {as(financeActor, "x"), func(*registry.Application) {}, registry.ErrForbidden},
		"an unknown kind":     {me, func(ap *registry.Application) { ap.Kind = "pension" }, registry.ErrInvalid},
	} {
		ap := benefit
		ap.Attachments = append([]registry.Attachment(nil), benefit.Attachments...)
		try.ap(&ap)
		if _, err := e.s.SubmitApplication(e.ctx, try.a, ap); !errors.Is(err, try.want) {
			t.Errorf("%s: %v, want %v", name, err, try.want)
		}
	}
	if after := e.state(); after != before {
		t.Fatalf("refused applications changed the registry:\n%s\n%s", before, after)
	}

	got, err := e.s.SubmitApplication(e.ctx, me, benefit)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != registry.ApplicationSubmitted || len(got.Attachments) != 1 || got.Attachments[0].Name != "студентський.pdf" ||
		got.Attachments[0].Type != "application/pdf" {
		t.Errorf("submitted %+v", got)
	}
	if _, err := e.s.SubmitApplication(e.ctx, me, benefit); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("the same application twice: %v, want ErrConflict", err)
	}

	// The documents: their owner and staff with a purpose, audited.
	doc, err := e.s.Attachment(e.ctx, me, got.ID, got.Attachments[0].ID)
	if err != nil || !bytes.Equal(doc.Data, pdfDoc) {
		t.Fatalf("the owner's document: %d bytes, %v", len(doc.Data), err)
	}
	other := e.register()
	if _, err := e.s.Attachment(e.ctx, residentOf(other.ID), got.ID, got.Attachments[0].ID); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("another resident reads the document: %v, want ErrNotFound", err)
	}
	if _, err := e.s.Attachment(e.ctx, registry.Access{Actor: deskActor}, got.ID, got.Attachments[0].ID); !errors.Is(err, registry.ErrNoPurpose) {
		t.Errorf("the desk reads the document without a purpose: %v, want ErrNoPurpose", err)
	}
	n := e.auditCount()
	if _, err := e.s.Attachment(e.ctx, desk, got.ID, got.Attachments[0].ID); err != nil {
		t.Fatal(err)
	}
	if e.auditCount() != n+1 {
		t.Error("the desk's read of a document is not audited")
	}
	queue, err := e.s.Applications(e.ctx, desk, registry.ApplicationQuery{Status: registry.ApplicationSubmitted})
	if err != nil || len(queue) != 1 || queue[0].ResidentName != r.Name || queue[0].Attachments[0].Data != nil {
		t.Fatalf("the desk's queue: %+v, %v", queue, err)
	}
	mine, err := e.s.Applications(e.ctx, residentOf(other.ID), registry.ApplicationQuery{Resident: r.ID})
	if err != nil || len(mine) != 0 {
		t.Errorf("another resident's list of r's applications: %+v, %v", mine, err)
	}

	// Decisions.
	if _, err := e.s.DecideApplication(e.ctx, me, got.ID, registry.Decision{Accept: true}); !errors.Is(err, registry.ErrForbidden) {
		t.Errorf("the applicant decides: %v, want ErrForbidden", err)
	}
	if _, err := e.s.DecideApplication(e.ctx, desk, got.ID, registry.Decision{Reason: " "}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("a refusal without a reason: %v, want ErrInvalid", err)
	}
	ent := registry.Entitlement{LegalBasis: "ЗУ «Про освіту»", Evidence: "студентський квиток КВ 12345678 (заява онлайн)",
		ValidFrom: registry.Date{Year: 2026, Month: time.December, Day: 1}, ValidTo: registry.Date{Year: 2027, Month: time.June, Day: 30},
		Funding: registry.FundingCity, MonthlyLimit: 50}
	bad := ent
	bad.ValidTo = registry.Date{Year: 2026, Month: time.January, Day: 1}
	if _, err := e.s.DecideApplication(e.ctx, desk, got.ID, registry.Decision{Accept: true, Entitlement: bad}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("an acceptance with an entitlement that ends before it starts: %v, want ErrInvalid", err)
	}
	acc, err := e.s.DecideApplication(e.ctx, desk, got.ID, registry.Decision{Accept: true, Reason: "документ перевірено", Entitlement: ent})
	if err != nil || acc.Status != registry.ApplicationAccepted || !strings.HasPrefix(acc.Result, "entitlement/") || acc.DecidedBy != deskActor.User {
		t.Fatalf("accept: %+v, %v", acc, err)
	}
	d, err := e.s.Resident(e.ctx, desk, r.ID)
	if err != nil || len(d.Entitlements) != 1 || d.Entitlements[0].Category != registry.CategoryStudent || d.Entitlements[0].MonthlyLimit != 50 {
		t.Errorf("the entitlement the acceptance made: %+v, %v", d.Entitlements, err)
	}
	if _, err := e.s.DecideApplication(e.ctx, desk, got.ID, registry.Decision{Reason: "передумали"}); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("deciding again: %v, want ErrConflict", err)
	}

	// A card: refused while the resident has one, ordered on acceptance.
	cardApp := registry.Application{Resident: r.ID, Kind: registry.ApplyCard}
	withCard := e.cardIn(registry.StatusActive)
	if _, err := e.s.SubmitApplication(e.ctx, residentOf(withCard.ResidentID), registry.Application{Resident: withCard.ResidentID, Kind: registry.ApplyCard}); !errors.Is(err, registry.ErrConflict) {
		t.Errorf("a card application of a resident with a card: %v, want ErrConflict", err)
	}
	ca, err := e.s.SubmitApplication(e.ctx, me, cardApp)
	if err != nil {
		t.Fatal(err)
	}
	acc, err = e.s.DecideApplication(e.ctx, desk, ca.ID, registry.Decision{Accept: true})
	if err != nil || !strings.HasPrefix(acc.Result, "card/") {
		t.Fatalf("accept the card application: %+v, %v", acc, err)
	}
	if d, err := e.s.Resident(e.ctx, desk, r.ID); err != nil || len(d.Cards) != 1 || d.Cards[0].Status != registry.StatusOrdered {
		t.Errorf("the card the acceptance ordered: %+v, %v", d.Cards, err)
	}
	list, err := e.s.Applications(e.ctx, me, registry.ApplicationQuery{})
	if err != nil || len(list) != 2 || list[0].Status != registry.ApplicationAccepted || list[1].Status != registry.ApplicationAccepted {
		t.Errorf("the resident's own list: %+v, %v", list, err)
	}
}
