package tariff

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/citycard/transit/validator/fare"
)

// Files of a tariff directory.
const (
	FileTariff        = "x_tariff.txt"
	FileNetworks      = "networks.txt"
	FileCalendar      = "calendar.txt"
	FileTimeframes    = "timeframes.txt"
	FileRiders        = "rider_categories.txt"
	FileProducts      = "fare_products.txt"
	FileLegRules      = "fare_leg_rules.txt"
	FileTransferRules = "fare_transfer_rules.txt"
	FileCarriers      = "x_carriers.txt"
	FileRoutes        = "x_routes.txt"
	FileBenefits      = "x_benefits.txt"
	FilePasses        = "x_passes.txt"
	// SignatureFile is the signed manifest; it is not tariff content.
	SignatureFile = "tariff.sig"
)

// requiredFiles are the files every tariff has; optionalFiles the others
// it may have.
var (
	requiredFiles = []string{FileTariff, FileNetworks, FileProducts, FileLegRules, FileCarriers}
	optionalFiles = []string{FileCalendar, FileTimeframes, FileRiders, FileTransferRules, FileRoutes, FileBenefits, FilePasses}
)

// unsupportedFiles are GTFS files a publisher may expect to work, and why
// they do not.
var unsupportedFiles = map[string]string{
	"fare_media.txt":          "not supported: every product of this tariff is on the city card",
	"calendar_dates.txt":      "not supported: timeframes follow calendar.txt's weekdays and dates only",
	"areas.txt":               "not supported: a validator prices a boarding and knows no stops",
	"stop_areas.txt":          "not supported: a validator prices a boarding and knows no stops",
	"fare_leg_join_rules.txt": "not supported: each boarding is priced on its own, transfers link them",
	"routes.txt":              "not read: put routes in networks with x_routes.txt",
	"route_networks.txt":      "not read: put routes in networks with x_routes.txt",
	"fare_attributes.txt":     "not read: this is GTFS-Fares v1; use fare_products.txt and fare_leg_rules.txt",
	"fare_rules.txt":          "not read: this is GTFS-Fares v1; use fare_products.txt and fare_leg_rules.txt",
}

// Currency is the only currency a tariff may use: the card's purse holds
// hryvnias in kopiyky.
const Currency = "UAH"

// builder turns the files into a fare.Tariff, checking each file and
// every reference between files.
type builder struct {
	files map[string][]byte
	t     *fare.Tariff

	networks   map[string]bool
	services   map[string]service
	timeframes map[string]bool
	riders     map[string]bool
	defRider   string
	products   map[string]product
	legGroups  map[string]bool
	netUses    []netUse // networks carriers and routes run in, for the coverage check
	groups     [16]bool
}

type netUse struct {
	network, file string
	line          int
}

type service struct {
	weekdays uint8
	from, to int32
}

type product struct {
	amount int64
	line   int
}

// build checks the files of a tariff (sorted by name; SignatureFile is
// ignored) and assembles the tariff.
func build(files []file) (*fare.Tariff, error) {
	b := &builder{files: make(map[string][]byte, len(files)), t: &fare.Tariff{}}
	for _, f := range files {
		if !slices.Contains(requiredFiles, f.name) && !slices.Contains(optionalFiles, f.name) && f.name != SignatureFile {
			if why, ok := unsupportedFiles[f.name]; ok {
				return nil, fileErr(f.name, "%s", why)
			}
			return nil, fileErr(f.name, "unknown file; validator/tariff/FORMAT.md lists the files of a tariff")
		}
		b.files[f.name] = f.data
	}
	for _, name := range requiredFiles {
		if _, ok := b.files[name]; !ok {
			return nil, fileErr(name, "missing: every tariff has this file")
		}
	}
	for _, step := range []func() error{
		b.tariff, b.networkList, b.calendar, b.timeframeList, b.riderList, b.productList,
		b.carriers, b.routes, b.legRules, b.coverage, b.transferRules, b.benefits, b.passes,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return b.t, nil
}

// read returns the table of an optional file, nil when absent.
func (b *builder) read(name string, cols ...column) (*table, error) {
	data, ok := b.files[name]
	if !ok {
		return nil, nil
	}
	return readTable(name, data, cols)
}

func (b *builder) tariff() error {
	tb, err := b.read(FileTariff, column{"version", true}, column{"currency", true},
		column{"timezone", true}, column{"passback_seconds", true})
	if err != nil {
		return err
	}
	if len(tb.rows) != 1 {
		return fileErr(FileTariff, "%d rows: want exactly one", len(tb.rows))
	}
	r := tb.rows[0]
	v, err := r.integer("version", 1, 1<<32-1, true, 0)
	if err != nil {
		return err
	}
	if c := r.get("currency"); c != Currency {
		return r.bad("currency", "%q: the card's purse holds %s", c, Currency)
	}
	tz := r.get("timezone")
	loc, err := time.LoadLocation(tz)
	if tz == "" || tz == "Local" || err != nil {
		return r.bad("timezone", "%q is not an IANA time zone such as Europe/Kyiv", tz)
	}
	pb, err := r.integer("passback_seconds", 0, 86400, true, 0)
	if err != nil {
		return err
	}
	b.t.Version, b.t.Location, b.t.Passback = uint32(v), loc, time.Duration(pb)*time.Second
	return nil
}

func (b *builder) networkList() error {
	tb, err := b.read(FileNetworks, column{"network_id", true}, column{"network_name", false})
	if err != nil {
		return err
	}
	if len(tb.rows) == 0 {
		return fileErr(FileNetworks, "no network: list at least one")
	}
	b.networks = map[string]bool{}
	for _, r := range tb.rows {
		id, err := r.id("network_id", true)
		if err != nil {
			return err
		}
		if b.networks[id] {
			return r.bad("network_id", "%q listed twice", id)
		}
		b.networks[id] = true
	}
	return nil
}

// dayColumns are calendar.txt's weekday columns in time.Weekday order.
var dayColumns = [7]string{"sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"}

func (b *builder) calendar() error {
	cols := []column{{"service_id", true}, {"start_date", true}, {"end_date", true}}
	for _, d := range dayColumns {
		cols = append(cols, column{d, true})
	}
	tb, err := b.read(FileCalendar, cols...)
	if err != nil || tb == nil {
		return err
	}
	b.services = map[string]service{}
	for _, r := range tb.rows {
		id, err := r.id("service_id", true)
		if err != nil {
			return err
		}
		if _, dup := b.services[id]; dup {
			return r.bad("service_id", "%q listed twice", id)
		}
		var s service
		for wd, col := range dayColumns {
			on, err := r.flag(col, true)
			if err != nil {
				return err
			}
			if on {
				s.weekdays |= 1 << wd
			}
		}
		if s.from, err = r.date("start_date"); err != nil {
			return err
		}
		if s.to, err = r.date("end_date"); err != nil {
			return err
		}
		if s.to < s.from {
			return r.bad("end_date", "%d is before start_date %d", s.to, s.from)
		}
		b.services[id] = s
	}
	return nil
}

func (b *builder) timeframeList() error {
	tb, err := b.read(FileTimeframes, column{"timeframe_group_id", true}, column{"start_time", false},
		column{"end_time", false}, column{"service_id", true})
	if err != nil || tb == nil {
		return err
	}
	b.timeframes = map[string]bool{}
	type span struct {
		start, end int32
		line       int
	}
	seen := map[[2]string][]span{}
	for _, r := range tb.rows {
		group, err := r.id("timeframe_group_id", true)
		if err != nil {
			return err
		}
		sid, err := r.id("service_id", true)
		if err != nil {
			return err
		}
		svc, ok := b.services[sid]
		if !ok {
			return r.bad("service_id", "%q is not in %s", sid, FileCalendar)
		}
		start, end := int32(0), int32(24*3600)
		switch st, et := r.get("start_time"), r.get("end_time"); {
		case st == "" && et == "":
		case st == "":
			return r.bad("start_time", "empty while end_time is %q: give both or neither", et)
		case et == "":
			return r.bad("end_time", "empty while start_time is %q: give both or neither", st)
		default:
			if start, err = r.clock("start_time"); err != nil {
				return err
			}
			if end, err = r.clock("end_time"); err != nil {
				return err
			}
			if end <= start {
				return r.bad("end_time", "%s is not after start_time %s", et, st)
			}
		}
		// GTFS forbids overlapping intervals of one group and service.
		key := [2]string{group, sid}
		for _, o := range seen[key] {
			if start < o.end && o.start < end {
				return r.bad("start_time", "%s-%s overlaps line %d of the same timeframe_group_id and service_id",
					r.get("start_time"), r.get("end_time"), o.line)
			}
		}
		seen[key] = append(seen[key], span{start, end, r.line})
		b.timeframes[group] = true
		b.t.Timeframes = append(b.t.Timeframes, fare.Timeframe{Group: group, Start: start, End: end,
			Weekdays: svc.weekdays, FromDate: svc.from, ToDate: svc.to})
	}
	return nil
}

func (b *builder) riderList() error {
	tb, err := b.read(FileRiders, column{"rider_category_id", true}, column{"rider_category_name", true},
		column{"is_default_fare_category", false}, column{"eligibility_url", false})
	if err != nil || tb == nil {
		return err
	}
	b.riders = map[string]bool{}
	for _, r := range tb.rows {
		id, err := r.id("rider_category_id", true)
		if err != nil {
			return err
		}
		if b.riders[id] {
			return r.bad("rider_category_id", "%q listed twice", id)
		}
		if r.get("rider_category_name") == "" {
			return r.bad("rider_category_name", "empty: name the category")
		}
		def, err := r.flag("is_default_fare_category", false)
		if err != nil {
			return err
		}
		if def {
			if b.defRider != "" {
				return r.bad("is_default_fare_category", "a second default category (%q is one already)", b.defRider)
			}
			b.defRider = id
		}
		b.riders[id] = true
	}
	return nil
}

func (b *builder) productList() error {
	tb, err := b.read(FileProducts, column{"fare_product_id", true}, column{"fare_product_name", false},
		column{"rider_category_id", false}, column{"amount", true}, column{"currency", true})
	if err != nil {
		return err
	}
	b.products = map[string]product{}
	for _, r := range tb.rows {
		id, err := r.id("fare_product_id", true)
		if err != nil {
			return err
		}
		if _, dup := b.products[id]; dup {
			// GTFS allows one row per rider category or medium; here
			// benefits are priced by x_benefits.txt, so one row is all.
			return r.bad("fare_product_id", "%q listed twice: one row per product", id)
		}
		if rc := r.get("rider_category_id"); rc != "" && rc != b.defRider {
			return r.bad("rider_category_id", "%q: leave empty or name the default category; benefit prices come from %s",
				rc, FileBenefits)
		}
		kop, _, err := r.amount("amount", true)
		if err != nil {
			return err
		}
		if c := r.get("currency"); c != Currency {
			return r.bad("currency", "%q: the tariff's currency is %s", c, Currency)
		}
		b.products[id] = product{amount: kop, line: r.line}
	}
	return nil
}

// productRef looks up the product named in column col; a leg or pass
// product must not pay the rider.
func (b *builder) productRef(r row, col string, nonNegative bool) (string, int64, error) {
	id, err := r.id(col, true)
	if err != nil {
		return "", 0, err
	}
	p, ok := b.products[id]
	if !ok {
		return "", 0, r.bad(col, "%q is not in %s", id, FileProducts)
	}
	if nonNegative && p.amount < 0 {
		return "", 0, r.bad(col, "%q costs %s: a negative amount fits only a transfer of fare_transfer_type 1",
			id, kopString(p.amount))
	}
	return id, p.amount, nil
}

func (b *builder) networkRef(r row, col string, required bool) (string, error) {
	id, err := r.id(col, required)
	if err != nil || id == "" {
		return id, err
	}
	if !b.networks[id] {
		return "", r.bad(col, "%q is not in %s", id, FileNetworks)
	}
	return id, nil
}

func (b *builder) carriers() error {
	tb, err := b.read(FileCarriers, column{"carrier_id", true}, column{"carrier_name", false},
		column{"carrier_code", true}, column{"carrier_group", true}, column{"network_id", true})
	if err != nil {
		return err
	}
	if len(tb.rows) == 0 {
		return fileErr(FileCarriers, "no carrier: list at least one")
	}
	b.t.Carriers = map[string]fare.Carrier{}
	codes := map[int64]string{}
	for _, r := range tb.rows {
		id, err := r.id("carrier_id", true)
		if err != nil {
			return err
		}
		if _, dup := b.t.Carriers[id]; dup {
			return r.bad("carrier_id", "%q listed twice", id)
		}
		code, err := r.integer("carrier_code", 1, 65535, true, 0)
		if err != nil {
			return err
		}
		if other, dup := codes[code]; dup {
			return r.bad("carrier_code", "%d is %q's code already", code, other)
		}
		codes[code] = id
		group, err := r.integer("carrier_group", 0, 15, true, 0)
		if err != nil {
			return err
		}
		network, err := b.networkRef(r, "network_id", true)
		if err != nil {
			return err
		}
		b.groups[group] = true
		b.noteNetwork(network, FileCarriers, r.line)
		b.t.Carriers[id] = fare.Carrier{ID: id, Code: uint16(code), Group: int(group), Network: network}
	}
	return nil
}

func (b *builder) noteNetwork(network, file string, line int) {
	b.netUses = append(b.netUses, netUse{network, file, line})
}

func (b *builder) routes() error {
	tb, err := b.read(FileRoutes, column{"carrier_id", true}, column{"route_id", true},
		column{"route_code", true}, column{"route_type", true}, column{"network_id", true})
	if err != nil || tb == nil {
		return err
	}
	for _, r := range tb.rows {
		cid, err := r.id("carrier_id", true)
		if err != nil {
			return err
		}
		c, ok := b.t.Carriers[cid]
		if !ok {
			return r.bad("carrier_id", "%q is not in %s", cid, FileCarriers)
		}
		rid, err := r.id("route_id", true)
		if err != nil {
			return err
		}
		code, err := r.integer("route_code", 1, 65535, true, 0)
		if err != nil {
			return err
		}
		// GTFS route types: 0..12 basic, 100..1799 extended.
		rt, err := r.integer("route_type", 0, 1799, true, 0)
		if err != nil {
			return err
		}
		if rt > 12 && rt < 100 {
			return r.bad("route_type", "%d is not a GTFS route type (0..12 or 100..1799)", rt)
		}
		network, err := b.networkRef(r, "network_id", true)
		if err != nil {
			return err
		}
		for _, o := range c.Routes {
			if o.ID == rid {
				return r.bad("route_id", "%q of %q listed twice", rid, cid)
			}
			if int64(o.Code) == code {
				return r.bad("route_code", "%d is route %q's code already", code, o.ID)
			}
		}
		b.noteNetwork(network, FileRoutes, r.line)
		c.Routes = append(c.Routes, fare.Route{ID: rid, Code: uint16(code), Network: network})
		b.t.Carriers[cid] = c
	}
	return nil
}

func (b *builder) legRules() error {
	tb, err := b.read(FileLegRules, column{"leg_group_id", false}, column{"network_id", false},
		column{"from_timeframe_group_id", false}, column{"fare_product_id", true}, column{"rule_priority", false})
	if err != nil {
		return err
	}
	if len(tb.rows) == 0 {
		return fileErr(FileLegRules, "no rule: nothing could be priced")
	}
	b.legGroups = map[string]bool{}
	for _, r := range tb.rows {
		group, err := r.id("leg_group_id", false)
		if err != nil {
			return err
		}
		network, err := b.networkRef(r, "network_id", false)
		if err != nil {
			return err
		}
		tf, err := r.id("from_timeframe_group_id", false)
		if err != nil {
			return err
		}
		if tf != "" && !b.timeframes[tf] {
			return r.bad("from_timeframe_group_id", "%q is not in %s", tf, FileTimeframes)
		}
		pid, kop, err := b.productRef(r, "fare_product_id", true)
		if err != nil {
			return err
		}
		prio, err := r.integer("rule_priority", 0, 1_000_000, false, 0)
		if err != nil {
			return err
		}
		if group != "" {
			b.legGroups[group] = true
		}
		b.t.Legs = append(b.t.Legs, fare.LegRule{LegGroup: group, Network: network, Timeframe: tf,
			Product: pid, FareKop: kop, Priority: int(prio)})
	}
	return nil
}

// coverage checks that every network a carrier or route runs in has a
// leg rule: otherwise its validators would deny every ride.
func (b *builder) coverage() error {
	for _, u := range b.netUses {
		if !slices.ContainsFunc(b.t.Legs, func(l fare.LegRule) bool { return l.Network == "" || l.Network == u.network }) {
			return &Error{File: u.file, Line: u.line, Field: "network_id",
				Msg: fmt.Sprintf("%q has no rule in %s: its rides could not be priced", u.network, FileLegRules)}
		}
	}
	return nil
}

func (b *builder) transferRules() error {
	tb, err := b.read(FileTransferRules, column{"from_leg_group_id", false}, column{"to_leg_group_id", false},
		column{"transfer_count", false}, column{"duration_limit", true}, column{"duration_limit_type", true},
		column{"fare_transfer_type", true}, column{"fare_product_id", false})
	if err != nil || tb == nil {
		return err
	}
	pairs := map[[2]string]int{}
	for _, r := range tb.rows {
		var from, to string
		for _, g := range []struct {
			col string
			dst *string
		}{{"from_leg_group_id", &from}, {"to_leg_group_id", &to}} {
			id, err := r.id(g.col, false)
			if err != nil {
				return err
			}
			if id != "" && !b.legGroups[id] {
				return r.bad(g.col, "%q is no leg_group_id of %s", id, FileLegRules)
			}
			*g.dst = id
		}
		if line, dup := pairs[[2]string{from, to}]; dup {
			return r.bad("to_leg_group_id", "the pair %q to %q has a rule at line %d already", from, to, line)
		}
		pairs[[2]string{from, to}] = r.line
		chain := false
		switch tc := r.get("transfer_count"); {
		case from != to && tc != "":
			return r.bad("transfer_count", "%q: GTFS allows it only between equal leg groups", tc)
		case from == to && tc == "":
			return r.bad("transfer_count", "empty: between equal leg groups give -1 (chains allowed) or 1")
		case tc == "-1":
			chain = true
		case tc == "1", tc == "":
		default:
			return r.bad("transfer_count", "%q: a validator sees only whether the last ride was a transfer, so want -1 or 1", tc)
		}
		limit, err := r.integer("duration_limit", 1, 86400, true, 0)
		if err != nil {
			return err
		}
		if v := r.get("duration_limit_type"); v != "1" {
			return r.bad("duration_limit_type", "%q: want 1 (boarding to boarding), the only times a validator knows", v)
		}
		typ, err := r.integer("fare_transfer_type", 0, 2, true, 0)
		if err != nil {
			return err
		}
		if typ == 2 {
			return r.bad("fare_transfer_type", "2 is not supported: a validator knows what the last ride charged, not the journey's total; use 0 or 1")
		}
		var pid string
		var kop int64
		if r.get("fare_product_id") != "" {
			if pid, kop, err = b.productRef(r, "fare_product_id", false); err != nil {
				return err
			}
		}
		if typ == 0 && kop < 0 {
			return r.bad("fare_product_id", "%q costs %s: with fare_transfer_type 0 the transfer ride costs the product's amount, which cannot be negative",
				pid, kopString(kop))
		}
		b.t.Transfers = append(b.t.Transfers, fare.TransferRule{From: from, To: to,
			Within: time.Duration(limit) * time.Second, Chain: chain, Type: fare.TransferType(typ), Product: pid, AmountKop: kop})
	}
	return nil
}

func (b *builder) benefits() error {
	tb, err := b.read(FileBenefits, column{"rider_category_id", true}, column{"card_category", true},
		column{"discount_pct", true}, column{"monthly_rides", false}, column{"funding_source", true},
		column{"compensation_amount", false}, column{"network_ids", false}, column{"carrier_ids", false})
	if err != nil || tb == nil {
		return err
	}
	if b.riders == nil {
		return fileErr(FileBenefits, "needs %s for its rider_category_id", FileRiders)
	}
	b.t.Categories = map[string]fare.Category{}
	usedRider := map[string]int{}
	for _, r := range tb.rows {
		rider, err := r.id("rider_category_id", true)
		if err != nil {
			return err
		}
		switch line, dup := usedRider[rider]; {
		case !b.riders[rider]:
			return r.bad("rider_category_id", "%q is not in %s", rider, FileRiders)
		case rider == b.defRider:
			return r.bad("rider_category_id", "%q is the default category, which pays the full fare", rider)
		case dup:
			return r.bad("rider_category_id", "%q has a benefit at line %d already", rider, line)
		}
		usedRider[rider] = r.line
		n, err := r.integer("card_category", 1, 65535, true, 0)
		if err != nil {
			return err
		}
		code := strconv.FormatInt(n, 10)
		if _, dup := b.t.Categories[code]; dup {
			return r.bad("card_category", "%s listed twice", code)
		}
		pct, err := r.integer("discount_pct", 0, 100, true, 0)
		if err != nil {
			return err
		}
		// A card slot's limit is one byte.
		rides, err := r.integer("monthly_rides", 0, 255, false, 0)
		if err != nil {
			return err
		}
		funding := r.get("funding_source")
		if funding != fare.FundingCity && funding != fare.FundingState {
			return r.bad("funding_source", "%q: want %s or %s", funding, fare.FundingCity, fare.FundingState)
		}
		comp, fixed, err := r.amount("compensation_amount", false)
		if err != nil {
			return err
		}
		if comp < 0 {
			return r.bad("compensation_amount", "%s: a carrier is never charged for a benefit ride", r.get("compensation_amount"))
		}
		networks, err := r.ids("network_ids")
		if err != nil {
			return err
		}
		for _, n := range networks {
			if !b.networks[n] {
				return r.bad("network_ids", "%q is not in %s", n, FileNetworks)
			}
		}
		carriers, err := r.ids("carrier_ids")
		if err != nil {
			return err
		}
		for _, c := range carriers {
			if _, ok := b.t.Carriers[c]; !ok {
				return r.bad("carrier_ids", "%q is not in %s", c, FileCarriers)
			}
		}
		b.t.Categories[code] = fare.Category{Code: code, Rider: rider, DiscountPct: pct, Funding: funding,
			MonthlyRides: int(rides), FixedCompensation: fixed, CompensationKop: comp, Networks: networks, Carriers: carriers}
	}
	return nil
}

func (b *builder) passes() error {
	tb, err := b.read(FilePasses, column{"pass_code", true}, column{"fare_product_id", true},
		column{"duration_days", true}, column{"carrier_groups", true})
	if err != nil || tb == nil {
		return err
	}
	b.t.Passes = map[uint16]fare.PassProduct{}
	for _, r := range tb.rows {
		code, err := r.integer("pass_code", 1, 65535, true, 0)
		if err != nil {
			return err
		}
		if _, dup := b.t.Passes[uint16(code)]; dup {
			return r.bad("pass_code", "%d listed twice", code)
		}
		pid, kop, err := b.productRef(r, "fare_product_id", true)
		if err != nil {
			return err
		}
		days, err := r.integer("duration_days", 1, 366, true, 0)
		if err != nil {
			return err
		}
		groups, err := b.carrierGroups(r)
		if err != nil {
			return err
		}
		b.t.Passes[uint16(code)] = fare.PassProduct{Code: uint16(code), Product: pid, PriceKop: kop, Days: int(days), Groups: groups}
	}
	return nil
}

// carrierGroups reads "all" or a space-separated list of carrier groups
// that x_carriers.txt uses.
func (b *builder) carrierGroups(r row) (uint16, error) {
	const col = "carrier_groups"
	if r.get(col) == "all" {
		return fare.AllGroups, nil
	}
	list, err := r.ids(col)
	if err != nil {
		return 0, err
	}
	if len(list) == 0 {
		return 0, r.bad(col, "empty: want all or carrier groups such as 0 1")
	}
	var set uint16
	for _, s := range list {
		g, err := strconv.Atoi(s)
		if err != nil || g < 0 || g > 15 || strconv.Itoa(g) != s {
			return 0, r.bad(col, "%q is not a carrier group 0..15", s)
		}
		if !b.groups[g] {
			return 0, r.bad(col, "group %d has no carrier in %s", g, FileCarriers)
		}
		set |= 1 << g
	}
	return set, nil
}

// kopString formats kopiyky as an amount ("-5.00").
func kopString(k int64) string {
	sign := ""
	if k < 0 {
		sign, k = "-", -k
	}
	return fmt.Sprintf("%s%d.%02d", sign, k/100, k%100)
}
