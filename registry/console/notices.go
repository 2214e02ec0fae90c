package console

import (
	"net/http"
	"strings"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notices"
)

// noticesPage is a resident's benefit-ending notices: whether they want
// them, and what was sent, for the resident themselves or the desk.
type noticesPage struct {
	Resident int64
	Notices  registry.ResidentNotices
	// Desk is the desk's view: Purpose is carried, and CanSet says the
	// role may change the setting.
	Desk    bool
	Purpose string
	CanSet  bool
	Action  string // where the setting's form goes
	Back    string // the page this one belongs to
}

// NoticeEnds is a notice's benefit's last day as Ukrainian documents
// write it.
func (p *page) NoticeEnds(n registry.Notice) string { return notices.DMY(n.Ends) }

// NoticeState says what became of a notice.
func (p *page) NoticeState(n registry.Notice) string {
	switch {
	case !n.Sent.IsZero():
		return p.T("notices.sent", p.noticeTime(n.Sent), n.SentTo)
	case !n.Dropped.IsZero():
		return p.T("notices.dropped", p.noticeTime(n.Dropped), p.dropReason(n.DropReason))
	case n.Attempts > 0:
		return p.T("notices.retrying", n.Attempts, p.noticeTime(n.NextAttempt))
	}
	return p.T("notices.queued")
}

// dropReasons are the keys of the outbox's fixed reasons.
var dropReasons = map[string]string{
	registry.NoticeOptedOut:       "notices.why.opted-out",
	registry.NoticeNoEntitlement:  "notices.why.no-entitlement",
	registry.NoticeEnded:          "notices.why.ended",
	registry.NoticeContactCleared: "notices.why.cleared",
	registry.NoticeNoContact:      "notices.why.no-contact",
	registry.NoticeUnreachable:    "notices.why.unreachable",
	registry.NoticeRefused:        "notices.why.refused",
}

// dropReason translates why a notice was dropped; the details after a
// known beginning (a date, the last error) are kept as they are.
func (p *page) dropReason(r string) string {
	if key, ok := dropReasons[r]; ok {
		return p.T(key)
	}
	if rest, ok := strings.CutPrefix(r, registry.NoticeEndMoved); ok {
		return p.T("notices.why.moved", rest)
	}
	if rest, ok := strings.CutPrefix(r, registry.NoticeGaveUp); ok {
		if n, last, ok := strings.Cut(rest, " attempts: "); ok {
			return p.T("notices.why.gave-up", n, last)
		}
	}
	return r
}

// noticeTime writes an instant in the city's time, DD.MM.YYYY HH:MM on
// Ukrainian pages.
func (p *page) noticeTime(t time.Time) string {
	if p.Lang == "uk" {
		return t.In(p.loc).Format("02.01.2006 15:04")
	}
	return p.Time(t)
}

// myNotices is the resident's own notices page.
func (s *Server) myNotices(w http.ResponseWriter, r *http.Request, rq *request) error {
	id := rq.ses.actor.Resident
	rn, err := s.reg.ResidentNotices(r.Context(), access(rq, registry.PurposeOwnView), id)
	if err != nil {
		return err
	}
	pg := noticesPage{Resident: id, Notices: rn, CanSet: true, Action: "/me/notices", Back: "/me"}
	s.render(w, r, rq, http.StatusOK, "notices", "notices.title", pg, noticesDone(rq.lang, r))
	return nil
}

// setMyNotices is the resident opting out of notices, or back in.
func (s *Server) setMyNotices(w http.ResponseWriter, r *http.Request, rq *request) error {
	out, err := formOptOut(r)
	if err != nil {
		return err
	}
	if err := s.reg.SetNoticeOptOut(r.Context(), access(rq, ""), rq.ses.actor.Resident, out); err != nil {
		return err
	}
	http.Redirect(w, r, withQuery("/me/notices", "done", doneKey(out)), http.StatusSeeOther)
	return nil
}

// deskNotices is a resident's notices at the desk, read with a purpose.
func (s *Server) deskNotices(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, purpose, err := s.residentPurpose(w, r, rq)
	if err != nil || purpose == "" {
		return err
	}
	rn, err := s.reg.ResidentNotices(r.Context(), access(rq, purpose), id)
	if err != nil {
		return err
	}
	pg := noticesPage{Resident: id, Notices: rn, Desk: true, Purpose: purpose, CanSet: registry.Allowed(rq.ses.actor.Role, registry.ActRegister),
		Action: r.URL.Path, Back: residentHref(id, purpose)}
	s.render(w, r, rq, http.StatusOK, "notices", "notices.title", pg, noticesDone(rq.lang, r))
	return nil
}

// deskSetNotices records a resident's wish at the desk.
func (s *Server) deskSetNotices(w http.ResponseWriter, r *http.Request, rq *request) error {
	id, purpose, err := recordForm(r)
	if err != nil {
		return err
	}
	out, err := formOptOut(r)
	if err != nil {
		return err
	}
	if err := s.reg.SetNoticeOptOut(r.Context(), access(rq, purpose), id, out); err != nil {
		return err
	}
	http.Redirect(w, r, withQuery(r.URL.Path, "purpose", purpose, "done", doneKey(out)), http.StatusSeeOther)
	return nil
}

func formOptOut(r *http.Request) (bool, error) {
	switch r.PostFormValue("opt_out") {
	case "1":
		return true, nil
	case "0":
		return false, nil
	}
	return false, &pageError{status: http.StatusBadRequest, key: "notices.bad.form", err: registry.ErrInvalid}
}

func doneKey(optOut bool) string {
	if optOut {
		return "off"
	}
	return "on"
}

// noticesDone confirms what the last form did.
func noticesDone(lang string, r *http.Request) string {
	switch r.URL.Query().Get("done") {
	case "off":
		return translate(lang, "notices.done.off")
	case "on":
		return translate(lang, "notices.done.on")
	}
	return ""
}
