package console

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/fleet"
)

// maxFleetRows bounds the devices one page lists; the CLI
// (transit report fleet) lists any number.
const maxFleetRows = 2000

// fleetPage is the fleet as clearing sees it: the summary always, and the
// devices with a problem (or all, with ?all=1).
type fleetPage struct {
	View    fleet.View
	All     bool
	Devices []fleet.Device
	Hidden  int // devices beyond maxFleetRows
}

// fleetView answers which validators went silent and which run an old
// hotlist or tariff, from what ingest keeps per device. It reads clearing
// only (device ids, times, versions): no personal data.
func (s *Server) fleetView(w http.ResponseWriter, r *http.Request, rq *request) error {
	all := r.URL.Query().Get("all") == "1"
	v, err := fleet.Read(r.Context(), s.clr, s.now(), fleet.Options{})
	if err != nil {
		return fmt.Errorf("read the fleet: %w", err)
	}
	pg := fleetPage{View: v, All: all, Devices: v.Devices}
	if !all {
		pg.Devices = v.Problems()
	}
	if len(pg.Devices) > maxFleetRows {
		pg.Hidden = len(pg.Devices) - maxFleetRows
		pg.Devices = pg.Devices[:maxFleetRows]
	}
	s.render(w, r, rq, http.StatusOK, "fleet", "fleet.title", pg, "")
	return nil
}

// When shows an instant in the city's time zone the way the page's
// language writes dates (DD.MM.YYYY in Ukrainian); "—" for none.
func (p *page) When(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	if p.Lang == "uk" {
		return t.In(p.loc).Format("02.01.2006 15:04")
	}
	return t.In(p.loc).Format("2006-01-02 15:04")
}

// Silence says how long a device has been silent, in words of the page's
// language.
func (p *page) Silence(d fleet.Device) string {
	if d.HeardAt.IsZero() {
		return p.T("fleet.never")
	}
	s := d.Silent
	switch {
	case s < time.Minute:
		return p.T("fleet.ago.s", int(s.Seconds()))
	case s < time.Hour:
		return p.T("fleet.ago.m", int(s.Minutes()))
	case s < 48*time.Hour:
		return p.T("fleet.ago.h", int(s.Hours()), int(s.Minutes())%60)
	}
	return p.T("fleet.ago.d", int(s.Hours())/24, int(s.Hours())%24)
}

// ClockOffset shows a device's estimated clock offset in seconds, with
// the page language's decimal separator.
func (p *page) ClockOffset(d fleet.Device) string {
	if d.LastBatch.IsZero() {
		return "—"
	}
	s := fmt.Sprintf("%+.1f", d.ClockOffset.Seconds())
	if p.Lang == "uk" {
		s = strings.Replace(s, ".", ",", 1)
	}
	return p.T("fleet.seconds", s)
}

// FleetProblems names a device's problems in the page's language.
func (p *page) FleetProblems(d fleet.Device) string {
	var out []string
	if d.Offline {
		out = append(out, p.T("fleet.problem.offline"))
	}
	if d.OldHotlist {
		out = append(out, p.T("fleet.problem.hotlist"))
	}
	if d.OldTariff {
		out = append(out, p.T("fleet.problem.tariff"))
	}
	if d.ClockSkewed {
		out = append(out, p.T("fleet.problem.clock"))
	}
	return strings.Join(out, "; ")
}

// Hours shows a threshold in hours.
func (p *page) Hours(d time.Duration) string {
	return p.T("fleet.hours", strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", d.Hours()), "0"), ".0"))
}
