package console

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/report"
	cstore "github.com/citycard/transit/clearing/store"
)

// reconPage is a period's reconciliation, as clearing/report builds it
// for the command line and the API, with the anomalies sorted into the
// groups finance staff act on.
type reconPage struct {
	Period  string
	Problem string
	// Rec is nil when the period could not be read (Problem says why).
	Rec            *report.Reconciliation
	FilledGaps     int64
	AnomalyGroups  []anomalyGroup
	FinanceHref    string
	QuarantineKeys []string // reasons, sorted, for the summary
}

// anomalyGroup is the anomalies of one concern: device clocks, hotlisted
// cards, cloned cards.
type anomalyGroup struct {
	ID, Heading string // Heading is a catalogue key
	Anomalies   []recon.Anomaly
}

// anomalyGroupOf says which group a kind of anomaly is shown in.
func anomalyGroupOf(k recon.Kind) string {
	switch k {
	case recon.TimeBackwards, recon.TapAfterSeal, recon.TapLongBeforeSeal, recon.BatchSealedAhead, recon.BeforePreviousRide:
		return "clock"
	case recon.HotlistedCard:
		return "hotlist"
	case recon.ClonedCard:
		return "clone"
	}
	return "other"
}

// groupAnomalies sorts as into the groups, keeping their order; the
// "other" group (kinds this console does not know yet) only when it has
// any.
func groupAnomalies(as []recon.Anomaly) []anomalyGroup {
	groups := []anomalyGroup{
		{ID: "clock", Heading: "recon.group.clock"},
		{ID: "hotlist", Heading: "recon.group.hotlist"},
		{ID: "clone", Heading: "recon.group.clone"},
		{ID: "other", Heading: "recon.group.other"},
	}
	for _, a := range as {
		g := anomalyGroupOf(a.Kind)
		for i := range groups {
			if groups[i].ID == g {
				groups[i].Anomalies = append(groups[i].Anomalies, a)
			}
		}
	}
	if len(groups[3].Anomalies) == 0 {
		groups = groups[:3]
	}
	return groups
}

// financeReconciliation shows what clearing knows of a period beyond the
// money: taps per device, sequence gaps, quarantined batches and
// anomalies.
func (s *Server) financeReconciliation(w http.ResponseWriter, r *http.Request, rq *request) error {
	period := strings.TrimSpace(r.URL.Query().Get("period"))
	if period == "" {
		period = s.defaultPeriod()
	}
	pg := reconPage{Period: period, FinanceHref: withQuery("/finance", "period", period)}
	if _, err := cstore.ParsePeriod(period); err != nil {
		pg.Problem = translate(rq.lang, "fin.period.bad", period)
		pg.FinanceHref = "/finance"
		s.render(w, r, rq, http.StatusBadRequest, "reconciliation", "recon.title", pg, "")
		return nil
	}
	rec, err := report.BuildReconciliation(r.Context(), s.clr, period, s.loc)
	if err != nil {
		return fmt.Errorf("reconciliation of %s: %w", period, err)
	}
	pg.Rec = &rec
	pg.FilledGaps = int64(len(rec.Gaps)) - rec.OpenGaps
	pg.AnomalyGroups = groupAnomalies(rec.Anomalies)
	pg.QuarantineKeys = slices.Sorted(maps.Keys(rec.ByReason))
	s.render(w, r, rq, http.StatusOK, "reconciliation", "recon.title", pg, "")
	return nil
}

// ReconKind names a kind of anomaly, or shows it as it is when the
// catalogue does not know it.
func (p *page) ReconKind(k recon.Kind) string { return p.known("recon.kind."+string(k), string(k)) }

// ReconReason names the reason a batch was quarantined, or shows it as it
// is.
func (p *page) ReconReason(r string) string { return p.known("recon.reason."+r, r) }

// known translates key, or returns raw when the catalogue lacks it.
func (p *page) known(key, raw string) string {
	if _, ok := messages[p.Lang][key]; ok {
		return p.T(key)
	}
	return raw
}
