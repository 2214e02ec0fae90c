package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/citycard/transit/card"
	cstore "github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/validator/tap"
)

// auditPageSize is how many audit entries a page shows.
const auditPageSize = 100

// auditPage is a page of the audit log.
type auditPage struct {
	Resident int64
	Entries  []auditRow
	// MoreHref is the next page, when this one is full.
	MoreHref string
	// Check is the last verification of the audit chain.
	Check verifyView
}

// auditRow is an entry, and whether the last verification covered it.
type auditRow struct {
	registry.AuditEntry
	Verified bool
}

// verifyView is what a page says about the last verification.
type verifyView struct {
	// Checked is false when this console has not verified the chain.
	Checked, OK bool
	At          time.Time
	Head        int64
	Checkpoints int
	Signed      bool
	// Problem names the first bad entry of a broken chain.
	Problem string
}

// verification returns the last verification and a function that tells
// whether it covered an entry.
func (s *Server) verification() (verifyView, func(int64) bool) {
	none := func(int64) bool { return false }
	if s.monitor == nil {
		return verifyView{}, none
	}
	rep, ok := s.monitor.Last()
	if !ok {
		return verifyView{}, none
	}
	v := verifyView{Checked: true, OK: rep.OK(), At: rep.At, Head: rep.Head, Checkpoints: rep.Checkpoints, Signed: rep.Signed}
	if !rep.OK() {
		v.Problem = rep.First.String()
	}
	return v, rep.Covers
}

// mePage is a resident's own view.
type mePage struct {
	Dossier registry.Dossier
	Rides   ridesPage
	Audit   auditPage
}

// Blockable reports whether the resident may block card c themselves.
func (mePage) Blockable(c registry.Card) bool { return ownBlockable(c) }

// OwnBlockReasons are the reasons a resident may give.
func (mePage) OwnBlockReasons() []registry.Reason { return registry.OwnBlockReasons }

// queryID reads an optional non-negative id from the query.
func queryID(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &pageError{status: http.StatusBadRequest, key: "err.400", err: fmt.Errorf("%s=%q is not a record number", name, v)}
	}
	return n, nil
}

// readAudit reads a page of the audit log; the store limits a resident
// to the entries about themselves whatever q says.
func (s *Server) readAudit(r *http.Request, a registry.Access, q registry.AuditQuery, path string) (auditPage, error) {
	q.Limit = auditPageSize
	es, err := s.reg.Audit(r.Context(), a, q)
	if err != nil {
		return auditPage{}, err
	}
	check, covered := s.verification()
	pg := auditPage{Resident: q.Resident, Check: check}
	for _, e := range es {
		pg.Entries = append(pg.Entries, auditRow{AuditEntry: e, Verified: covered(e.Seq)})
	}
	if len(es) == auditPageSize {
		resident := ""
		if q.Resident != 0 && a.Actor.Role != registry.RoleResident {
			resident = strconv.FormatInt(q.Resident, 10)
		}
		pg.MoreHref = withQuery(path, "resident", resident, "after", strconv.FormatInt(es[len(es)-1].ID, 10))
	}
	return pg, nil
}

// me shows residents their own record and who read it. The resident id
// comes from the session, never from the request: there is no way to
// ask for somebody else's.
//
// The page also lists the rides of the resident's cards: the card
// numbers come from the dossier just read under registry.PurposeOwnView,
// never from the request, so the rides shown are always the resident's
// own.
func (s *Server) me(w http.ResponseWriter, r *http.Request, rq *request) error {
	after, err := queryID(r, "after")
	if err != nil {
		return err
	}
	// The request is checked before the registry is read, so that a
	// broken link leaves no audit entry of a page never shown.
	rides, err := s.ridesQuery(r)
	if err != nil {
		return err
	}
	a := access(rq, registry.PurposeOwnView)
	d, err := s.reg.Resident(r.Context(), a, rq.ses.actor.Resident)
	if err != nil {
		return err
	}
	rp, err := s.readRides(r, rq.lang, d.Cards, rides)
	if err != nil {
		return err
	}
	log, err := s.readAudit(r, a, registry.AuditQuery{Resident: rq.ses.actor.Resident, After: after}, "/me")
	if err != nil {
		return err
	}
	s.render(w, r, rq, http.StatusOK, "me", "me.title", mePage{Dossier: d, Rides: rp, Audit: log}, meNotice(rq.lang, r))
	return nil
}

// auditLog shows the audit log to auditors, optionally about one
// resident.
func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, rq *request) error {
	after, err := queryID(r, "after")
	if err != nil {
		return err
	}
	resident, err := queryID(r, "resident")
	if err != nil {
		return err
	}
	pg, err := s.readAudit(r, access(rq, ""), registry.AuditQuery{Resident: resident, After: after}, "/audit")
	if err != nil {
		return err
	}
	// The shared audit table reads .Data.Audit, as on the resident's page.
	s.render(w, r, rq, http.StatusOK, "audit", "audit.title", struct{ Audit auditPage }{pg}, "")
	return nil
}

// ridesPageSize is how many rides a page of the resident's rides shows.
const ridesPageSize = 25

// The month selector offers the last ridesMonthsRecent months, and
// further back to the month the resident's first card was issued in, but
// never more than ridesMonthsMax months.
const (
	ridesMonthsRecent = 24
	ridesMonthsMax    = 60
)

// ridesRequest is what a request asks of the resident's rides.
type ridesRequest struct {
	// Month is the month shown, "YYYY-MM" in the city's time zone.
	Month string
	// Card is the number of one of the resident's cards to show alone,
	// "" for all of them.
	Card string
	// Older and Newer continue from a page: rides older than Older (the
	// next page) or newer than Newer (the previous one); at most one.
	Older, Newer cstore.TapCursor
}

// ridesPage is a page of a month of the resident's rides.
type ridesPage struct {
	Month     string
	MonthName string
	// Months and Cards are the choices of the selector; Cards is empty
	// when the resident has one card or none.
	Months, Cards []choice
	// HasCards is false when the resident has no card, so no rides.
	HasCards bool
	Rides    []rideRow
	// NewerHref and OlderHref are the previous and next pages, "" when
	// there is none.
	NewerHref, OlderHref string
	// Action is the page the selectors and links show again: the
	// resident's own, or a parent's page of a child's.
	Action string
}

// choice is an option of a selector.
type choice struct {
	Value, Text string
	Selected    bool
}

// rideRow is one ride as the resident reads it, in the page's language.
type rideRow struct {
	// At is the time in the city's zone, ISO the instant for <time>.
	At, ISO  string
	Card     string
	Carrier  string
	Route    string
	Result   string
	Refused  bool
	Product  string
	Fare     string
	Charged  string
	Category string
}

// ridesQuery reads the rides part of the request: the month (the
// current one by default), a card, and a page cursor.
func (s *Server) ridesQuery(r *http.Request) (ridesRequest, error) {
	q := r.URL.Query()
	rr := ridesRequest{Month: q.Get("month"), Card: q.Get("card")}
	if rr.Month == "" {
		rr.Month = s.now().In(s.loc).Format("2006-01")
	} else if _, err := cstore.ParsePeriod(rr.Month); err != nil {
		return rr, &pageError{status: http.StatusBadRequest, key: "rides.bad.month", err: err}
	}
	var err error
	if rr.Older, err = cstore.ParseTapCursor(q.Get("older")); err != nil {
		return rr, &pageError{status: http.StatusBadRequest, key: "rides.bad.page", err: err}
	}
	if rr.Newer, err = cstore.ParseTapCursor(q.Get("newer")); err != nil {
		return rr, &pageError{status: http.StatusBadRequest, key: "rides.bad.page", err: err}
	}
	if !rr.Older.IsZero() && !rr.Newer.IsZero() {
		return rr, &pageError{status: http.StatusBadRequest, key: "rides.bad.page", err: fmt.Errorf("both older and newer")}
	}
	return rr, nil
}

// readRides reads a page of the rides of cards, which are the signed-in
// resident's own, as rr asks. A card in rr that is not among them is
// refused as unknown, whether or not it exists, so that the answer says
// nothing about other people's cards.
func (s *Server) readRides(r *http.Request, lang string, cards []registry.Card, rr ridesRequest) (ridesPage, error) {
	pg := ridesPage{Month: rr.Month, MonthName: monthName(lang, rr.Month), HasCards: len(cards) > 0, Action: r.URL.Path}
	var numbers []uint64
	for _, c := range cards {
		if rr.Card == "" || rr.Card == c.Number.String() {
			numbers = append(numbers, uint64(c.Number))
		}
	}
	if rr.Card != "" && len(numbers) == 0 {
		// Neither the number nor whose it is goes to the log.
		return pg, &pageError{status: http.StatusNotFound, key: "rides.card.unknown"}
	}
	pg.Months = s.monthChoices(lang, cards, rr.Month)
	if len(cards) > 1 {
		pg.Cards = append(pg.Cards, choice{Value: "", Text: translate(lang, "rides.card.all"), Selected: rr.Card == ""})
		for _, c := range cards {
			n := c.Number.String()
			pg.Cards = append(pg.Cards, choice{Value: n, Text: formatCard(c.Number), Selected: rr.Card == n})
		}
	}
	if len(numbers) == 0 {
		return pg, nil
	}
	from, to, err := cstore.Bounds(rr.Month, s.loc)
	if err != nil {
		return pg, &pageError{status: http.StatusBadRequest, key: "rides.bad.month", err: err}
	}
	// One more than a page tells whether there is a page beyond.
	q := cstore.CardTapQuery{Cards: numbers, From: from, To: to, Limit: ridesPageSize + 1, Before: rr.Older, After: rr.Newer}
	taps, err := s.clr.CardTaps(r.Context(), q)
	if err != nil {
		return pg, fmt.Errorf("read the resident's rides of %s: %w", rr.Month, err)
	}
	var newer, older bool
	switch {
	case !rr.Newer.IsZero() && len(taps) <= ridesPageSize:
		// Back at the newest rides: show the first page as it is, not
		// the few rides that were left above the cursor.
		q.After = cstore.TapCursor{}
		if taps, err = s.clr.CardTaps(r.Context(), q); err != nil {
			return pg, fmt.Errorf("read the resident's rides of %s: %w", rr.Month, err)
		}
		older = len(taps) > ridesPageSize
	case !rr.Newer.IsZero():
		// The extra one is the newest, above this page.
		taps = taps[1:]
		newer, older = true, true
	default:
		// With an Older cursor, the ride it names is above this page.
		newer, older = !rr.Older.IsZero(), len(taps) > ridesPageSize
	}
	taps = taps[:min(len(taps), ridesPageSize)]
	for i := range taps {
		pg.Rides = append(pg.Rides, s.rideRow(lang, &taps[i]))
	}
	page := func(dir string, c cstore.TapCursor) string {
		return withQuery(pg.Action, "month", rr.Month, "card", rr.Card, dir, c.String())
	}
	if newer {
		c := cstore.TapCursor{}
		if len(taps) > 0 {
			c = cstore.CursorOf(&taps[0])
		}
		// Without rides on this page (the data changed under the
		// link), the way back is the first page.
		pg.NewerHref = page("newer", c)
	}
	if older && len(taps) > 0 {
		pg.OlderHref = page("older", cstore.CursorOf(&taps[len(taps)-1]))
	}
	return pg, nil
}

// rideRow puts a tap in words for its card holder.
func (s *Server) rideRow(lang string, t *tap.Tap) rideRow {
	row := rideRow{At: formatTime(lang, t.Time, s.loc), ISO: t.Time.UTC().Format(time.RFC3339),
		Card: formatCard(card.Number(t.Card)), Carrier: t.Carrier, Route: t.Route,
		Product: known(lang, "rides.product.", t.Product), Fare: formatUAH(lang, t.FareKop), Charged: formatUAH(lang, t.ChargedKop)}
	switch {
	case t.Result == tap.Accepted && !t.CardCommitted:
		// The card left the reader before it was written: its purse and
		// counters did not move, whatever the decision said.
		row.Result, row.Charged = translate(lang, "rides.result.torn"), formatUAH(lang, 0)
	case t.Result == tap.Accepted:
		row.Result = translate(lang, "rides.result.accepted")
	case t.Result == tap.AlreadyPaid:
		row.Result = translate(lang, "rides.result.already-paid")
	default:
		row.Refused = true
		row.Result = translate(lang, "rides.result.refused", known(lang, "rides.reason.", t.Reason))
	}
	if t.Category != "" {
		row.Category = categoryName(lang, t.Category)
	}
	return row
}

// known translates prefix+code, or shows the code as it is when the
// catalogue does not know it (validators may send codes newer than the
// console), or a dash for none.
func known(lang, prefix, code string) string {
	switch _, ok := messages[lang][prefix+code]; {
	case code == "":
		return "—"
	case ok:
		return translate(lang, prefix+code)
	}
	return code
}

// categoryName names a benefit category as taps carry it, by its code
// in the tariff ("11"), as the entitlement tables do; a code the
// catalogue does not know shows as it is.
func categoryName(lang, code string) string {
	if _, ok := messages[lang]["category."+code]; ok {
		return fmt.Sprintf("%s (%s)", translate(lang, "category."+code), code)
	}
	return code
}

// monthName names a month "YYYY-MM" in lang: "November 2026".
func monthName(lang, month string) string {
	p, err := cstore.ParsePeriod(month)
	if err != nil {
		return month
	}
	return translate(lang, "rides.month."+strconv.Itoa(int(p.Month())), p.Year())
}

// monthChoices are the months the selector offers, newest first (see
// ridesMonthsRecent), and the month shown if it is not among them.
func (s *Server) monthChoices(lang string, cards []registry.Card, shown string) []choice {
	now := s.now().In(s.loc)
	cur := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	first := cur.AddDate(0, -ridesMonthsRecent+1, 0)
	for _, c := range cards {
		if c.Issued.IsZero() {
			continue
		}
		if m := time.Date(c.Issued.Year, c.Issued.Month, 1, 0, 0, 0, 0, time.UTC); m.Before(first) {
			first = m
		}
	}
	if oldest := cur.AddDate(0, -ridesMonthsMax+1, 0); first.Before(oldest) {
		first = oldest
	}
	var out []choice
	listed := false
	for m := cur; !m.Before(first); m = m.AddDate(0, -1, 0) {
		v := m.Format("2006-01")
		listed = listed || v == shown
		out = append(out, choice{Value: v, Text: monthName(lang, v), Selected: v == shown})
	}
	if !listed {
		// A month from a link or typed in: keep it in order.
		at := len(out)
		for i, c := range out {
			if c.Value < shown {
				at = i
				break
			}
		}
		out = slices.Insert(out, at, choice{Value: shown, Text: monthName(lang, shown), Selected: true})
	}
	return out
}
