package console

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/statement"
	cstore "github.com/citycard/transit/clearing/store"
)

// financePage is a period's statements.
type financePage struct {
	Period     string
	Problem    string
	Statements []statementView
	// Closed: the period's own statement is closed.
	Closed bool
	// CanClose: the user may close periods; HasKeys: the console has a
	// signing key to close them with.
	CanClose, HasKeys  bool
	CSVHref, XLSXHref  string
	PDFHref, ReconHref string
	// Chart is compensation per carrier over the year up to Period.
	Chart *chart
}

// statementView is one statement split three ways.
type statementView struct {
	cstore.Statement
	Heading    string
	ClosedLine string
	// Tables split the lines by carrier, by category and by funding
	// source.
	Tables []groupTable
	Total  cstore.Line
	// Verified is set for a closed statement when the console has keys:
	// whether its hash and signature check out; Problems says why not.
	Verified *bool
	Problems string
}

// groupTable is the lines of a statement summed one way.
type groupTable struct {
	ID, Caption, Column string // Caption and Column are catalogue keys
	Groups              []group
}

// group is a sum of lines under one key (a carrier, a category or a
// funding source).
type group struct {
	Key string
	cstore.Line
}

// groupBy sums lines by key, in key order.
func groupBy(lines []cstore.Line, key func(cstore.Line) string) []group {
	idx := map[string]int{}
	var out []group
	for _, l := range lines {
		k := key(l)
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, group{Key: k})
		}
		out[i].Add(l)
	}
	slices.SortFunc(out, func(a, b group) int { return cmp.Compare(a.Key, b.Key) })
	return out
}

// defaultPeriod is the month before the current one in the city: the
// one finance staff close and pay.
func (s *Server) defaultPeriod() string {
	now := s.now().In(s.loc)
	return now.AddDate(0, 0, 1-now.Day()).AddDate(0, -1, 0).Format("2006-01")
}

func (s *Server) finance(w http.ResponseWriter, r *http.Request, rq *request) error {
	period := strings.TrimSpace(r.URL.Query().Get("period"))
	if period == "" {
		period = s.defaultPeriod()
	}
	pg := financePage{Period: period, CanClose: closeStatements(rq.ses.actor.Role), HasKeys: s.stmts != nil}
	if _, err := cstore.ParsePeriod(period); err != nil {
		pg.Problem = translate(rq.lang, "fin.period.hint")
		s.render(w, r, rq, http.StatusBadRequest, "finance", "fin.title", pg, "")
		return nil
	}
	ctx := r.Context()
	sts, err := s.clr.Statements(ctx, period)
	if err != nil {
		return fmt.Errorf("statements of %s: %w", period, err)
	}
	verified := map[string]string{} // adjusts -> problems ("" when fine)
	if len(sts) > 0 && sts[0].Closed && s.stmts != nil {
		vs, err := s.stmts.Verify(ctx, period, false)
		if err != nil {
			return fmt.Errorf("verify statements of %s: %w", period, err)
		}
		for _, v := range vs {
			verified[v.Statement.Adjusts] = strings.Join(v.Problems, "; ")
		}
	}
	for i, st := range sts {
		v := statementView{Statement: st, Total: st.Total(), Tables: []groupTable{
			{fmt.Sprintf("by-carrier-%d", i), "fin.by.carrier", "fin.carrier", groupBy(st.Lines, func(l cstore.Line) string { return l.Carrier })},
			{fmt.Sprintf("by-category-%d", i), "fin.by.category", "fin.category", groupBy(st.Lines, func(l cstore.Line) string { return l.Category })},
			{fmt.Sprintf("by-funding-%d", i), "fin.by.funding", "fin.funding", groupBy(st.Lines, func(l cstore.Line) string { return l.Funding })},
		}}
		v.Heading = translate(rq.lang, "fin.statement", st.Period)
		if st.Adjusts != "" {
			v.Heading = translate(rq.lang, "fin.adjustment", st.Adjusts, st.Period, st.Adjusts)
		}
		if st.Closed {
			v.ClosedLine = translate(rq.lang, "fin.closed", formatTime(rq.lang, st.ClosedAt, s.loc), fmt.Sprintf("%x", st.Hash), st.KeyRef)
			if problems, ok := verified[st.Adjusts]; ok {
				good := problems == ""
				v.Verified, v.Problems = &good, problems
			}
		}
		pg.Statements = append(pg.Statements, v)
	}
	pg.Closed = len(sts) > 0 && sts[0].Closed
	pg.CSVHref = withQuery("/finance/export", "period", period, "format", "csv")
	pg.XLSXHref = withQuery("/finance/export", "period", period, "format", "xlsx")
	pg.PDFHref = withQuery("/finance/export", "period", period, "format", "pdf")
	pg.ReconHref = withQuery("/finance/reconciliation", "period", period)
	cm, err := readCarrierMonths(ctx, s.clr, period)
	if err != nil {
		return fmt.Errorf("chart of the months up to %s: %w", period, err)
	}
	ch := buildChart(rq.lang, cm)
	pg.Chart = &ch
	notice := ""
	if r.URL.Query().Get("done") == "closed" && pg.Closed {
		notice = translate(rq.lang, "done.closed", period)
	}
	s.render(w, r, rq, http.StatusOK, "finance", "fin.title", pg, notice)
	return nil
}

// exportTypes are the downloads and their media types.
var exportTypes = map[string]string{
	"csv":  "text/csv; charset=utf-8",
	"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
	"pdf":  "application/pdf",
}

// financeExport downloads a period's compensation per carrier, category
// and funding source, written by clearing/report exactly as the command
// line writes it (and the API, for CSV and XLSX).
func (s *Server) financeExport(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	period, format := q.Get("period"), q.Get("format")
	if _, err := cstore.ParsePeriod(period); err != nil {
		return &pageError{status: http.StatusBadRequest, key: "fin.period.hint", err: err}
	}
	ctype, ok := exportTypes[format]
	if !ok {
		return &pageError{status: http.StatusBadRequest, key: "fin.format.bad", args: []any{format}, err: fmt.Errorf("export format %q", format)}
	}
	c, err := report.BuildCompensation(r.Context(), s.clr, report.Query{Period: period, Detail: report.Detail{Category: true}, Names: s.names})
	if err != nil {
		return fmt.Errorf("compensation of %s: %w", period, err)
	}
	c.Location, c.Lang, c.Created = s.loc, rq.lang, s.now()
	// Into memory first, so that a failure still gets an error page
	// rather than half a file; a month's lines are a few thousand.
	var buf bytes.Buffer
	if format == "pdf" {
		// The PDF is the document filed, so it carries each
		// statement's seal; the CSV and XLSX are the bare lines.
		var sts []cstore.Statement
		if sts, err = s.clr.Statements(r.Context(), period); err != nil {
			return fmt.Errorf("statements of %s: %w", period, err)
		}
		err = report.WriteCompensationPDF(&buf, c, sts)
	} else {
		err = report.WriteCompensation(&buf, format, c)
	}
	if err != nil {
		return fmt.Errorf("write compensation of %s as %s: %w", period, format, err)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="compensation-%s.%s"`, period, format))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes()) //nolint:errcheck // the client went away
	return nil
}

// financeClose closes and signs a period (supervisors only; the route's
// guard sees to that).
func (s *Server) financeClose(w http.ResponseWriter, r *http.Request, rq *request) error {
	period := strings.TrimSpace(r.PostFormValue("period"))
	if _, err := cstore.ParsePeriod(period); err != nil {
		return &pageError{status: http.StatusBadRequest, key: "fin.period.hint", err: err}
	}
	if s.stmts == nil {
		return &pageError{status: http.StatusServiceUnavailable, key: "fin.close.nokeys"}
	}
	early := r.PostFormValue("early") != ""
	c := statement.Closing{Early: early, Actor: rq.ses.actor.User, Confirmed: r.PostFormValue("confirm") == period,
		Expect: r.PostFormValue("expect")}
	_, err := s.stmts.Close(r.Context(), period, c)
	switch {
	case errors.Is(err, statement.ErrNotConfirmed):
		return &pageError{status: http.StatusBadRequest, key: "close.unconfirmed", err: err}
	case errors.Is(err, statement.ErrChanged):
		return &pageError{status: http.StatusConflict, key: "close.changed", err: err}
	case err != nil:
		return err
	}
	s.log.Info("console closed a period", "period", period, "early", early, "user", rq.ses.actor.User)
	http.Redirect(w, r, withQuery("/finance", "period", period, "done", "closed"), http.StatusSeeOther)
	return nil
}
