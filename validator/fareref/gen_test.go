package fareref_test

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/fareref"
)

// A differential case: one tariff, one card and the taps it makes.
type diffCase struct {
	Tariff   *fare.Tariff
	Contract card.Contract
	PurseKop int64
	// Prev is the card's newest tap log record before the first tap; nil
	// is an empty log.
	Prev *card.TapRecord
	// Fleet places devices on vehicles; a device missing from it is a
	// vehicle of its own.
	Fleet cardtx.Fleet
	Taps  []diffTap
}

// diffTap is one tap: the device and its configuration, the instant, the
// hotlist's word on the card, and whether the card committed (an accepted
// tap that is torn leaves nothing on the card).
type diffTap struct {
	Time                   time.Time
	Device                 uint32
	Carrier, Route         string
	CarrierCode, RouteCode uint16
	Listing                fareref.Listing
	Torn                   bool
}

// gen draws one case from r. The shapes are those the tariff files can
// express (TestGeneratedTariffsAreFiles checks it), with values chosen to
// meet at the rules' edges: fares with odd kopiyky, quotas at their limit,
// taps at the passback and transfer limits, peaks, midnights, month ends
// and the daylight-saving days.
type gen struct {
	r     *rand.Rand
	loc   *time.Location
	zones []*time.Location // other than Kyiv
	// The tariff's parts, for the card and the taps.
	networks  []string
	legGroups []string
	devices   map[uint32]deviceConfig
	deviceIDs []uint32
}

type deviceConfig struct {
	carrier, route         string
	carrierCode, routeCode uint16
}

func (g *gen) intn(n int) int       { return g.r.IntN(n) }
func (g *gen) chance(p int) bool    { return g.r.IntN(100) < p }
func pick[T any](g *gen, xs ...T) T { return xs[g.r.IntN(len(xs))] }

// newCase is case index of seed.
func newCase(seed, index uint64) *diffCase {
	g := &gen{r: rand.New(rand.NewPCG(seed, index)), zones: otherZones}
	c := &diffCase{}
	c.Tariff = g.tariff()
	c.Fleet = g.fleet(c.Tariff)
	base := g.base(c.Tariff)
	g.card(c, base)
	g.taps(c, base)
	return c
}

// Ids, made once: the generator runs for every case.
var (
	carrierIDs       = []string{"c0", "c1", "c2", "c3", "c4"}
	routeIDs         = []string{"r0", "r1"}
	timeframeGroups  = []string{"tf0", "tf1"}
	productIDs       = []string{"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11"}
	transferProducts = []string{"x0", "x1", "x2", "x3", "x4"}
	passProducts     = []string{"pass0", "pass1", "pass2"}
	categoryCodes    = []string{"11", "12", "21", "31", "41", "7", "65535"}
	riderIDs         = []string{"rider11", "rider12", "rider21", "rider31", "rider41", "rider7", "rider65535"}
	vehicleIDs       = []string{"v0", "v1", "v2"}
)

// otherZones are cities' zones whose clocks change at other hours than
// Kyiv's: by half an hour (Lord Howe), at 01:00 UTC (London), at 02:00
// local (St John's), never (UTC), or at local midnight, which then does
// not exist or happens twice (Havana, Santiago, Beirut: finding F1 of the
// corpus, testdata/corpus/F1-*.json).
var otherZones = zones("Australia/Lord_Howe", "Europe/London", "America/St_Johns", "UTC",
	"America/Havana", "America/Santiago", "Asia/Beirut")

func zones(names ...string) []*time.Location {
	var out []*time.Location
	for _, name := range names {
		loc, err := time.LoadLocation(name)
		if err != nil {
			panic(err)
		}
		out = append(out, loc)
	}
	return out
}

var fareAmounts = []int64{0, 1, 99, 100, 800, 1000, 1200, 1235, 1500, 1501, 2001, 4999}

func (g *gen) tariff() *fare.Tariff {
	g.loc = kyiv
	if g.chance(15) {
		g.loc = pick(g, g.zones...)
	}
	t := &fare.Tariff{Version: 1, Location: g.loc, Passback: time.Duration(pick(g, 0, 60, 120, 120, 120, 600, 86400)) * time.Second,
		Legs: make([]fare.LegRule, 0, 10), Timeframes: make([]fare.Timeframe, 0, 6)}

	g.networks = []string{"n0", "n1", "n2", "n3"}[:1+g.intn(4)]
	nets := g.networks
	g.legGroups = []string{"g0", "g1", "g2"}[:1+g.intn(3)]

	// Carriers: codes, shared groups, networks; routes in other networks.
	t.Carriers = map[string]fare.Carrier{}
	ncar := 1 + g.intn(5)
	codes := map[uint16]bool{}
	for i := range ncar {
		code := uint16(1 + g.intn(9))
		if g.chance(10) {
			code = uint16(1 + g.intn(65535))
		}
		for codes[code] {
			code++
			if code == 0 {
				code = 1
			}
		}
		codes[code] = true
		id := carrierIDs[i]
		c := fare.Carrier{ID: id, Code: code, Group: g.intn(4), Network: pick(g, nets...)}
		for j := range g.intn(3) {
			c.Routes = append(c.Routes, fare.Route{ID: routeIDs[j], Code: uint16(100 + j), Network: pick(g, nets...)})
		}
		t.Carriers[id] = c
	}

	// Timeframes: a group has one to three intervals, each on its own
	// calendar (weekdays and a date range).
	var tfGroups []string
	for i := range g.intn(3) {
		group := timeframeGroups[i]
		tfGroups = append(tfGroups, group)
		for range 1 + g.intn(3) {
			tf := fare.Timeframe{Group: group, Weekdays: uint8(g.intn(128)), FromDate: 20250101, ToDate: 20271231}
			if g.chance(30) {
				tf.Weekdays = 0x7F
			}
			if g.chance(30) {
				// Dates that start or end near the interesting days.
				d := pick(g, "20260329", "20261025", "20260131", "20260201", "20261231", "20260601")
				n, _ := strconv.Atoi(d)
				if g.chance(50) {
					tf.FromDate = int32(n)
				} else {
					tf.ToDate = int32(n)
				}
			}
			switch g.intn(4) {
			case 0: // the whole day
				tf.Start, tf.End = 0, 86400
			case 1: // around the daylight-saving hours
				tf.Start, tf.End = pick(g, int32(2*3600), 3*3600, int32(3*3600+1800)), pick(g, int32(3*3600), 4*3600, 5*3600)
			default:
				tf.Start = int32(g.intn(24)) * 3600
				tf.End = tf.Start + int32(1+g.intn(6))*1800
				if g.chance(30) {
					tf.Start += int32(g.intn(3600))
				}
			}
			tf.End = min(tf.End, 86400)
			if tf.End <= tf.Start {
				tf.Start, tf.End = 0, 86400
			}
			t.Timeframes = append(t.Timeframes, tf)
		}
	}

	// Leg rules: priorities, networks and timeframes; then every network
	// a carrier or route runs in gets at least one rule (the format
	// demands it, though a timeframe may still leave hours unpriced).
	for i := range g.intn(6) {
		l := fare.LegRule{Product: productIDs[i], FareKop: pick(g, fareAmounts...)}
		if g.chance(70) {
			l.LegGroup = pick(g, g.legGroups...)
		}
		if g.chance(75) {
			l.Network = pick(g, nets...)
		}
		if len(tfGroups) > 0 && g.chance(40) {
			l.Timeframe = pick(g, tfGroups...)
		}
		if g.chance(25) {
			l.Priority = pick(g, 1, 1, 5, 1_000_000)
		}
		if len(t.Legs) > 0 && g.chance(20) {
			// Two rules may share a product.
			p := pick(g, t.Legs...)
			l.Product, l.FareKop = p.Product, p.FareKop
		}
		t.Legs = append(t.Legs, l)
	}
	for _, n := range usedNetworks(t) {
		if !slices.ContainsFunc(t.Legs, func(l fare.LegRule) bool { return l.Network == "" || l.Network == n }) {
			l := fare.LegRule{Product: productIDs[len(t.Legs)], FareKop: pick(g, fareAmounts...), Network: n}
			if g.chance(70) {
				l.LegGroup = pick(g, g.legGroups...)
			}
			if len(tfGroups) > 0 && g.chance(15) {
				l.Timeframe = pick(g, tfGroups...)
			}
			t.Legs = append(t.Legs, l)
		}
	}
	var groupsUsed []string
	for _, l := range t.Legs {
		if l.LegGroup != "" && !slices.Contains(groupsUsed, l.LegGroup) {
			groupsUsed = append(groupsUsed, l.LegGroup)
		}
	}

	// Transfer rules between leg groups: one rule a pair.
	pairs := map[[2]string]bool{}
	ends := append([]string{""}, groupsUsed...)
	for i := range g.intn(5) {
		from, to := pick(g, ends...), pick(g, ends...)
		if pairs[[2]string{from, to}] {
			continue
		}
		pairs[[2]string{from, to}] = true
		r := fare.TransferRule{From: from, To: to,
			Within: time.Duration(pick(g, 1, 60, 600, 3600, 3600, 5400, 86400)) * time.Second}
		if from == to {
			r.Chain = g.chance(50)
		}
		if g.chance(50) {
			r.Type = fare.TransferAdd
			r.AmountKop = pick(g, int64(-500), -500, -2000, -100, -1, 0, 300)
		} else {
			r.AmountKop = pick(g, int64(0), 0, 1, 400, 1500, 2000)
		}
		if r.AmountKop != 0 || g.chance(50) {
			r.Product = transferProducts[i]
		}
		t.Transfers = append(t.Transfers, r)
	}

	// Passes.
	var carrierGroups []int
	for _, c := range t.Carriers {
		if !slices.Contains(carrierGroups, c.Group) {
			carrierGroups = append(carrierGroups, c.Group)
		}
	}
	slices.Sort(carrierGroups)
	if n := g.intn(4); n > 0 {
		t.Passes = map[uint16]fare.PassProduct{}
		for i := range n {
			p := fare.PassProduct{Code: uint16(1 + i), Product: passProducts[i], PriceKop: 90000, Days: 30, Groups: fare.AllGroups}
			if g.chance(60) {
				p.Groups = 0
				for _, gr := range carrierGroups {
					if g.chance(50) {
						p.Groups |= 1 << gr
					}
				}
				if p.Groups == 0 {
					p.Groups = 1 << carrierGroups[0]
				}
			}
			t.Passes[p.Code] = p
		}
	}

	// Benefit categories.
	if n := g.intn(5); n > 0 {
		t.Categories = map[string]fare.Category{}
		for range n {
			j := g.intn(len(categoryCodes))
			key := categoryCodes[j]
			if _, dup := t.Categories[key]; dup {
				continue
			}
			c := fare.Category{Code: key, Rider: riderIDs[j],
				DiscountPct:  pick(g, int64(100), 100, 50, 50, 33, 0, 1, 99, 25, 67),
				Funding:      pick(g, fare.FundingCity, fare.FundingState),
				MonthlyRides: pick(g, 0, 0, 0, 1, 2, 3, 50, 255)}
			if g.chance(25) {
				c.FixedCompensation = true
				c.CompensationKop = pick(g, int64(0), 1, 750, 1235)
			}
			if g.chance(25) {
				c.Networks = pickSome(g, nets)
			}
			if g.chance(25) {
				ids := make([]string, 0, len(t.Carriers))
				for id := range t.Carriers {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				c.Carriers = pickSome(g, ids)
			}
			t.Categories[key] = c
		}
	}
	return t
}

// pickSome returns a non-empty sub-list of xs, in xs's order.
func pickSome(g *gen, xs []string) []string {
	var out []string
	for _, x := range xs {
		if g.chance(50) {
			out = append(out, x)
		}
	}
	if len(out) == 0 {
		out = append(out, pick(g, xs...))
	}
	return out
}

// usedNetworks are the networks carriers and routes run in, sorted.
func usedNetworks(t *fare.Tariff) []string {
	var out []string
	for _, c := range t.Carriers {
		out = append(out, c.Network)
		for _, r := range c.Routes {
			out = append(out, r.Network)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mainRoute is a carrier's route in its own network, with a code none of
// its x_routes.txt rows has.
const mainRoute = "m"

// (x_routes.txt codes are 100 and up here).
const mainRouteCode = 1

// fleet makes the devices: up to three vehicles with one to three doors
// each, and devices no vehicle lists. Every device of a vehicle runs the
// vehicle's carrier and route.
func (g *gen) fleet(t *fare.Tariff) cardtx.Fleet {
	ids := make([]string, 0, len(t.Carriers))
	for id := range t.Carriers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	config := func() deviceConfig {
		if g.chance(4) {
			return deviceConfig{carrier: "unknown", route: mainRoute, carrierCode: 60000, routeCode: 1}
		}
		c := t.Carriers[pick(g, ids...)]
		cfg := deviceConfig{carrier: c.ID, route: mainRoute, carrierCode: c.Code, routeCode: mainRouteCode}
		if len(c.Routes) > 0 && g.chance(50) {
			r := pick(g, c.Routes...)
			cfg.route, cfg.routeCode = r.ID, r.Code
		}
		if g.chance(2) {
			// A device configured with another carrier's number: the
			// log then names that carrier.
			cfg.carrierCode = t.Carriers[pick(g, ids...)].Code
		}
		return cfg
	}
	fleet := cardtx.Fleet{}
	g.devices = map[uint32]deviceConfig{}
	dev := uint32(1)
	for v := range 1 + g.intn(3) {
		cfg := config()
		for range 1 + g.intn(3) {
			fleet[dev] = vehicleIDs[v]
			g.devices[dev] = cfg
			g.deviceIDs = append(g.deviceIDs, dev)
			dev++
		}
	}
	for range g.intn(3) {
		g.devices[dev] = config()
		g.deviceIDs = append(g.deviceIDs, dev)
		dev++
	}
	return fleet
}

// base is the case's first instant: around a change of the zone's
// offset (the daylight-saving days), a local midnight or month end, a
// timeframe's edge, or any time in 2026.
func (g *gen) base(t *fare.Tariff) time.Time {
	loc := t.Location
	local := func(y int, m time.Month, d, hh, mm, ss int) time.Time {
		return time.Date(y, m, d, hh, mm, ss, 0, loc).UTC()
	}
	anyTime := func() time.Time {
		return time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.r.Int64N(365*86400)) * time.Second)
	}
	var at time.Time
	switch g.intn(8) {
	case 0, 1: // hours around the next change of offset, if the zone has one
		at = anyTime()
		if _, end := at.In(loc).ZoneBounds(); !end.IsZero() {
			at = end.Add(time.Duration(g.intn(6*3600)-3*3600) * time.Second).UTC()
		}
	case 2: // a local month end
		m := time.Month(1 + g.intn(12))
		at = local(2026, m+1, 1, 0, 0, 0).Add(-time.Duration(g.intn(3600)) * time.Second)
	case 3: // a local midnight
		at = local(2026, time.Month(1+g.intn(12)), 1+g.intn(28), 0, 0, 0).Add(time.Duration(g.intn(1200)-600) * time.Second)
	case 4, 5: // a timeframe's edge on a day it applies, if any
		if len(t.Timeframes) > 0 {
			tf := pick(g, t.Timeframes...)
			edge := pick(g, tf.Start, tf.End)
			at = local(2026, time.Month(1+g.intn(12)), 1+g.intn(28), 0, 0, int(edge))
			at = at.Add(time.Duration(g.intn(5)-2) * time.Second)
			break
		}
		fallthrough
	default:
		at = anyTime()
	}
	if g.chance(50) {
		at = at.Add(time.Duration(g.intn(1000)) * time.Millisecond)
	}
	return at
}

// cardDate is the card's date of t's local day.
func (g *gen) cardDate(t time.Time) card.Date {
	d, err := card.DateOf(t.In(g.loc))
	if err != nil {
		panic(err)
	}
	return d
}

// aroundDay is a card date near the local day of at: the same day, the
// next or previous day, or further.
func (g *gen) aroundDay(at time.Time) card.Date {
	return g.cardDate(at.AddDate(0, 0, pick(g, 0, 0, 1, -1, 2, -2, 31, -31, 400, -400)))
}

var cardNumber = func() card.Number {
	n, err := card.NewNumber(1001, 42)
	if err != nil {
		panic(err)
	}
	return n
}()

func (g *gen) card(c *diffCase, base time.Time) {
	t := c.Tariff
	ct := card.Contract{KeyVersion: 1, Status: card.StatusActive, Number: cardNumber, Expires: g.cardDate(base.AddDate(3, 0, 0))}
	if g.chance(4) {
		ct.Status = card.StatusBlocked
	}
	if g.chance(8) {
		ct.Expires = g.aroundDay(base)
	}
	cats := []uint16{5} // a category no tariff knows
	for k := range t.Categories {
		n, _ := strconv.Atoi(k)
		cats = append(cats, uint16(n))
	}
	slices.Sort(cats)
	quota := func(cat uint16) int {
		if cc, ok := t.Categories[strconv.Itoa(int(cat))]; ok && cc.MonthlyRides != 0 {
			return cc.MonthlyRides
		}
		return 3
	}
	for i := range ct.Entitlements {
		if !g.chance(55) {
			continue
		}
		e := card.Entitlement{Category: pick(g, cats...), ValidFrom: g.cardDate(base.AddDate(-1, 0, 0)),
			ValidTo: g.cardDate(base.AddDate(1, 0, 0)), Funding: pick(g, card.FundingCity, card.FundingState)}
		if g.chance(20) {
			e.ValidFrom = g.aroundDay(base)
		}
		if g.chance(20) {
			e.ValidTo = g.aroundDay(base)
		}
		if e.ValidTo < e.ValidFrom {
			e.ValidFrom, e.ValidTo = e.ValidTo, e.ValidFrom
		}
		if g.chance(50) {
			q := quota(e.Category)
			e.Limit = uint8(max(1, min(255, pick(g, 1, 2, 3, q, q+1, q-1, 50, 255))))
		}
		ct.Entitlements[i] = e
	}
	for i := range ct.Passes {
		if !g.chance(25) {
			continue
		}
		p := card.Pass{Product: uint16(1 + g.intn(4)), ValidFrom: g.cardDate(base.AddDate(0, 0, -10)),
			ValidTo: g.cardDate(base.AddDate(0, 0, 20)), Carriers: card.AllCarriers}
		if g.chance(30) {
			p.ValidFrom = g.aroundDay(base)
		}
		if g.chance(30) {
			p.ValidTo = g.aroundDay(base)
		}
		if p.ValidTo < p.ValidFrom {
			p.ValidFrom, p.ValidTo = p.ValidTo, p.ValidFrom
		}
		if g.chance(50) {
			p.Carriers = uint16(1 + g.intn(15))
		}
		ct.Passes[i] = p
	}
	c.Contract = ct
	c.PurseKop = pick(g, int64(0), 1, 399, 400, 749, 750, 1199, 1200, 1234, 1235, 1499, 1500, 5000, 100_00, 5000_00)

	if g.chance(30) {
		return // an empty log
	}
	// The newest record: before the first tap (rarely after it), on a
	// device of the case or another, with counts near the quotas.
	ago := pick(g, 1, 30, 119, 120, 121, 600, 3599, 3600, 3601, 86400, 40*86400)
	prevAt := base.Add(-time.Duration(ago) * time.Second)
	if g.chance(8) {
		prevAt = base.Add(time.Duration(pick(g, 1, 5, 3600)) * time.Second)
	}
	st, err := card.StampOf(prevAt)
	if err != nil {
		panic(err)
	}
	rec := card.TapRecord{Time: st, Device: 900, Seq: 7, Result: card.ResultAccepted, Slot: card.NoSlot,
		Product: pick(g, card.ProductPurse, card.ProductPass, card.ProductBenefit, card.ProductTransfer)}
	if g.chance(80) {
		rec.Device = pick(g, g.deviceIDs...)
	}
	cfg := g.devices[rec.Device]
	rec.Carrier, rec.Route = cfg.carrierCode, cfg.routeCode
	if rec.Device == 900 || g.chance(10) {
		// A ride of another vehicle, perhaps a carrier or route the
		// tariff does not know.
		rec.Carrier = pick(g, uint16(0), 1, 2, 3, 60000)
		rec.Route = pick(g, uint16(1), 100, 101, 9)
	}
	for i, e := range ct.Entitlements {
		if !g.chance(60) {
			continue
		}
		cat := e.Category
		if cat == 0 || g.chance(15) {
			cat = pick(g, cats...)
		}
		m := base.In(g.loc)
		if g.chance(25) {
			m = m.AddDate(0, -1, 0)
		}
		mon, err := card.NewMonth(m.Year(), m.Month())
		if err != nil {
			panic(err)
		}
		q := quota(cat)
		used := pick(g, 0, 1, q-1, q, int(e.Limit)-1, int(e.Limit), int(e.Limit)+1, 255)
		rec.Counts[i] = card.Counter{Category: cat, Month: mon, Used: uint8(max(0, min(255, used)))}
	}
	c.Prev = &rec
}

// taps makes the sequence: each tap after the one before by a step that
// meets a rule's edge (the passback or a transfer limit, a millisecond
// either side), a short hop to another door or vehicle, an hour, a day, or
// a step back (the validator's clock behind).
func (g *gen) taps(c *diffCase, base time.Time) {
	t := c.Tariff
	edges := make([]time.Duration, 0, 16)
	edges = append(edges, []time.Duration{t.Passback - time.Millisecond, t.Passback, time.Second, 500 * time.Millisecond}...)
	for _, r := range t.Transfers {
		edges = append(edges, r.Within-time.Millisecond, r.Within)
	}
	at := base
	n := 1 + g.intn(8)
	c.Taps = make([]diffTap, 0, n)
	for i := range n {
		if i > 0 {
			var step time.Duration
			switch g.intn(10) {
			case 0, 1, 2:
				step = pick(g, edges...)
			case 3:
				step = -time.Duration(pick(g, 1, 1000, 30_000, 3600_000)) * time.Millisecond
			case 4:
				step = time.Duration(pick(g, 3600, 86400, 7*86400, 31*86400)) * time.Second
			default:
				step = time.Duration(g.intn(3600_000)) * time.Millisecond
			}
			at = at.Add(step)
		}
		dev := pick(g, g.deviceIDs...)
		cfg := g.devices[dev]
		tp := diffTap{Time: at, Device: dev, Carrier: cfg.carrier, Route: cfg.route,
			CarrierCode: cfg.carrierCode, RouteCode: cfg.routeCode, Torn: g.chance(12)}
		switch {
		case g.chance(3):
			tp.Listing = fareref.Listed
		case g.chance(8):
			tp.Listing = fareref.BenefitRevoked
		}
		c.Taps = append(c.Taps, tp)
	}
}
