package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/fleet"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/statement"
	cstore "github.com/citycard/transit/clearing/store"
)

// Check is one item of the month-end checklist: something the clearing
// store knows today that is still open, which finance staff look at
// before they close a month. A check does not stop the close: people
// decide.
type Check struct {
	// Key is the catalogue key of the check's text, given Count.
	Key   string
	Count int64
	// Href is where to look into it ("" for nowhere).
	Href string
}

// OK reports whether nothing is open.
func (c Check) OK() bool { return c.Count == 0 }

// checker computes one check of a period. The checklist is a list of
// them: a store that learns of something else open adds its checker here.
type checker func(ctx context.Context, s *Server, period string, r report.Reconciliation) (Check, error)

// monthEndChecks are the checks of the checklist, in the order shown.
var monthEndChecks = []checker{
	func(_ context.Context, _ *Server, period string, r report.Reconciliation) (Check, error) {
		return Check{Key: "close.check.gaps", Count: r.MissingTaps, Href: withQuery("/finance/reconciliation", "period", period) + "#gaps-h"}, nil
	},
	func(_ context.Context, _ *Server, period string, r report.Reconciliation) (Check, error) {
		return Check{Key: "close.check.quarantine", Count: int64(len(r.Quarantined)), Href: withQuery("/finance/reconciliation", "period", period)}, nil
	},
	func(_ context.Context, _ *Server, period string, r report.Reconciliation) (Check, error) {
		return Check{Key: "close.check.clones", Count: r.PendingCloneChecks}, nil
	},
	func(_ context.Context, _ *Server, period string, r report.Reconciliation) (Check, error) {
		return Check{Key: "close.check.anomalies", Count: int64(len(r.Anomalies)), Href: withQuery("/finance/reconciliation", "period", period)}, nil
	},
	// Rides clearing holds back or waits to prove are not paid by the
	// close; people decide the held ones (transit clearing held).
	func(ctx context.Context, s *Server, period string, _ report.Reconciliation) (Check, error) {
		lines, err := s.clr.Proof(ctx, period)
		if err != nil {
			return Check{}, fmt.Errorf("the proof of %s: %w", period, err)
		}
		var n int64
		for _, l := range lines {
			n += l.Held + l.Waiting
		}
		return Check{Key: "close.check.held", Count: n}, nil
	},
	func(ctx context.Context, s *Server, _ string, _ report.Reconciliation) (Check, error) {
		n, err := s.clr.PendingRerate(ctx)
		if err != nil {
			return Check{}, fmt.Errorf("rides waiting for re-rating: %w", err)
		}
		return Check{Key: "close.check.rerate", Count: n}, nil
	},
	// Validators silent since before the month ended may still hold its
	// rides.
	func(ctx context.Context, s *Server, period string, _ report.Reconciliation) (Check, error) {
		p, err := cstore.ParsePeriod(period)
		if err != nil {
			return Check{}, err
		}
		start := time.Date(p.Year(), p.Month(), 1, 0, 0, 0, 0, s.loc)
		v, err := fleet.Read(ctx, s.clr, s.now(), fleet.Options{})
		if err != nil {
			return Check{}, fmt.Errorf("read the fleet: %w", err)
		}
		return Check{Key: "close.check.silent", Count: int64(len(v.SilentOver(start, start.AddDate(0, 1, 0)))), Href: "/finance/fleet"}, nil
	},
}

// closePage is the month-end checklist and the close dialog.
type closePage struct {
	Period  string
	Problem string
	Checks  []Check
	// Preview is what closing now freezes; PerCarrier its lines per
	// carrier, named.
	Preview    statement.Preview
	PerCarrier []carrierTotal
	Token      string
	Ends       string
	CanClose   bool
	HasKeys    bool
	Closed     bool
}

// carrierTotal is one carrier's part of a close.
type carrierTotal struct {
	ID, Name string
	cstore.Line
}

// financeCloseForm shows the checklist of a period and, to supervisors
// with a signing key, the close with its confirmation.
func (s *Server) financeCloseForm(w http.ResponseWriter, r *http.Request, rq *request) error {
	period := strings.TrimSpace(r.URL.Query().Get("period"))
	if period == "" {
		period = s.defaultPeriod()
	}
	pg := closePage{Period: period, CanClose: closeStatements(rq.ses.actor.Role), HasKeys: s.stmts != nil}
	if _, err := cstore.ParsePeriod(period); err != nil {
		pg.Problem = translate(rq.lang, "fin.period.hint")
		s.render(w, r, rq, http.StatusBadRequest, "close", "close.title", pg, "")
		return nil
	}
	ctx := r.Context()
	rec, err := report.BuildReconciliation(ctx, s.clr, period, s.loc)
	if err != nil {
		return fmt.Errorf("reconciliation of %s: %w", period, err)
	}
	for _, c := range monthEndChecks {
		ch, err := c(ctx, s, period, rec)
		if err != nil {
			return fmt.Errorf("month-end check of %s: %w", period, err)
		}
		pg.Checks = append(pg.Checks, ch)
	}
	svc := s.stmts
	if svc == nil {
		svc = &statement.Service{Store: s.clr, Location: s.loc, Now: s.now}
	}
	pg.Preview, err = svc.Preview(ctx, period)
	if errors.Is(err, cstore.ErrPeriodClosed) {
		pg.Closed = true
		s.render(w, r, rq, http.StatusOK, "close", "close.title", pg, "")
		return nil
	}
	if err != nil {
		return err
	}
	pg.Token = pg.Preview.Token()
	pg.Ends = formatTime(rq.lang, pg.Preview.Ends, s.loc)
	var all []cstore.Line
	for _, st := range pg.Preview.Statements {
		all = append(all, st.Lines...)
	}
	for _, l := range report.PerCarrier(all) {
		pg.PerCarrier = append(pg.PerCarrier, carrierTotal{ID: l.Carrier, Name: s.names.CarrierName(l.Carrier), Line: l})
	}
	s.render(w, r, rq, http.StatusOK, "close", "close.title", pg, "")
	return nil
}
