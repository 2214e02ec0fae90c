package fareref_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/fareref"
	"github.com/citycard/transit/validator/tap"
)

// defaultCases is the short run of the normal test run.
const defaultCases = 100_000

// defaultSeed makes the normal run repeatable.
const defaultSeed = 14

// listing is a hotlist that says the same of every card.
type listing fare.Listing

func (l listing) Listing(uint64) fare.Listing { return fare.Listing(l) }

func vehicleOf(fleet cardtx.Fleet, device uint32) string {
	if v, ok := fleet[device]; ok {
		return v
	}
	return cardtx.DeviceVehicle(device)
}

// modelCard is the card as the model reads it: the contract, the purse and
// the newest record.
func modelCard(c *diffCase) *fareref.Card {
	date := func(d card.Date) fareref.Date { return fareref.DateOf(d.Time()) }
	ct := &c.Contract
	mc := &fareref.Card{Number: uint64(ct.Number), Blocked: ct.Status == card.StatusBlocked, Expiry: date(ct.Expires), PurseKop: c.PurseKop}
	for i, e := range ct.Entitlements {
		if !e.Empty() {
			mc.Entitlements[i] = fareref.Entitlement{Category: e.Category, From: date(e.ValidFrom), To: date(e.ValidTo), Limit: int(e.Limit)}
		}
	}
	for i, p := range ct.Passes {
		if !p.Empty() {
			mc.Passes[i] = fareref.Pass{Product: p.Product, From: date(p.ValidFrom), To: date(p.ValidTo), Groups: p.Carriers}
		}
	}
	if c.Prev != nil {
		r := modelRide(c.Fleet, c.Prev)
		mc.Last = &r
	}
	return mc
}

// modelRide is a tap log record as the model's Ride.
func modelRide(fleet cardtx.Fleet, rec *card.TapRecord) fareref.Ride {
	r := fareref.Ride{Time: rec.Time.Time(), Vehicle: vehicleOf(fleet, rec.Device), CarrierCode: rec.Carrier,
		RouteCode: rec.Route, Product: rec.Product.String()}
	for i, n := range rec.Counts {
		if n != (card.Counter{}) {
			r.Counts[i] = fareref.Count{Category: n.Category, Year: n.Month.Year(), Month: n.Month.Month(), Used: int(n.Used)}
		}
	}
	return r
}

// outcome is what one tap did on both sides, for printing.
type outcome struct {
	model  fareref.Decision
	system fare.Decision
}

// runCase decides every tap of c with the model and with the validator's
// path and returns the number of decisions and the first disagreement
// ("" when they agree), with what each tap did up to it.
func runCase(c *diffCase) (int, string, []outcome) {
	t := c.Tariff
	loc := t.Location
	mc := modelCard(c)
	prev, purse := c.Prev, c.PurseKop
	trace := make([]outcome, 0, len(c.Taps))
	for i, tp := range c.Taps {
		vehicle := vehicleOf(c.Fleet, tp.Device)
		view := cardtx.FareCard(&c.Contract, prev, c.Fleet, tp.Time, loc)
		view.PurseKop = purse
		dev := fare.Device{ID: strconv.FormatUint(uint64(tp.Device), 10), Carrier: tp.Carrier, Route: tp.Route, Vehicle: vehicle}
		sd := fare.Decide(view, t, listing(tp.Listing), dev, tp.Time)
		mt := fareref.Tap{Time: tp.Time, Carrier: tp.Carrier, Route: tp.Route, Vehicle: vehicle,
			CarrierCode: tp.CarrierCode, RouteCode: tp.RouteCode, Listing: tp.Listing}
		md := fareref.Decide(t, mc, mt)
		trace = append(trace, outcome{md, sd})
		if diff := compareDecisions(md, sd); diff != "" {
			return i + 1, fmt.Sprintf("tap %d: decision: %s", i+1, diff), trace
		}
		if md.Result != fareref.ResultAccepted || tp.Torn {
			continue // nothing is committed: neither side changes
		}
		mon, err := card.MonthOf(tp.Time.In(loc))
		if err != nil {
			return i + 1, fmt.Sprintf("tap %d: %v", i+1, err), trace
		}
		st, err := card.StampOf(tp.Time)
		if err != nil {
			return i + 1, fmt.Sprintf("tap %d: %v", i+1, err), trace
		}
		rec := card.TapRecord{Time: st, Device: tp.Device, Seq: uint32(i + 1), Carrier: tp.CarrierCode, Route: tp.RouteCode}
		next, err := cardtx.NextRecord(&c.Contract, prev, sd, rec, mon)
		if err == nil {
			err = next.Validate()
		}
		if err != nil {
			return i + 1, fmt.Sprintf("tap %d: the system's record: %v", i+1, err), trace
		}
		if sd.DebitKop > purse {
			return i + 1, fmt.Sprintf("tap %d: the system debits %d kop from %d kop", i+1, sd.DebitKop, purse), trace
		}
		if err := mc.Commit(t, mt, md); err != nil {
			return i + 1, fmt.Sprintf("tap %d: the model's commit: %v", i+1, err), trace
		}
		prev, purse = &next, purse-sd.DebitKop
		if diff := compareState(mc, c.Fleet, prev, purse, md); diff != "" {
			return i + 1, fmt.Sprintf("tap %d: card after the ride: %s", i+1, diff), trace
		}
	}
	return len(c.Taps), "", trace
}

// compareDecisions maps the model's decision onto fare.Decision's fields
// and names every field that differs.
func compareDecisions(m fareref.Decision, s fare.Decision) string {
	accepted := m.Result == fareref.ResultAccepted
	debit := int64(0)
	if accepted {
		debit = m.ChargedKop
	}
	mapped := fare.Decision{Reason: m.Reason, Product: m.Product, Category: m.Category, Funding: m.Funding,
		FareKop: m.FareKop, ChargedKop: m.ChargedKop, CompensationKop: m.CompensationKop, DebitKop: debit,
		LogTap: accepted, Slot: m.Slot, CountRide: m.Counted, ClockAnomaly: m.ClockAnomaly, BenefitRevoked: m.BenefitRevoked}
	sys := s
	sys.Result = 0
	if mapped == sys && m.Result == s.Result.String() {
		return ""
	}
	// They differ: name the fields.
	var diffs []string
	field := func(name string, model, system any) {
		if model != system {
			diffs = append(diffs, fmt.Sprintf("%s: model %v, system %v", name, model, system))
		}
	}
	field("Result", m.Result, s.Result.String())
	field("Reason", m.Reason, s.Reason)
	field("Product", m.Product, s.Product)
	field("Category", m.Category, s.Category)
	field("Funding", m.Funding, s.Funding)
	field("FareKop", m.FareKop, s.FareKop)
	field("ChargedKop", m.ChargedKop, s.ChargedKop)
	field("CompensationKop", m.CompensationKop, s.CompensationKop)
	field("DebitKop", debit, s.DebitKop)
	field("LogTap", accepted, s.LogTap)
	field("Slot", m.Slot, s.Slot)
	field("CountRide", m.Counted, s.CountRide)
	field("ClockAnomaly", m.ClockAnomaly, s.ClockAnomaly)
	field("BenefitRevoked", m.BenefitRevoked, s.BenefitRevoked)
	if len(diffs) == 0 {
		diffs = append(diffs, fmt.Sprintf("a field the comparison does not name: model %+v, system %+v", m, s))
	}
	return strings.Join(diffs, "; ")
}

// compareState checks the card after a committed ride: the system's new
// record against the model's Ride, and the purses.
func compareState(mc *fareref.Card, fleet cardtx.Fleet, rec *card.TapRecord, purse int64, md fareref.Decision) string {
	var diffs []string
	if mc.PurseKop != purse {
		diffs = append(diffs, fmt.Sprintf("purse: model %d, system %d", mc.PurseKop, purse))
	}
	if got := modelRide(fleet, rec); *mc.Last != got {
		diffs = append(diffs, fmt.Sprintf("newest ride: model %+v, system %+v", *mc.Last, got))
	}
	if int64(rec.Charged) != md.ChargedKop {
		diffs = append(diffs, fmt.Sprintf("record's charge %d, model %d", rec.Charged, md.ChargedKop))
	}
	if rec.Result != card.Result(tap.Accepted) {
		diffs = append(diffs, fmt.Sprintf("record's result %v", rec.Result))
	}
	wantSlot := card.NoSlot
	if md.Slot >= 0 {
		wantSlot = uint8(md.Slot)
	}
	if rec.Slot != wantSlot {
		diffs = append(diffs, fmt.Sprintf("record's slot %d, model %d", rec.Slot, md.Slot))
	}
	return strings.Join(diffs, "; ")
}

// diffKind is a disagreement's kind: the fields that differ, without the
// values, so that one shrunk case stands for many.
func diffKind(diff string) string {
	_, rest, _ := strings.Cut(diff, ": ")
	var names []string
	for part := range strings.SplitSeq(rest, "; ") {
		name, _, _ := strings.Cut(part, ":")
		names = append(names, name)
	}
	return strings.Join(names, ",")
}

func envInt(t testing.TB, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: want a whole number", name, s)
	}
	return n
}

type failure struct {
	index uint64
	diff  string
}

// TestDifferential checks the validator's decisions against the model's
// over TRANSIT_FAREREF_CASES generated cases (default 100,000) from seed
// TRANSIT_FAREREF_SEED. TRANSIT_FAREREF_CASE=N runs and prints case N
// alone. Every kind of disagreement found is shrunk and printed;
// TRANSIT_FAREREF_SAVE=DIR also writes the shrunk cases there as corpus
// files.
func TestDifferential(t *testing.T) {
	seed := envInt(t, "TRANSIT_FAREREF_SEED", defaultSeed)
	if s := os.Getenv("TRANSIT_FAREREF_CASE"); s != "" {
		i := envInt(t, "TRANSIT_FAREREF_CASE", 0)
		c := newCase(seed, i)
		_, diff, trace := runCase(c)
		t.Logf("case %d of seed %d:\n%s", i, seed, printCase(c, trace))
		if diff != "" {
			t.Errorf("%s", diff)
		}
		return
	}
	n := envInt(t, "TRANSIT_FAREREF_CASES", defaultCases)
	start := time.Now()
	workers := runtime.GOMAXPROCS(0)
	var (
		mu        sync.Mutex
		decisions int
		failed    int
		kinds     = map[string]failure{}
		wg        sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			local := 0
			for i := uint64(w); i < n; i += uint64(workers) {
				d, diff, _ := runCase(newCase(seed, i))
				local += d
				if diff == "" {
					continue
				}
				mu.Lock()
				failed++
				k := diffKind(diff)
				if f, ok := kinds[k]; !ok || i < f.index {
					kinds[k] = failure{i, diff}
				}
				mu.Unlock()
			}
			mu.Lock()
			decisions += local
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d cases, %d decisions, seed %d: %d disagreeing cases of %d kinds (%.0f cases/s)",
		n, decisions, seed, failed, len(kinds), float64(n)/elapsed.Seconds())
	if failed == 0 {
		return
	}
	save := os.Getenv("TRANSIT_FAREREF_SAVE")
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		f := kinds[k]
		small := shrink(newCase(seed, f.index))
		_, diff, trace := runCase(small)
		t.Errorf("case %d of seed %d disagrees (%s); shrunk:\n%s\n%s", f.index, seed, f.diff, diff, printCase(small, trace))
		if save != "" {
			if err := saveCase(save, fmt.Sprintf("seed%d-case%d", seed, f.index), small, diff); err != nil {
				t.Error(err)
			}
		}
	}
}

func saveCase(dir, name string, c *diffCase, note string) error {
	jc, err := toJSON(c, note)
	if err != nil {
		return err
	}
	_, _, trace := runCase(c)
	for i := range jc.Taps {
		if i < len(trace) {
			jc.Taps[i].Want = decisionString(trace[i].model)
		}
	}
	b, err := json.MarshalIndent(jc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), append(b, '\n'), 0o644)
}

// TestCorpus replays the kept cases: the model must decide every tap as
// the case says FORMAT.md does, and the validator must agree with it.
func TestCorpus(t *testing.T) {
	paths, err := filepath.Glob("testdata/corpus/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatal("no corpus in testdata/corpus")
	}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			var jc jsonCase
			if err := json.Unmarshal(b, &jc); err != nil {
				t.Fatal(err)
			}
			c, err := fromJSON(&jc)
			if err != nil {
				t.Fatal(err)
			}
			_, diff, trace := runCase(c)
			for i, o := range trace {
				if w := jc.Taps[i].Want; w != "" && decisionString(o.model) != w {
					t.Errorf("tap %d: the model decides %s, the case wants %s", i+1, decisionString(o.model), w)
				}
			}
			switch {
			case jc.Open != "" && diff == "":
				t.Errorf("the validator agrees now: finding %q is fixed; drop \"open\" from %s", jc.Open, p)
			case jc.Open != "":
				t.Logf("open finding (%s): %s", jc.Open, diff)
			case diff != "":
				t.Errorf("%s\n%s", diff, printCase(c, trace))
			}
		})
	}
}

// TestGeneratedTariffsAreFiles checks that the generator makes only
// tariffs the files can express: written out and parsed again, each is
// the same tariff.
func TestGeneratedTariffsAreFiles(t *testing.T) {
	for i := range uint64(2000) {
		c := newCase(defaultSeed, i)
		files, err := tariffFiles(c.Tariff)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		back, err := parseFiles(files)
		if err != nil {
			t.Fatalf("case %d: %v\n%s", i, err, printFiles(files))
		}
		if !sameTariff(c.Tariff, back) {
			t.Fatalf("case %d: the files give another tariff:\n%+v\n%+v\n%s", i, canonical(c.Tariff), canonical(back), printFiles(files))
		}
		if err := c.Contract.Validate(); err != nil {
			t.Fatalf("case %d: contract: %v", i, err)
		}
		if c.Prev != nil {
			if err := c.Prev.Validate(); err != nil {
				t.Fatalf("case %d: record: %v", i, err)
			}
		}
	}
}

// TestDifferentialFinds checks that the differential test can fail: a
// model decision changed by one kopiyka is a disagreement.
func TestDifferentialFinds(t *testing.T) {
	for i := range uint64(200) {
		c := newCase(defaultSeed, i)
		_, diff, trace := runCase(c)
		if diff != "" {
			continue
		}
		for _, o := range trace {
			if o.model.Result != fareref.ResultAccepted {
				continue
			}
			m := o.model
			m.FareKop++
			if compareDecisions(m, o.system) == "" {
				t.Fatalf("case %d: a fare one kopiyka off agrees", i)
			}
			return
		}
	}
	t.Fatal("no accepted tap in 200 cases")
}

// BenchmarkDifferential measures generated cases per second, both sides
// deciding.
func BenchmarkDifferential(b *testing.B) {
	decisions := 0
	i := uint64(0)
	for b.Loop() {
		d, diff, _ := runCase(newCase(defaultSeed, i))
		if diff != "" {
			b.Fatalf("case %d: %s", i, diff)
		}
		decisions += d
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "cases/s")
	b.ReportMetric(float64(decisions)/b.Elapsed().Seconds(), "decisions/s")
}

// decisionString is a decision in one line, as the corpus keeps it.
func decisionString(d fareref.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", d.Result, d.Reason)
	if d.Product != "" {
		fmt.Fprintf(&b, " %s", d.Product)
	}
	if d.Category != "" {
		fmt.Fprintf(&b, " category=%s/%s", d.Category, d.Funding)
	}
	fmt.Fprintf(&b, " fare=%s charged=%s owed=%s", amount(d.FareKop), amount(d.ChargedKop), amount(d.CompensationKop))
	if d.Slot != fareref.NoSlot {
		fmt.Fprintf(&b, " slot=%d", d.Slot)
	}
	for _, f := range []struct {
		on   bool
		name string
	}{{d.Counted, "counted"}, {d.ClockAnomaly, "clock_anomaly"}, {d.BenefitRevoked, "benefit_revoked"}} {
		if f.on {
			b.WriteString(" " + f.name)
		}
	}
	return b.String()
}

func printFiles(files map[string]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(&b, "--- %s\n%s", name, files[name])
	}
	return b.String()
}

// printCase shows a case as a reader checks it by hand: the tariff's
// files, the card, then each tap with both decisions.
func printCase(c *diffCase, trace []outcome) string {
	jc, err := toJSON(c, "")
	if err != nil {
		return fmt.Sprintf("(unprintable: %v) %+v", err, c)
	}
	var b strings.Builder
	b.WriteString(printFiles(jc.Tariff))
	card, _ := json.Marshal(jc.Card)
	fmt.Fprintf(&b, "--- card\n%s\n", card)
	if len(jc.Fleet) > 0 {
		fleet, _ := json.Marshal(jc.Fleet)
		fmt.Fprintf(&b, "--- fleet\n%s\n", fleet)
	}
	b.WriteString("--- taps\n")
	for i, tp := range jc.Taps {
		fmt.Fprintf(&b, "%d. %s device %d (%s/%s, codes %d/%d)", i+1, tp.Time, tp.Device, tp.Carrier, tp.Route, tp.CarrierCode, tp.RouteCode)
		if tp.Listing != "" {
			fmt.Fprintf(&b, " listing %s", tp.Listing)
		}
		if tp.Torn {
			b.WriteString(" TORN")
		}
		b.WriteString("\n")
		if i < len(trace) {
			fmt.Fprintf(&b, "   model:  %s\n   system: %+v\n", decisionString(trace[i].model), trace[i].system)
		}
	}
	return b.String()
}

// TestGeneratorReach checks that the generated cases reach every outcome
// and every rule edge the differential test is for, so that a generator
// change cannot quietly stop testing one.
func TestGeneratorReach(t *testing.T) {
	const cases = 10_000
	seen := map[string]int{}
	for i := range uint64(cases) {
		c := newCase(defaultSeed, i)
		_, _, trace := runCase(c)
		reach(c, trace, seen)
	}
	for _, k := range slices.Sorted(maps.Keys(seen)) {
		t.Logf("%7d %s", seen[k], k)
	}
	for _, k := range reachKeys {
		if seen[k] < 10 {
			t.Errorf("%q: %d times in %d cases", k, seen[k], cases)
		}
	}
}

// reachKeys are what the generated cases must reach (reach names them).
var reachKeys = []string{
	"denied hotlisted", "denied card-blocked", "denied card-expired", "denied no-fare-for-carrier",
	"denied insufficient-funds", "denied insufficient-funds benefit", "already-paid already-paid",
	"accepted ok purse", "accepted ok pass", "accepted ok benefit", "accepted ok transfer",
	"counted", "uncounted benefit", "flat compensation", "odd kopiyka", "clock anomaly", "benefit revoked",
	"transfer beats counted benefit", "benefit beats transfer", "quota used up", "count of last month",
	"ride after a torn tap", "transfer on a daylight-saving day", "ride of the second slot",
	"unpriced at this hour", "pass slot 1", "transfer after a transfer",
}

// reach counts what the taps of c did.
func reach(c *diffCase, trace []outcome, seen map[string]int) {
	mc := modelCard(c)
	torn := false
	for i, o := range trace {
		tp := c.Taps[i]
		d := o.model
		mt := fareref.Tap{Time: tp.Time, Carrier: tp.Carrier, Route: tp.Route, Vehicle: vehicleOf(c.Fleet, tp.Device),
			CarrierCode: tp.CarrierCode, RouteCode: tp.RouteCode, Listing: tp.Listing}
		seen[d.Result+" "+d.Reason]++
		if d.Product != "" {
			seen[d.Result+" "+d.Reason+" "+d.Product]++
		}
		if d.Reason == fareref.ReasonInsufficientFunds && d.Category != "" {
			seen["denied insufficient-funds benefit"]++
		}
		if d.Reason == fareref.ReasonNoFare && c.Tariff.Carriers[tp.Carrier].ID != "" {
			seen["unpriced at this hour"]++
		}
		if d.Counted {
			seen["counted"]++
		}
		if d.Product == fareref.ProductBenefit && !d.Counted {
			seen["uncounted benefit"]++
		}
		if d.Product == fareref.ProductBenefit && d.Slot == 1 {
			seen["ride of the second slot"]++
		}
		if d.Product == fareref.ProductPass && d.Slot == 1 {
			seen["pass slot 1"]++
		}
		if d.Product == fareref.ProductBenefit && d.CompensationKop != d.FareKop-d.ChargedKop {
			seen["flat compensation"]++
		}
		if d.Product == fareref.ProductBenefit {
			if cat, ok := c.Tariff.Categories[d.Category]; ok && d.FareKop*cat.DiscountPct%100 != 0 {
				seen["odd kopiyka"]++
			}
		}
		if p := mc.Last; p != nil && d.Result == fareref.ResultAccepted && !d.ClockAnomaly &&
			slices.ContainsFunc(c.Tariff.Transfers, func(r fare.TransferRule) bool { return r.From == "" }) {
			// P's own ride, priced again at Tp on an empty card.
			for _, cr := range c.Tariff.Carriers {
				if cr.Code != p.CarrierCode {
					continue
				}
				again := fareref.Tap{Time: p.Time, Carrier: cr.ID, Route: mainRoute}
				for _, r := range cr.Routes {
					if r.Code == p.RouteCode {
						again.Route = r.ID
					}
				}
				if fareref.Decide(c.Tariff, &fareref.Card{Expiry: fareref.Date{Year: 2100, Month: 1, Day: 1}}, again).Reason == fareref.ReasonNoFare {
					seen["previous ride unpriced at its time"]++
				}
			}
		}
		if d.ClockAnomaly {
			seen["clock anomaly"]++
		}
		if d.BenefitRevoked {
			seen["benefit revoked"]++
		}
		if d.Result == fareref.ResultAccepted && torn {
			seen["ride after a torn tap"]++
		}
		if d.Product == fareref.ProductTransfer {
			if l := tp.Time.In(c.Tariff.Location); l.Add(-24*time.Hour).Hour() != l.Hour() || l.Add(24*time.Hour).Hour() != l.Hour() {
				seen["transfer on a daylight-saving day"]++
			}
			if mc.Last != nil && mc.Last.Product == fareref.ProductTransfer {
				seen["transfer after a transfer"]++
			}
		}
		// What the tap would have been without the previous ride (no
		// transfer), and with unlimited slots (no quota).
		if mc.Last != nil && d.Result == fareref.ResultAccepted {
			alone := *mc
			alone.Last = nil
			a := fareref.Decide(c.Tariff, &alone, mt)
			switch {
			case d.Product == fareref.ProductTransfer && a.Product == fareref.ProductBenefit && a.Counted:
				seen["transfer beats counted benefit"]++
			case d.Product == fareref.ProductBenefit && a.Product == fareref.ProductBenefit && !d.Counted:
				if tc, ok := transferWouldApply(c, mc, mt); ok && tc >= d.ChargedKop {
					seen["benefit beats transfer"]++
				}
			}
		}
		if d.Result == fareref.ResultAccepted && d.Product != fareref.ProductBenefit && d.Product != fareref.ProductPass {
			free := *mc
			for j := range free.Entitlements {
				free.Entitlements[j].Limit = 0
			}
			if a := fareref.Decide(c.Tariff, &free, mt); a.Product == fareref.ProductBenefit && a.ChargedKop <= d.ChargedKop {
				seen["quota used up"]++
			}
		}
		if d.Counted && mc.Last != nil {
			if n := mc.Last.Counts[d.Slot]; n.Used > 0 && n.Month != tp.Time.In(c.Tariff.Location).Month() {
				seen["count of last month"]++
			}
		}
		if d.Result == fareref.ResultAccepted {
			torn = tp.Torn
			if !tp.Torn {
				_ = mc.Commit(c.Tariff, mt, d)
			}
		}
	}
}

// transferWouldApply says whether the card without its benefits would
// ride on a transfer, and at what cost.
func transferWouldApply(c *diffCase, mc *fareref.Card, mt fareref.Tap) (int64, bool) {
	none := *mc
	none.Entitlements = [2]fareref.Entitlement{}
	none.PurseKop = 5000_00
	d := fareref.Decide(c.Tariff, &none, mt)
	return d.ChargedKop, d.Product == fareref.ProductTransfer
}

// TestMakeCorpus writes, when TRANSIT_FAREREF_MAKE_CORPUS names a
// directory, one minimal agreeing case for each thing the generator must
// reach (reachKeys), with the model's decisions: the corpus of
// testdata/corpus/reach-*.json. Without it there is nothing to write and
// it passes at once (a tool, not a check: the harness allows no skips).
func TestMakeCorpus(t *testing.T) {
	dir := os.Getenv("TRANSIT_FAREREF_MAKE_CORPUS")
	if dir == "" {
		return
	}
	has := func(key string) func(*diffCase) bool {
		return func(c *diffCase) bool {
			_, diff, trace := runCase(c)
			if diff != "" {
				return false
			}
			seen := map[string]int{}
			reach(c, trace, seen)
			return seen[key] > 0
		}
	}
	for _, key := range reachKeys {
		keep := has(key)
		found := false
		for i := range uint64(10_000) {
			c := newCase(defaultSeed, i)
			if !keep(c) {
				continue
			}
			small := shrinkKeeping(c, keep)
			name := "reach-" + strings.ReplaceAll(key, " ", "-")
			if err := saveCase(dir, name, small, key); err != nil {
				t.Fatal(err)
			}
			found = true
			break
		}
		if !found {
			t.Errorf("%q: no case", key)
		}
	}
}
