package api

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/clearing/report/spreadsheet"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/auditchain"
	"github.com/citycard/transit/registry/importcsv"
	"github.com/citycard/transit/registry/store"
)

// pathID reads a positive id from the path.
func pathID(r *http.Request, name string) (int64, error) {
	v := r.PathValue(name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, &registry.FieldError{Field: name, Problem: fmt.Sprintf("%q is not a record id; ids are positive whole numbers", clip(v))}
	}
	return id, nil
}

// pathNumber reads a card number from the path.
func pathNumber(r *http.Request) (card.Number, error) {
	n, err := card.ParseNumber(r.PathValue("number"))
	if err != nil {
		return 0, &registry.FieldError{Field: "number", Problem: err.Error()}
	}
	return n, nil
}

// queryInt reads an optional integer parameter.
func queryInt(r *http.Request, name string, def, lo, hi int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < lo || n > hi {
		return 0, &registry.FieldError{Field: name, Problem: fmt.Sprintf("%q; want a whole number from %d to %d", clip(v), lo, hi)}
	}
	return n, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

type residentRequest struct {
	RegistryNumber string `json:"registry_number"`
	Name           string `json:"name"`
	BirthDate      string `json:"birth_date"`
	Contact        string `json:"contact"`
}

func (s *Server) addResident(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	var req residentRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	birth, err := registry.ParseDateField("birth_date", req.BirthDate)
	if err != nil {
		return err
	}
	res, err := s.st.AddResident(r.Context(), a, registry.Resident{
		RegistryNumber: strings.TrimSpace(req.RegistryNumber), Name: req.Name, BirthDate: birth, Contact: req.Contact})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, res)
	return nil
}

func (s *Server) findResidents(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	limit, err := queryInt(r, "limit", 0, 1, registry.MaxSearchResults)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	found, err := s.st.FindResidents(r.Context(), a, registry.Search{
		RegistryNumber: q.Get("registry_number"), NamePrefix: q.Get("name"), Limit: int(limit)})
	if err != nil {
		return err
	}
	if found == nil {
		found = []registry.Resident{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"residents": found})
	return nil
}

func (s *Server) resident(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	d, err := s.st.Resident(r.Context(), a, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dossier(d))
	return nil
}

// dossier makes empty lists [] rather than null.
func dossier(d registry.Dossier) registry.Dossier {
	if d.Entitlements == nil {
		d.Entitlements = []registry.Entitlement{}
	}
	if d.Cards == nil {
		d.Cards = []registry.Card{}
	}
	return d
}

type entitlementRequest struct {
	Category     uint16 `json:"category"`
	LegalBasis   string `json:"legal_basis"`
	Evidence     string `json:"evidence"`
	ValidFrom    string `json:"valid_from"`
	ValidTo      string `json:"valid_to"`
	Funding      string `json:"funding"`
	MonthlyLimit int    `json:"monthly_limit"`
}

func (s *Server) addEntitlement(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var req entitlementRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	from, err := registry.ParseDateField("valid_from", req.ValidFrom)
	if err != nil {
		return err
	}
	to, err := registry.ParseDateField("valid_to", req.ValidTo)
	if err != nil {
		return err
	}
	e, err := s.st.AddEntitlement(r.Context(), a, registry.Entitlement{
		ResidentID: id, Category: req.Category, LegalBasis: req.LegalBasis, Evidence: req.Evidence,
		ValidFrom: from, ValidTo: to, Funding: registry.Funding(req.Funding), MonthlyLimit: req.MonthlyLimit})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, e)
	return nil
}

func (s *Server) endEntitlement(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	eid, err := pathID(r, "eid")
	if err != nil {
		return err
	}
	var req struct {
		ValidTo string `json:"valid_to"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	to, err := registry.ParseDateField("valid_to", req.ValidTo)
	if err != nil {
		return err
	}
	e, err := s.st.EndEntitlement(r.Context(), a, id, eid, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

func (s *Server) orderCard(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := s.st.OrderCard(r.Context(), a, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	n, err := pathNumber(r)
	if err != nil {
		return err
	}
	var req struct {
		Status registry.Status `json:"status"`
		Note   string          `json:"note"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := registry.CheckPlainChange(req.Status); err != nil {
		return err
	}
	c, err := s.st.Transition(r.Context(), a, n, registry.Change{To: req.Status, Note: req.Note})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) block(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	n, err := pathNumber(r)
	if err != nil {
		return err
	}
	var req struct {
		Reason registry.Reason `json:"reason"`
		Note   string          `json:"note"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c, err := s.st.Transition(r.Context(), a, n, registry.Change{To: req.Reason.Status(), Reason: req.Reason, Note: req.Note})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) replace(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	n, err := pathNumber(r)
	if err != nil {
		return err
	}
	var req struct {
		ClearingKop *int64 `json:"clearing_balance_kop"`
		CardKop     *int64 `json:"card_balance_kop"`
	}
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if req.ClearingKop == nil {
		return &registry.FieldError{Field: "clearing_balance_kop", Problem: "missing; give the last balance clearing knows for this card, in kopiyky (0 if none)"}
	}
	old, repl, err := s.st.Replace(r.Context(), a, n, registry.Balance{ClearingKop: *req.ClearingKop, CardKop: req.CardKop})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]registry.Card{"replaced": old, "replacement": repl})
	return nil
}

// card answers a card's status and validity: nothing that names its
// holder or their benefits (those come with the personalisation, read
// with a purpose).
func (s *Server) card(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	n, err := pathNumber(r)
	if err != nil {
		return err
	}
	st, err := s.st.CardState(r.Context(), n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) personalisation(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	n, err := pathNumber(r)
	if err != nil {
		return err
	}
	p, err := s.st.Personalisation(r.Context(), a, n)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) cardEvents(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	since, err := queryInt(r, "since", 0, 0, 1<<62)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit", 1000, 1, store.MaxEventPage)
	if err != nil {
		return err
	}
	evs, err := s.st.CardEvents(r.Context(), uint64(since), int(limit))
	if err != nil {
		return err
	}
	next := uint64(since)
	if len(evs) > 0 {
		next = evs[len(evs)-1].Seq
	} else {
		evs = []registry.CardEvent{}
	}
	// next is the since of the following call.
	writeJSON(w, http.StatusOK, map[string]any{"events": evs, "next": next})
	return nil
}

func (s *Server) blocked(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	bl, err := s.st.Blocked(r.Context())
	if err != nil {
		return err
	}
	if bl.Cards == nil {
		bl.Cards = []registry.BlockedCard{}
	}
	writeJSON(w, http.StatusOK, bl)
	return nil
}

// MaxExpiringDays bounds the expiring list's window.
const MaxExpiringDays = 366

func (s *Server) expiring(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	days, err := queryInt(r, "days", registry.DefaultExpiringDays, 1, MaxExpiringDays)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "csv" {
		return &registry.FieldError{Field: "format", Problem: fmt.Sprintf("%q; want json or csv", clip(format))}
	}
	from := s.today()
	to := from.AddDays(int(days))
	list, err := s.st.Expiring(r.Context(), a, from, to)
	if err != nil {
		return err
	}
	if format == "csv" {
		return writeExpiringCSV(w, from, to, list)
	}
	if list == nil {
		list = []registry.Expiring{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"from": from, "to": to, "entitlements": list})
	return nil
}

// ExpiringCSVHeader is the header line of the expiring list as CSV.
var ExpiringCSVHeader = []string{"resident_id", "name", "contact", "category", "valid_from", "valid_to",
	"funding", "monthly_limit", "legal_basis", "evidence", "decision_id"}

func writeExpiringCSV(w http.ResponseWriter, from, to registry.Date, list []registry.Expiring) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="expiring-%s-%s.csv"`, from, to))
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.Write(ExpiringCSVHeader) //nolint:errcheck // checked by Flush below
	for _, x := range list {
		e := x.Entitlement
		cw.Write([]string{ //nolint:errcheck // checked by Flush below
			strconv.FormatInt(e.ResidentID, 10), cell(x.Name), cell(x.Contact), strconv.Itoa(int(e.Category)),
			e.ValidFrom.String(), e.ValidTo.String(), string(e.Funding), strconv.Itoa(e.MonthlyLimit),
			cell(e.LegalBasis), cell(e.Evidence), cell(e.SourceRef),
		})
	}
	cw.Flush()
	return nil // the status is sent; a write error means the client left
}

// cell defuses text that a spreadsheet would run as a formula (CSV
// injection) with the rule every export shares (OWASP's).
func cell(s string) string { return spreadsheet.Defuse(s) }

func (s *Server) importCSV(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	var dry bool
	switch v := r.URL.Query().Get("dry_run"); v {
	case "", "0", "false":
	case "1", "true":
		dry = true
	default:
		return &registry.FieldError{Field: "dry_run", Problem: fmt.Sprintf("%q; want 1 (report only) or 0", clip(v))}
	}
	// Refuse before reading the file when the caller may not import or
	// stated no purpose.
	if err := a.PermitRead(registry.ActImport, 0); err != nil {
		return err
	}
	rows, err := importcsv.Parse(http.MaxBytesReader(w, r.Body, MaxImportBody), s.today())
	if err != nil {
		return err
	}
	rep, err := s.st.Import(r.Context(), a, rows, dry)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) audit(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	q, err := auditQuery(r)
	if err != nil {
		return err
	}
	if q.Resident, err = queryInt(r, "resident", 0, 0, 1<<62); err != nil {
		return err
	}
	return s.writeAudit(w, r, a, q)
}

func auditQuery(r *http.Request) (registry.AuditQuery, error) {
	after, err := queryInt(r, "after", 0, 0, 1<<62)
	if err != nil {
		return registry.AuditQuery{}, err
	}
	limit, err := queryInt(r, "limit", registry.MaxAuditPage, 1, registry.MaxAuditPage)
	if err != nil {
		return registry.AuditQuery{}, err
	}
	return registry.AuditQuery{After: after, Limit: int(limit)}, nil
}

// auditEntry is an entry as the API shows it, with whether the last
// verification of the chain covered it.
type auditEntry struct {
	registry.AuditEntry
	Verified bool `json:"verified"`
}

func (s *Server) writeAudit(w http.ResponseWriter, r *http.Request, a registry.Access, q registry.AuditQuery) error {
	es, err := s.st.Audit(r.Context(), a, q)
	if err != nil {
		return err
	}
	v := s.verificationDoc()
	out := make([]auditEntry, len(es))
	for i, e := range es {
		out[i] = auditEntry{AuditEntry: e, Verified: v.report != nil && v.report.Covers(e.Seq)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": out, "verification": v})
	return nil
}

// verification is what the API says about the last check of the audit
// chain.
type verification struct {
	// Checked is false when this registry has not verified the chain.
	Checked bool       `json:"checked"`
	OK      bool       `json:"ok"`
	At      *time.Time `json:"at,omitempty"`
	// Head is the newest entry the check covered: entries after it are
	// checked next time.
	Head        int64  `json:"head,omitempty"`
	Checkpoints int    `json:"checkpoints,omitempty"`
	Signed      bool   `json:"signed,omitempty"`
	Problem     string `json:"problem,omitempty"`

	report *auditchain.Report
}

func (s *Server) verificationDoc() verification {
	if s.monitor == nil {
		return verification{}
	}
	rep, ok := s.monitor.Last()
	if !ok {
		return verification{}
	}
	v := verification{Checked: true, OK: rep.OK(), At: &rep.At, Head: rep.Head, Checkpoints: rep.Checkpoints, Signed: rep.Signed, report: &rep}
	if !rep.OK() {
		v.Problem = rep.Err().Error()
	}
	return v
}

func (s *Server) verification(w http.ResponseWriter, r *http.Request, _ registry.Access) error {
	if s.monitor == nil {
		return fmt.Errorf("%w: this registry does not verify its audit log; run transit registry audit verify", registry.ErrNotFound)
	}
	rep, ok := s.monitor.Last()
	if !ok {
		return fmt.Errorf("%w: the audit log has not been verified yet; try again in a minute", registry.ErrNotFound)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	if a.Purpose == "" {
		a.Purpose = registry.PurposeOwnView
	}
	d, err := s.st.Resident(r.Context(), a, a.Actor.Resident)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, dossier(d))
	return nil
}

func (s *Server) myAudit(w http.ResponseWriter, r *http.Request, a registry.Access) error {
	q, err := auditQuery(r)
	if err != nil {
		return err
	}
	q.Resident = a.Actor.Resident
	return s.writeAudit(w, r, a, q)
}
