package console

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/citycard/transit/registry"
)

// auditPageSize is how many audit entries a page shows.
const auditPageSize = 100

// auditPage is a page of the audit log.
type auditPage struct {
	Resident int64
	Entries  []registry.AuditEntry
	// MoreHref is the next page, when this one is full.
	MoreHref string
}

// mePage is a resident's own view.
type mePage struct {
	Dossier registry.Dossier
	Audit   auditPage
}

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
	pg := auditPage{Resident: q.Resident, Entries: es}
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
func (s *Server) me(w http.ResponseWriter, r *http.Request, rq *request) error {
	after, err := queryID(r, "after")
	if err != nil {
		return err
	}
	a := access(rq, registry.PurposeOwnView)
	d, err := s.reg.Resident(r.Context(), a, rq.ses.actor.Resident)
	if err != nil {
		return err
	}
	log, err := s.readAudit(r, a, registry.AuditQuery{Resident: rq.ses.actor.Resident, After: after}, "/me")
	if err != nil {
		return err
	}
	s.render(w, r, rq, http.StatusOK, "me", "me.title", mePage{Dossier: d, Audit: log}, "")
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
