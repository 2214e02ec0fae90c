package console

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/citycard/transit/registry"
)

// Online applications (registry.Application): a resident applies for a
// card or a benefit on their page with the documents attached; the desk
// sees the queue, opens each application and its documents (audited
// reads, with a purpose), and accepts it, which creates the entitlement
// or orders the card through the registry's own checks, or refuses it
// with a reason the resident reads. Both decisions are confirmed first.

// maxApplicationFields bounds a text field of the application form.
const maxApplicationFields = 4 << 10

// applyForm is the resident's application form, kept as typed when it
// comes back with a problem (the files are not: a browser cannot be
// given them back, which the form says).
type applyForm struct {
	Kind, Category, Note string
	Error                string
}

// Categories are the benefits a resident may apply for.
func (f applyForm) Categories() []option { return options(registry.CategoryCodes, f.Category) }

// applicationsPage is the resident's list of applications and the form.
type applicationsPage struct {
	Applications []registry.Application
	Form         applyForm
	MaxFiles     int
	MaxMiB       int
}

// deskApplicationsPage is the desk's queue, or one application in it.
type deskApplicationsPage struct {
	Purpose      string
	Applications []registry.Application
	// One is the application open, with the acceptance form of a
	// benefit (Grant) and the problem of the last decision.
	One   *registry.Application
	Grant grantForm
	Error string
}

// myApplications shows the resident their applications and the form.
func (s *Server) myApplications(w http.ResponseWriter, r *http.Request, rq *request) error {
	return s.renderApplications(w, r, rq, http.StatusOK, applyForm{Kind: string(registry.ApplyBenefit)}, applicationNotice(rq.lang, r))
}

func (s *Server) renderApplications(w http.ResponseWriter, r *http.Request, rq *request, status int, f applyForm, notice string) error {
	aps, err := s.reg.Applications(r.Context(), access(rq, registry.PurposeOwnView), registry.ApplicationQuery{})
	if err != nil {
		return err
	}
	s.render(w, r, rq, status, "applications", "apply.title", applicationsPage{Applications: aps, Form: f,
		MaxFiles: registry.MaxAttachments, MaxMiB: registry.MaxAttachmentBytes >> 20}, notice)
	return nil
}

// applicationNotice confirms a submission, from the redirect's query.
func applicationNotice(lang string, r *http.Request) string {
	if r.URL.Query().Get("done") == "submitted" {
		return translate(lang, "apply.done")
	}
	return ""
}

// apply reads the resident's multipart form (its CSRF secret already
// checked, handleUpload): the kind, the category and the note, and each
// document, read no further than the registry's limit. The registry
// checks the rest (types by their bytes, counts, a second application).
func (s *Server) apply(w http.ResponseWriter, r *http.Request, rq *request) error {
	f := applyForm{}
	ap := registry.Application{Resident: rq.ses.actor.Resident}
	refuse := func(status int, key string, args ...any) error {
		f.Error = translate(rq.lang, key, args...)
		return s.renderApplications(w, r, rq, status, f, "")
	}
	for {
		part, err := rq.upload.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return refuse(http.StatusRequestEntityTooLarge, "apply.err.big", registry.MaxAttachments, registry.MaxAttachmentBytes>>20)
		}
		if err != nil {
			return &pageError{status: http.StatusBadRequest, key: "err.400", err: fmt.Errorf("read the application: %w", err)}
		}
		switch name := part.FormName(); name {
		case "kind", "category", "note":
			b, err := io.ReadAll(io.LimitReader(part, maxApplicationFields))
			if err != nil {
				return &pageError{status: http.StatusBadRequest, key: "err.400", err: err}
			}
			v := strings.TrimSpace(string(b))
			switch name {
			case "kind":
				f.Kind = v
			case "category":
				f.Category = v
			default:
				f.Note = v
			}
		case "files":
			if part.FileName() == "" {
				break // the browser's empty file input
			}
			if len(ap.Attachments) == registry.MaxAttachments {
				return refuse(http.StatusBadRequest, "apply.err.many", registry.MaxAttachments)
			}
			data, err := io.ReadAll(io.LimitReader(part, registry.MaxAttachmentBytes+1))
			if errors.As(err, &tooBig) {
				return refuse(http.StatusRequestEntityTooLarge, "apply.err.big", registry.MaxAttachments, registry.MaxAttachmentBytes>>20)
			}
			if err != nil {
				return &pageError{status: http.StatusBadRequest, key: "err.400", err: err}
			}
			if len(data) > registry.MaxAttachmentBytes {
				return refuse(http.StatusRequestEntityTooLarge, "apply.err.file", registry.AttachmentName(part.FileName()), registry.MaxAttachmentBytes>>20)
			}
			ap.Attachments = append(ap.Attachments, registry.Attachment{Name: part.FileName(), Data: data})
		}
		part.Close()
	}
	ap.Kind, ap.Note = registry.ApplicationKind(f.Kind), f.Note
	if ap.Kind == registry.ApplyBenefit {
		c, err := strconv.ParseUint(f.Category, 10, 16)
		if err != nil {
			return refuse(http.StatusBadRequest, "apply.err.category")
		}
		ap.Category = uint16(c)
	}
	_, err := s.reg.SubmitApplication(r.Context(), access(rq, registry.PurposeOwnView), ap)
	switch {
	case errors.Is(err, registry.ErrInvalid), errors.Is(err, registry.ErrConflict):
		f.Error = err.Error()
		return s.renderApplications(w, r, rq, http.StatusBadRequest, f, "")
	case err != nil:
		return err
	}
	http.Redirect(w, r, "/me/applications?done=submitted", http.StatusSeeOther)
	return nil
}

// serveAttachment answers a document as a download: never shown inline,
// so that a crafted file cannot run as a page of the console.
func serveAttachment(w http.ResponseWriter, at registry.Attachment) {
	h := w.Header()
	h.Set("Content-Type", at.Type)
	h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": at.Name}))
	h.Set("Content-Length", strconv.Itoa(len(at.Data)))
	w.Write(at.Data) //nolint:errcheck // the client went away
}

// pathFile is the application and document the path names.
func pathFile(r *http.Request) (app, file int64, err error) {
	if app, err = pathID(r, "id"); err == nil {
		file, err = pathID(r, "fid")
	}
	return app, file, err
}

// myAttachment sends the resident one of their own documents.
func (s *Server) myAttachment(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, fid, err := pathFile(r)
	if err != nil {
		return err
	}
	at, err := s.reg.Attachment(r.Context(), access(rq, registry.PurposeOwnView), id, fid)
	if err != nil {
		return err
	}
	serveAttachment(w, at)
	return nil
}

// queryPurpose is the purpose a desk page carries in its query; without
// one the page asks for it first and reads nothing.
func (s *Server) queryPurpose(w http.ResponseWriter, r *http.Request, rq *request) string {
	purpose := strings.TrimSpace(r.URL.Query().Get("purpose"))
	if purpose == "" {
		s.render(w, r, rq, http.StatusOK, "purpose", "purpose.ask.title", purposePage{Action: r.URL.Path}, "")
	}
	return purpose
}

// deskApplications shows the desk the applications waiting for a
// decision: an audited read of each, with the page's purpose.
func (s *Server) deskApplications(w http.ResponseWriter, r *http.Request, rq *request) error {
	purpose := s.queryPurpose(w, r, rq)
	if purpose == "" {
		return nil
	}
	aps, err := s.reg.Applications(r.Context(), access(rq, purpose), registry.ApplicationQuery{Status: registry.ApplicationSubmitted})
	if err != nil {
		return err
	}
	s.render(w, r, rq, http.StatusOK, "desk_applications", "apply.queue.title", deskApplicationsPage{Purpose: purpose, Applications: aps},
		deskApplicationNotice(rq.lang, r))
	return nil
}

func deskApplicationNotice(lang string, r *http.Request) string {
	switch r.URL.Query().Get("done") {
	case "accepted":
		return translate(lang, "apply.done.accepted")
	case "refused":
		return translate(lang, "apply.done.refused")
	}
	return ""
}

// deskApplication shows one application with its documents and the
// decision forms.
func (s *Server) deskApplication(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	purpose := s.queryPurpose(w, r, rq)
	if purpose == "" {
		return nil
	}
	pg, err := s.applicationView(r, rq, id, purpose)
	if err != nil {
		return err
	}
	s.render(w, r, rq, http.StatusOK, "desk_applications", "apply.one.title", pg, "")
	return nil
}

func (s *Server) applicationView(r *http.Request, rq *request, id int64, purpose string) (deskApplicationsPage, error) {
	aps, err := s.reg.Applications(r.Context(), access(rq, purpose), registry.ApplicationQuery{ID: id})
	if err != nil {
		return deskApplicationsPage{}, err
	}
	if len(aps) != 1 {
		return deskApplicationsPage{}, &pageError{status: http.StatusNotFound, key: "err.404", err: fmt.Errorf("no application %d", id)}
	}
	today := registry.Today(s.now(), s.loc)
	return deskApplicationsPage{Purpose: purpose, One: &aps[0],
		Grant: grantForm{Category: strconv.Itoa(int(aps[0].Category)), ValidFrom: today.String(),
			Evidence: translate(rq.lang, "apply.evidence", id), Errors: newFormErrors(grantPrefix, grantLabels())}}, nil
}

// AppKind names what an application is for, in the page's language.
func (p *page) AppKind(ap registry.Application) string {
	if ap.Kind == registry.ApplyBenefit {
		return p.T("apply.kind.benefit", p.Category(ap.Category))
	}
	return p.T("apply.kind.card")
}

// AppStatus says where an application is, with the desk's reason.
func (p *page) AppStatus(ap registry.Application) string {
	switch ap.Status {
	case registry.ApplicationAccepted:
		return p.T("apply.status.accepted", p.Time(ap.Decided))
	case registry.ApplicationRefused:
		return p.T("apply.status.refused", p.Time(ap.Decided), ap.Reason)
	}
	return p.T("apply.status.submitted")
}

// Size is a document's size in KiB, at least 1.
func (p *page) Size(n int) string { return p.T("apply.size", max(1, (n+1023)/1024)) }

// deskAttachment sends the desk a document of an application: an
// audited read with the page's purpose.
func (s *Server) deskAttachment(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, fid, err := pathFile(r)
	if err != nil {
		return err
	}
	purpose := s.queryPurpose(w, r, rq)
	if purpose == "" {
		return nil
	}
	at, err := s.reg.Attachment(r.Context(), access(rq, purpose), id, fid)
	if err != nil {
		return err
	}
	serveAttachment(w, at)
	return nil
}

// deskDecide accepts or refuses an application, after a confirmation
// that says what will happen and to whom. A benefit's acceptance takes
// the entitlement's dates, funding and basis from the form, checked as
// the desk's grant is; a problem comes back at the form.
func (s *Server) deskDecide(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, purpose, err := recordForm(r)
	if err != nil {
		return err
	}
	accept := formValue(r, "decision") == "accept"
	d := registry.Decision{Accept: accept, Reason: formValue(r, "reason")}
	pg, err := s.applicationView(r, rq, id, purpose)
	if err != nil {
		return err
	}
	ap := pg.One
	g := grantForm{Category: strconv.Itoa(int(ap.Category)), Funding: formValue(r, "funding"), ValidFrom: formValue(r, "valid_from"),
		ValidTo: formValue(r, "valid_to"), LegalBasis: formValue(r, "legal_basis"), Evidence: formValue(r, "evidence"),
		MonthlyLimit: formValue(r, "monthly_limit"), Errors: newFormErrors(grantPrefix, grantLabels())}
	if accept && ap.Kind == registry.ApplyBenefit {
		pg.Grant = g
		d.Entitlement = g.check(rq.lang, ap.Resident)
		if g.Errors.Any() {
			pg.Grant = g
			s.render(w, r, rq, http.StatusBadRequest, "desk_applications", "apply.one.title", pg, "")
			return nil
		}
	}
	if !accept && d.Reason == "" {
		pg.Grant, pg.Error = g, translate(rq.lang, "apply.err.reason")
		s.render(w, r, rq, http.StatusBadRequest, "desk_applications", "apply.one.title", pg, "")
		return nil
	}
	confirm := fmt.Sprintf("refuse application %d", id)
	if accept {
		confirm = fmt.Sprintf("accept application %d", id)
	}
	if !isConfirmed(r, confirm) {
		lang := rq.lang
		what := translate(lang, "apply.confirm.refuse", id, d.Reason)
		after := translate(lang, "apply.confirm.refuse.after")
		button := translate(lang, "apply.confirm.refuse.button")
		if accept {
			button = translate(lang, "apply.confirm.accept.button")
			if ap.Kind == registry.ApplyCard {
				what, after = translate(lang, "apply.confirm.card", id), translate(lang, "apply.confirm.card.after")
			} else {
				what = translate(lang, "apply.confirm.benefit", id, categoryName(lang, strconv.Itoa(int(ap.Category))),
					formatDate(lang, d.Entitlement.ValidFrom), formatDate(lang, d.Entitlement.ValidTo))
				after = translate(lang, "apply.confirm.benefit.after")
			}
		}
		return s.askConfirmation(w, r, rq, confirmation{Value: confirm, What: what, Whom: ap.ResidentName, Consequence: after,
			Button: button, Cancel: withQuery(fmt.Sprintf("/desk/applications/%d", id), "purpose", purpose)})
	}
	_, err = s.reg.DecideApplication(r.Context(), access(rq, purpose), id, d)
	var fe *registry.FieldError
	switch {
	case errors.As(err, &fe) && accept && ap.Kind == registry.ApplyBenefit:
		g.Errors.addRegistry(fe)
		pg.Grant = g
		s.render(w, r, rq, http.StatusBadRequest, "desk_applications", "apply.one.title", pg, "")
		return nil
	case err != nil:
		return err
	}
	done := "refused"
	if accept {
		done = "accepted"
	}
	http.Redirect(w, r, "/desk/applications?"+url.Values{"purpose": {purpose}, "done": {done}}.Encode(), http.StatusSeeOther)
	return nil
}
