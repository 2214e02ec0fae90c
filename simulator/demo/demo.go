// Package demo is the guided tour of `transit demo`: a small city
// (simulator/city) on embedded defaults, with no server and no cgo. It
// issues virtual cards as a desk would, rides a day on real validators,
// uploads sealed batches over an in-process bus to clearing on the
// embedded SQLite store, blocks a card with a signed hotlist and shows its
// next tap refused, closes the month with a signed statement, and checks
// that the statement equals what the simulator knows the city owes.
package demo

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/clearing/bus/inproc"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/simulator/city"
	"github.com/citycard/transit/validator/hotlist"
)

// defaultTariff holds the demo city's tariff directory, the same as the
// sample in testdata/tariff (a test keeps them equal).
//
//go:embed tariff
var defaultTariff embed.FS

// DefaultTariff returns the demo city's tariff directory.
func DefaultTariff() fs.FS {
	sub, err := fs.Sub(defaultTariff, "tariff")
	if err != nil {
		panic(err) // "tariff" is a valid path: fs.Sub cannot fail
	}
	return sub
}

// Options shape a tour.
type Options struct {
	// Dir holds the keystores, journals, hotlists and clearing database.
	Dir string
	// Out receives the narration; nil discards it.
	Out io.Writer
	// Progress, when set, is told how far the long steps are (for a
	// progress bar); Clear is called before each line of narration.
	Progress func(step string, done, total int)
	Clear    func()
	// Tariff is the tariff directory; nil means DefaultTariff().
	Tariff fs.FS
	// Day is the simulated service day (its date in Location is used).
	Day time.Time
	// Location is the city's time zone (default UTC).
	Location *time.Location
	// Cards is how many cardholders the city has (default 2,000), and
	// Validators about how many validators (default 20).
	Cards, Validators int
	// Seed makes the city and its day repeatable.
	Seed uint64
}

// Result is what the tour found.
type Result struct {
	// Period is the month closed; Statement its own closed, signed
	// statement.
	Period    string
	Statement store.Statement
	// Carriers are the city's carriers; Lines the statement's lines.
	Carriers []string
	Lines    []store.Line
	// Taps counts every journalled tap. Rides and ExpectedKop are the
	// compensable rides and the compensation the simulator knows are
	// owed; the statement equals them.
	Taps        int64
	Rides       int64
	ExpectedKop int64
	Stored      ingest.Totals
	// Blocked is the card blocked on the tour and Refused its next tap.
	Blocked uint64
	Refused city.Presentation
}

// tourConfig returns the tour's city: the embedded mid-size city scaled to
// cards cardholders and about validators validators, riding day.
func tourConfig(day time.Time, cards, validators int, seed uint64) city.Config {
	cfg := city.DefaultConfig()
	full := cfg.FullSize()
	cfg.Start, cfg.Days, cfg.Seed = day.Format(time.DateOnly), 1, seed
	cfg.Scale = float64(cards) / float64(full.Cardholders)
	cfg.FleetScale = float64(validators) / float64(full.Validators)
	// One day shows a few of each fault; the tour blocks its own card and
	// runs no validator offline (it would only drain at the end).
	cfg.Riding.LostPerDay = 0
	cfg.Faults = city.Faults{TornShare: 0.01, PowerCutShare: 0.05, LostAckShare: 0.02, Replays: 1,
		Forged: city.Forged{BadMAC: 1}, ClockDrift: city.Drift{Share: 0.05, MaxSeconds: 300}}
	return cfg
}

// Run runs the tour.
func Run(ctx context.Context, o Options) (Result, error) {
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	say := func(format string, args ...any) {
		if o.Clear != nil {
			o.Clear()
		}
		fmt.Fprintf(out, format, args...)
	}
	if o.Cards <= 0 {
		o.Cards = 2000
	}
	if o.Validators <= 0 {
		o.Validators = 20
	}
	loc := o.Location
	if loc == nil {
		loc = time.UTC
	}
	if o.Tariff == nil {
		o.Tariff = DefaultTariff()
	}
	day := o.Day.In(loc)
	cfg := tourConfig(day, o.Cards, o.Validators, o.Seed)
	cfg.TimeZone = loc.String()
	var res Result
	size := cfg.Size()
	var owners []string
	for _, c := range cfg.Carriers {
		owners = append(owners, fmt.Sprintf("%s (%s)", c.ID, c.Ownership))
		res.Carriers = append(res.Carriers, c.ID)
	}
	say("1. The city: %s, scaled to %d cardholders (%d with benefits) and %d validators on %d vehicles of %s.\n",
		cfg.Name, size.Cardholders, size.Benefits, size.Validators, size.Vehicles, strings.Join(owners, ", "))

	st, err := sqlite.Open(ctx, filepath.Join(o.Dir, "clearing.db"), store.Options{Location: loc})
	if err != nil {
		return res, err
	}
	defer st.Close()
	bs := inproc.New(4)
	prod := bs.Producer()
	defer prod.Close()
	cons, err := bs.Consumer("clearing")
	if err != nil {
		return res, err
	}
	defer cons.Close()
	sim, err := city.New(ctx, cfg, city.Options{Dir: o.Dir, Tariff: o.Tariff, Fidelity: city.Full,
		Store: st, Producer: prod, Consumer: cons, Progress: o.Progress, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		return res, err
	}
	defer sim.Close()
	say("2. Keys: a software keystore holds the card masters of every role, the signing keys and the batch master;\n" +
		"   each validator got a keystore of its own with only its role's card master, its batch key and the verify keys.\n")
	cards := sim.Cards()
	byProfile := map[string]int{}
	var profiles []string
	for _, c := range cards {
		if byProfile[c.Profile] == 0 {
			profiles = append(profiles, c.Profile)
		}
		byProfile[c.Profile]++
	}
	var counts []string
	for _, p := range profiles {
		counts = append(counts, fmt.Sprintf("%d %s", byProfile[p], p))
	}
	say("3. Issued %d virtual cards as a desk does (personalised with diversified keys, benefits written on them): %s.\n",
		len(cards), strings.Join(counts, ", "))

	dr, err := sim.RideDay(ctx)
	if err != nil {
		return res, err
	}
	say("4. Rode %s on the validators: %s (%d accepted, %d already paid at the same door, %d denied);\n"+
		"   %s torn away mid-tap and tapped again; %s mid-tap (the validator rebooted and settled the tap as not\n"+
		"   committed); %s topped up at top-up points.\n",
		dr.Date.Format("Monday 2 January 2006"), plural(dr.Taps, "tap", "taps"), dr.Accepted, dr.AlreadyPaid, dr.Denied,
		plural(dr.Torn, "card", "cards"), plural(dr.PowerCuts, "power cut", "power cuts"), plural(dr.TopUps, "purse", "purses"))
	er, err := sim.EndDay(ctx)
	if err != nil {
		return res, err
	}
	t := sim.Totals()
	say("5. Validators uploaded %s, sending again any whose acknowledgement was lost; %s and %s arrived too.\n"+
		"   Clearing stored %s exactly once, ignored %s and quarantined %s.\n",
		plural(er.Batches, "sealed batch", "sealed batches"), plural(er.Forged, "forged batch", "forged batches"),
		plural(er.Replayed, "replayed batch", "replayed batches"), plural(t.Added, "tap", "taps"),
		plural(t.Duplicates, "repeat", "repeats"), plural(t.Quarantined, "batch", "batches"))

	// Block a benefit card that rode, and show its next tap refused.
	var lost city.CardInfo
	for _, c := range cards {
		if c.Category != 0 && c.Full {
			lost = c
			break
		}
	}
	if lost.Number == 0 {
		lost = cards[0]
	}
	version, applied, err := sim.Block(ctx, lost.Number, hotlist.ReasonLost)
	if err != nil {
		return res, err
	}
	vals := sim.Validators()
	next := day.AddDate(0, 0, 1)
	at := time.Date(next.Year(), next.Month(), next.Day(), 7, 42, 0, 0, loc)
	p, err := sim.Present(ctx, lost.Number, vals[0].ID, at)
	if err != nil {
		return res, err
	}
	res.Blocked, res.Refused = lost.Number, p
	say("6. Card %s (%s) reported lost: hotlist version %d, signed with the sign-hotlist key, applied on %d validators.\n"+
		"   Its next tap, at %s on route %s of %s, %s: %s (%s).\n",
		card.Number(lost.Number), lost.Profile, version, applied, p.Device, p.Route, p.Carrier, at.Format("2 Jan 15:04"),
		p.Tap.Result, p.Tap.Reason)
	if _, _, err := sim.Flush(ctx); err != nil {
		return res, err
	}

	res.Period = day.Format("2006-01")
	_, end, err := store.Bounds(res.Period, loc)
	if err != nil {
		return res, err
	}
	sts, err := sim.ClosePeriod(ctx, res.Period)
	if err != nil {
		return res, err
	}
	how := "after it ended"
	if at.Before(end) {
		how = "early, for the tour (later rides of it would go to an adjustment statement)"
	}
	if len(sts) == 0 {
		return res, errors.New("closing the period returned no statement")
	}
	res.Statement = sts[0]
	res.Lines = sts[0].Lines
	say("7. Closed %s %s: statement hashed (%x...) and signed with %s.\n", res.Period, how, res.Statement.Hash[:8], res.Statement.KeyRef)

	cmp, err := sim.Compare(ctx)
	if err != nil {
		return res, err
	}
	if !cmp.OK() {
		var b strings.Builder
		city.WriteComparison(&b, cmp)
		return res, fmt.Errorf("the statement differs from what the simulator knows is owed:\n%s", b.String())
	}
	for _, sc := range cmp.Statements {
		if sc.Period == res.Period && sc.Adjusts == "" {
			res.Rides, res.ExpectedKop = sc.TruthTotal().Rides, sc.TruthTotal().CompensationKop
		}
	}
	res.Taps, res.Stored = sim.Stats().Taps, sim.Totals()
	return res, nil
}

// PerCarrier returns one line per carrier of the city, with zeros for a
// carrier that had no benefit ride, so the statement names every carrier.
func PerCarrier(carriers []string, lines []store.Line) []store.Line {
	got := report.PerCarrier(lines)
	for _, c := range carriers {
		if !slices.ContainsFunc(got, func(l store.Line) bool { return l.Carrier == c }) {
			got = append(got, store.Line{Carrier: c})
		}
	}
	slices.SortStableFunc(got, func(a, b store.Line) int { return strings.Compare(a.Carrier, b.Carrier) })
	return got
}

// plural writes n with the noun's singular or plural form.
func plural[N int | int64](n N, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
