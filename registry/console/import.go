package console

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/importcsv"
)

// The import page takes the national benefit register's CSV export
// (registry/IMPORT.md) in three steps: the upload, whose dry run shows
// what would change and which rows are refused; a confirmation that says
// what the import will do; and the import. The file is not sent twice:
// the upload's parsed rows wait in the server's memory, bound to the
// session that sent them, for ImportPreviewLifetime, and the confirming
// form names them by a random id. Before it writes, the import runs the
// dry run again; when the registry changed meanwhile (a desk edited one
// of the people), it shows the new preview to confirm instead. The
// import and its dry runs are audited by the store, per resident, with
// the supervisor and the purpose given; the console's log has a line per
// import with the file's SHA-256.

// Limits of the import page.
const (
	// MaxImportUpload bounds an uploaded file: the API's limit, which a
	// mid-size city's 180,000 recipients (about 40 MiB) fit.
	MaxImportUpload = api.MaxImportBody
	// ImportPreviewLifetime is how long an upload waits for its
	// confirmation.
	ImportPreviewLifetime = 15 * time.Minute
	// MaxPendingImports bounds the uploads waiting at once, across
	// sessions: each holds its parsed rows in memory (a large city's
	// file takes a few hundred MB). A session has at most one; a new
	// upload replaces it.
	MaxPendingImports = 3
	// maxShownChanges bounds the preview's table; the counts cover all.
	maxShownChanges = 1000
)

// pendingImport is an upload that waits for its confirmation.
type pendingImport struct {
	id      string // the confirming form's; new for every preview
	user    string
	purpose string
	file    string // as the browser named it
	size    int64
	sum     string // SHA-256 of the file, hex, for the log
	rows    []registry.ImportRow
	report  registry.ImportReport // the dry run's
	expires time.Time
}

// pendingImports holds the waiting uploads by session id.
type pendingImports struct {
	mu        sync.Mutex
	bySession map[string]*pendingImport
}

// errImportsBusy: MaxPendingImports uploads wait already.
var errImportsBusy = errors.New("too many imports wait for their confirmation")

// put keeps p for the session sid, replacing its previous one, with a
// new id.
func (pi *pendingImports) put(sid string, p *pendingImport, now time.Time) error {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	if pi.bySession == nil {
		pi.bySession = map[string]*pendingImport{}
	}
	for k, v := range pi.bySession {
		if !now.Before(v.expires) {
			delete(pi.bySession, k)
		}
	}
	if _, has := pi.bySession[sid]; !has && len(pi.bySession) >= MaxPendingImports {
		return errImportsBusy
	}
	p.id, p.expires = randomToken(), now.Add(ImportPreviewLifetime)
	pi.bySession[sid] = p
	return nil
}

// take removes and returns the session's upload named id, or nil when it
// has none by that id (imported, expired or replaced).
func (pi *pendingImports) take(sid, id string, now time.Time) *pendingImport {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	p := pi.bySession[sid]
	if p == nil || !sameSecret(p.id, id) {
		return nil
	}
	delete(pi.bySession, sid)
	if !now.Before(p.expires) {
		return nil
	}
	return p
}

// drop forgets the session's upload, at sign-out.
func (pi *pendingImports) drop(sid string) {
	pi.mu.Lock()
	defer pi.mu.Unlock()
	delete(pi.bySession, sid)
}

// importPage is the import page in each of its steps.
type importPage struct {
	Purpose string
	// Problem, translated, is why the upload was refused; the form
	// shows it in place.
	Problem string
	MaxMiB  int

	// The uploaded file.
	File string
	Size string
	// Rejected are the rows the file or the registry refuses; Conflict
	// says the registry refused them (they contradict its records).
	Rejected []importProblem
	Conflict bool

	// Report is the dry run's, or the import's when Done.
	Report *registry.ImportReport
	// Changes are the report's first changes; Hidden how many more.
	Changes []registry.ImportChange
	Hidden  int
	// Residents is how many people the import changes.
	Residents int
	// Confirm is the confirming form: Upload names the waiting rows,
	// Value confirms them; Expires is when they are dropped.
	Upload, Value string
	Expires       time.Time
	// Changed says the registry changed since the last preview.
	Changed bool

	Done bool
	By   string
	At   time.Time
}

// importProblem is a refused row.
type importProblem struct {
	Line           int
	Field, Problem string
}

func (s *Server) newImportPage() importPage {
	return importPage{MaxMiB: int(s.maxUpload >> 20)}
}

func (s *Server) importForm(w http.ResponseWriter, r *http.Request, rq *request) error {
	s.render(w, r, rq, http.StatusOK, "import", "import.title", s.newImportPage(), "")
	return nil
}

// importRefuse shows the form again with a problem in place.
func (s *Server) importRefuse(w http.ResponseWriter, r *http.Request, rq *request, pg importPage, status int, key string, args ...any) error {
	pg.Problem = translate(rq.lang, key, args...)
	s.render(w, r, rq, status, "import", "import.title", pg, "")
	return nil
}

// importUpload reads an upload (its CSRF secret was checked first, by
// checkUpload), parses it, runs the dry run and shows the preview.
func (s *Server) importUpload(w http.ResponseWriter, r *http.Request, rq *request) error {
	pg := s.newImportPage()
	if r.ContentLength > s.maxUpload+MaxFormBody {
		// Refused before the file is read; a body without a length is
		// counted as it streams in (countingReader).
		return s.importRefuse(w, r, rq, pg, http.StatusRequestEntityTooLarge, "import.err.big", pg.MaxMiB)
	}
	var (
		rows    []registry.ImportRow
		parsed  bool
		perr    error
		refusal string // a message key: the file is refused whole
		counter *countingReader
	)
	for {
		part, err := rq.upload.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return s.importRefuse(w, r, rq, pg, http.StatusRequestEntityTooLarge, "import.err.big", pg.MaxMiB)
		}
		if err != nil {
			return &pageError{status: http.StatusBadRequest, key: "err.400", err: fmt.Errorf("read the upload: %w", err)}
		}
		switch part.FormName() {
		case "purpose":
			b, err := io.ReadAll(io.LimitReader(part, 4<<10))
			if err != nil {
				return &pageError{status: http.StatusBadRequest, key: "err.400", err: err}
			}
			pg.Purpose = strings.TrimSpace(string(b))
		case "file":
			if parsed {
				return &pageError{status: http.StatusBadRequest, key: "import.err.two"}
			}
			parsed = true
			pg.File = part.FileName()
			counter = &countingReader{r: part, limit: s.maxUpload, sum: sha256.New()}
			rows, refusal, perr = parseUpload(counter, part.Header.Get("Content-Type"), registry.Today(s.now(), s.loc))
		}
		part.Close()
	}
	switch {
	case counter != nil && counter.over:
		return s.importRefuse(w, r, rq, pg, http.StatusRequestEntityTooLarge, "import.err.big", pg.MaxMiB)
	case !parsed:
		return s.importRefuse(w, r, rq, pg, http.StatusBadRequest, "import.err.nofile")
	case refusal == "import.err.nofile":
		return s.importRefuse(w, r, rq, pg, http.StatusBadRequest, refusal)
	case refusal != "":
		return s.importRefuse(w, r, rq, pg, http.StatusUnsupportedMediaType, refusal)
	}
	pg.Size = formatSize(rq.lang, counter.n)
	purpose, err := registry.CleanPurpose(pg.Purpose)
	if err != nil || purpose == "" {
		return s.importRefuse(w, r, rq, pg, http.StatusBadRequest, "purpose.needed")
	}
	if perr != nil {
		return s.importRejected(w, r, rq, pg, perr)
	}
	if len(rows) == 0 {
		return s.importRefuse(w, r, rq, pg, http.StatusBadRequest, "import.err.norows")
	}
	rep, err := s.reg.Import(r.Context(), access(rq, purpose), rows, true)
	if err != nil {
		return s.importRejected(w, r, rq, pg, err)
	}
	p := &pendingImport{user: rq.ses.actor.User, purpose: purpose, file: pg.File, size: counter.n,
		sum: hex.EncodeToString(counter.sum.Sum(nil)), rows: rows, report: rep}
	return s.importPreview(w, r, rq, pg, p, http.StatusOK)
}

// importPreview keeps p for the session and shows its dry run with the
// confirming form; nothing to change shows the dry run only.
func (s *Server) importPreview(w http.ResponseWriter, r *http.Request, rq *request, pg importPage, p *pendingImport, status int) error {
	pg.File, pg.Size, pg.Purpose = p.file, formatSize(rq.lang, p.size), p.purpose
	pg.setReport(&p.report)
	if pg.Residents > 0 || changeCount(&p.report) > 0 {
		if err := s.imports.put(rq.sid, p, s.now()); err != nil {
			return s.importRefuse(w, r, rq, pg, http.StatusServiceUnavailable, "import.err.busy", int(ImportPreviewLifetime.Minutes()))
		}
		pg.Upload, pg.Value, pg.Expires = p.id, "import "+p.id, p.expires
	}
	s.render(w, r, rq, status, "import", "import.title", pg, "")
	return nil
}

// importRejected shows the rows the file or the registry refuses; any
// other error is the error page's.
func (s *Server) importRejected(w http.ResponseWriter, r *http.Request, rq *request, pg importPage, err error) error {
	var problems registry.ImportErrors
	if !errors.As(err, &problems) {
		return err
	}
	for _, p := range problems {
		pg.Rejected = append(pg.Rejected, importProblem{Line: p.Line, Field: p.Field, Problem: p.Problem()})
	}
	status := http.StatusBadRequest
	if errors.Is(err, registry.ErrConflict) {
		pg.Conflict, status = true, http.StatusConflict
	}
	s.render(w, r, rq, status, "import", "import.title", pg, "")
	return nil
}

// importApply imports the session's waiting upload that the form
// confirms. The dry run runs again first: if the registry changed since
// the preview, the new preview is shown to confirm instead.
func (s *Server) importApply(w http.ResponseWriter, r *http.Request, rq *request) error {
	pg := s.newImportPage()
	id := r.PostFormValue("upload")
	p := s.imports.take(rq.sid, id, s.now())
	if p == nil {
		return s.importRefuse(w, r, rq, pg, http.StatusConflict, "import.err.gone", int(ImportPreviewLifetime.Minutes()))
	}
	a := access(rq, p.purpose)
	if !isConfirmed(r, "import "+id) {
		return s.importPreview(w, r, rq, pg, p, http.StatusBadRequest)
	}
	again, err := s.reg.Import(r.Context(), a, p.rows, true)
	if err != nil {
		return s.importRejected(w, r, rq, pg, err)
	}
	if !sameReport(p.report, again) {
		p.report = again
		pg.Changed = true
		return s.importPreview(w, r, rq, pg, p, http.StatusConflict)
	}
	rep, err := s.reg.Import(r.Context(), a, p.rows, false)
	if err != nil {
		return s.importRejected(w, r, rq, pg, err)
	}
	s.log.Info("benefit register imported", "user", rq.ses.actor.User, "file", p.file, "sha256", p.sum, "rows", rep.Rows,
		"new_residents", rep.NewResidents, "new_entitlements", rep.NewEntitlements, "changed_entitlements", rep.ChangedEntitlements,
		"ended_entitlements", rep.EndedEntitlements, "addr", clientAddr(r))
	pg.File, pg.Size, pg.Purpose = p.file, formatSize(rq.lang, p.size), p.purpose
	pg.setReport(&rep)
	pg.Done, pg.By, pg.At = true, rq.ses.actor.User, s.now()
	s.render(w, r, rq, http.StatusOK, "import", "import.title", pg, translate(rq.lang, "import.done"))
	return nil
}

// setReport shows rep's counts and its first changes.
func (pg *importPage) setReport(rep *registry.ImportReport) {
	pg.Report = rep
	pg.Changes = rep.Changes
	if len(pg.Changes) > maxShownChanges {
		pg.Changes, pg.Hidden = pg.Changes[:maxShownChanges], len(rep.Changes)-maxShownChanges
	}
	people := map[int64]bool{}
	for _, c := range rep.Changes {
		if c.Resident != 0 {
			people[c.Resident] = true
		}
	}
	pg.Residents = len(people)
	if rep.DryRun {
		pg.Residents += rep.NewResidents // not yet numbered
	}
}

func changeCount(rep *registry.ImportReport) int {
	return rep.NewResidents + rep.NewEntitlements + rep.ChangedEntitlements + rep.EndedEntitlements
}

// sameReport reports whether two dry runs of the same rows found the
// same changes.
func sameReport(a, b registry.ImportReport) bool {
	a.DryRun, b.DryRun = false, false
	return reflect.DeepEqual(a, b)
}

// parseUpload parses an uploaded file. refusal is a message key when the
// file is not a CSV text at all (a workbook, a PDF, another encoding);
// err holds the rows' problems.
func parseUpload(r io.Reader, declared string, today registry.Date) (rows []registry.ImportRow, refusal string, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(512)
	if refusal = sniff(head, declared); refusal != "" {
		return nil, refusal, nil
	}
	rows, err = importcsv.Parse(br, today)
	return rows, "", err
}

// sniff refuses what is no CSV text, by its first bytes and the type the
// browser declared, with the message that says how to save a CSV.
func sniff(head []byte, declared string) string {
	mt, _, _ := mime.ParseMediaType(declared)
	switch {
	case len(head) == 0:
		return "import.err.nofile"
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("\xD0\xCF\x11\xE0")):
		return "import.err.workbook"
	case bytes.HasPrefix(head, []byte("\xFF\xFE")), bytes.HasPrefix(head, []byte("\xFE\xFF")):
		return "import.err.encoding"
	case bytes.IndexByte(head, 0) >= 0, !strings.HasPrefix(http.DetectContentType(head), "text/"),
		strings.HasPrefix(mt, "image/"), strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"),
		mt == "application/pdf", mt == "application/zip":
		return "import.err.type"
	}
	if len(head) == 512 {
		// The peek may end inside a character.
		for i := 1; i < utf8.UTFMax && !utf8.Valid(head); i++ {
			head = head[:len(head)-1]
		}
	}
	if !utf8.Valid(head) {
		return "import.err.encoding"
	}
	return ""
}

// countingReader counts and hashes what is read, and fails past limit.
type countingReader struct {
	r     io.Reader
	n     int64
	limit int64
	over  bool
	sum   hash.Hash
}

var errUploadTooBig = errors.New("the upload is over the limit")

func (c *countingReader) Read(p []byte) (int, error) {
	if c.over {
		return 0, errUploadTooBig
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.sum.Write(p[:n]) //nolint:errcheck // a hash never fails
	if c.n > c.limit {
		c.over = true
		return n, errUploadTooBig
	}
	return n, err
}

// formatSize shows a file's size in KiB or MiB, as lang writes numbers.
func formatSize(lang string, n int64) string {
	var s string
	switch {
	case n < 1<<20:
		s = translate(lang, "import.kib", fmt.Sprintf("%.1f", float64(n)/(1<<10)))
	default:
		s = translate(lang, "import.mib", fmt.Sprintf("%.1f", float64(n)/(1<<20)))
	}
	if lang == "uk" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// checkUpload opens a multipart upload (bounded) and checks its CSRF
// secret, which the form sends as its first field, before anything else
// of it is read.
func (s *Server) checkUpload(w http.ResponseWriter, r *http.Request, secret string) (*multipart.Reader, error) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, &pageError{status: http.StatusUnsupportedMediaType, key: "import.err.form", err: fmt.Errorf("content type %q", r.Header.Get("Content-Type"))}
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.maxUpload+MaxFormBody)
	mr := multipart.NewReader(r.Body, params["boundary"])
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "csrf" {
		return nil, &pageError{status: http.StatusForbidden, key: "err.csrf", err: err}
	}
	b, err := io.ReadAll(io.LimitReader(part, 256))
	if err != nil || !sameSecret(secret, string(b)) {
		return nil, &pageError{status: http.StatusForbidden, key: "err.csrf", err: err}
	}
	return mr, nil
}

// ImportField names a field an import changes, in the page's language.
func (p *page) ImportField(name string) string {
	if key, ok := importFieldKeys[name]; ok {
		return p.T(key)
	}
	return name
}

var importFieldKeys = map[string]string{"category": "ent.category", "legal_basis": "ent.basis", "evidence": "import.evidence",
	"valid_from": "ent.from", "valid_to": "ent.to", "funding": "ent.funding", "monthly_limit": "ent.limit"}

// ResidentHref opens an existing resident's record at the desk with the
// import's purpose.
func (p *page) ResidentHref(id int64, purpose string) string { return residentHref(id, purpose) }
