package fareref_test

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/validator/cardtx"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/fareref"
	"github.com/citycard/transit/validator/tariff"
)

// tariffFiles writes t in FORMAT.md's file form, the way a city would
// publish it; tariff.Parse of the result must give t back
// (TestGeneratedTariffsAreFiles). It fails on a tariff the files cannot
// express, such as one product id with two amounts.
func tariffFiles(t *fare.Tariff) (map[string]string, error) {
	files := map[string]string{}
	var b strings.Builder
	row := func(cols ...string) { b.WriteString(strings.Join(cols, ",") + "\n") }
	done := func(name string) { files[name] = b.String(); b.Reset() }

	zone := "Europe/Kyiv"
	if t.Location != nil {
		zone = t.Location.String()
	}
	row("version", "currency", "timezone", "passback_seconds")
	row(strconv.FormatUint(uint64(t.Version), 10), "UAH", zone, strconv.Itoa(int(t.Passback/time.Second)))
	done(tariff.FileTariff)

	networks := map[string]bool{}
	carrierIDs := slices.Sorted(maps.Keys(t.Carriers))
	for _, id := range carrierIDs {
		c := t.Carriers[id]
		networks[c.Network] = true
		for _, r := range c.Routes {
			networks[r.Network] = true
		}
	}
	for _, l := range t.Legs {
		if l.Network != "" {
			networks[l.Network] = true
		}
	}
	for _, c := range t.Categories {
		for _, n := range c.Networks {
			networks[n] = true
		}
	}
	row("network_id")
	for _, n := range slices.Sorted(maps.Keys(networks)) {
		row(n)
	}
	done(tariff.FileNetworks)

	row("carrier_id", "carrier_code", "carrier_group", "network_id")
	for _, id := range carrierIDs {
		c := t.Carriers[id]
		row(id, strconv.Itoa(int(c.Code)), strconv.Itoa(c.Group), c.Network)
	}
	done(tariff.FileCarriers)
	routes := false
	row("carrier_id", "route_id", "route_code", "route_type", "network_id")
	for _, id := range carrierIDs {
		for _, r := range t.Carriers[id].Routes {
			row(id, r.ID, strconv.Itoa(int(r.Code)), "3", r.Network)
			routes = true
		}
	}
	if routes {
		done(tariff.FileRoutes)
	}
	b.Reset()

	// Every timeframe row gets a calendar of its own.
	if len(t.Timeframes) > 0 {
		row("service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "start_date", "end_date")
		for i, tf := range t.Timeframes {
			cols := []string{fmt.Sprintf("s%d", i)}
			for _, wd := range []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday} {
				cols = append(cols, strconv.Itoa(int(tf.Weekdays>>wd&1)))
			}
			if tf.FromDate == 0 || tf.ToDate == 0 {
				return nil, fmt.Errorf("timeframe %d: open date range, which calendar.txt cannot write", i)
			}
			cols = append(cols, strconv.Itoa(int(tf.FromDate)), strconv.Itoa(int(tf.ToDate)))
			row(cols...)
		}
		done(tariff.FileCalendar)
		row("timeframe_group_id", "start_time", "end_time", "service_id")
		for i, tf := range t.Timeframes {
			row(tf.Group, clock(tf.Start), clock(tf.End), fmt.Sprintf("s%d", i))
		}
		done(tariff.FileTimeframes)
	}

	products := map[string]int64{}
	addProduct := func(id string, kop int64) error {
		if old, ok := products[id]; ok && old != kop {
			return fmt.Errorf("product %s costs %d and %d", id, old, kop)
		}
		products[id] = kop
		return nil
	}
	for _, l := range t.Legs {
		if err := addProduct(l.Product, l.FareKop); err != nil {
			return nil, err
		}
	}
	for _, r := range t.Transfers {
		if r.Product == "" {
			if r.AmountKop != 0 {
				return nil, fmt.Errorf("transfer without a product costs %d", r.AmountKop)
			}
			continue
		}
		if err := addProduct(r.Product, r.AmountKop); err != nil {
			return nil, err
		}
	}
	for _, p := range t.Passes {
		if err := addProduct(p.Product, p.PriceKop); err != nil {
			return nil, err
		}
	}
	row("fare_product_id", "amount", "currency")
	for _, id := range slices.Sorted(maps.Keys(products)) {
		row(id, amount(products[id]), "UAH")
	}
	done(tariff.FileProducts)

	row("leg_group_id", "network_id", "from_timeframe_group_id", "fare_product_id", "rule_priority")
	for _, l := range t.Legs {
		row(l.LegGroup, l.Network, l.Timeframe, l.Product, strconv.Itoa(l.Priority))
	}
	done(tariff.FileLegRules)

	if len(t.Transfers) > 0 {
		row("from_leg_group_id", "to_leg_group_id", "transfer_count", "duration_limit", "duration_limit_type", "fare_transfer_type", "fare_product_id")
		for _, r := range t.Transfers {
			count := ""
			if r.From == r.To {
				count = "1"
				if r.Chain {
					count = "-1"
				}
			} else if r.Chain {
				return nil, fmt.Errorf("transfer %q to %q chains between different groups", r.From, r.To)
			}
			row(r.From, r.To, count, strconv.Itoa(int(r.Within/time.Second)), "1", strconv.Itoa(int(r.Type)), r.Product)
		}
		done(tariff.FileTransferRules)
	}

	if len(t.Categories) > 0 {
		codes := slices.SortedFunc(maps.Keys(t.Categories), func(a, b string) int {
			x, _ := strconv.Atoi(a)
			y, _ := strconv.Atoi(b)
			return x - y
		})
		row("rider_category_id", "rider_category_name", "is_default_fare_category")
		row("adult", "Full fare", "1")
		for _, k := range codes {
			row(t.Categories[k].Rider, "Rider "+k, "0")
		}
		done(tariff.FileRiders)
		row("rider_category_id", "card_category", "discount_pct", "monthly_rides", "funding_source", "compensation_amount", "network_ids", "carrier_ids")
		for _, k := range codes {
			c := t.Categories[k]
			comp := ""
			if c.FixedCompensation {
				comp = amount(c.CompensationKop)
			}
			row(c.Rider, k, strconv.FormatInt(c.DiscountPct, 10), strconv.Itoa(c.MonthlyRides), c.Funding, comp,
				strings.Join(c.Networks, " "), strings.Join(c.Carriers, " "))
		}
		done(tariff.FileBenefits)
	}

	if len(t.Passes) > 0 {
		row("pass_code", "fare_product_id", "duration_days", "carrier_groups")
		for _, code := range slices.Sorted(maps.Keys(t.Passes)) {
			p := t.Passes[code]
			groups := "all"
			if p.Groups != fare.AllGroups {
				var gs []string
				for g := range 16 {
					if p.Groups&(1<<g) != 0 {
						gs = append(gs, strconv.Itoa(g))
					}
				}
				groups = strings.Join(gs, " ")
			}
			row(strconv.Itoa(int(code)), p.Product, strconv.Itoa(p.Days), groups)
		}
		done(tariff.FilePasses)
	}
	return files, nil
}

func zoneOf(t *fare.Tariff) *time.Location {
	if t.Location == nil {
		return time.UTC
	}
	return t.Location
}

func clock(secs int32) string {
	return fmt.Sprintf("%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
}

func amount(kop int64) string {
	sign := ""
	if kop < 0 {
		sign, kop = "-", -kop
	}
	return fmt.Sprintf("%s%d.%02d", sign, kop/100, kop%100)
}

// parseFiles reads a tariff from its files.
func parseFiles(files map[string]string) (*fare.Tariff, error) {
	fs := fstest.MapFS{}
	for name, data := range files {
		fs[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return tariff.Parse(fs)
}

// sameTariff compares two tariffs as data: the zone by name, and empty
// lists equal to none.
func sameTariff(a, b *fare.Tariff) bool {
	return reflect.DeepEqual(canonical(a), canonical(b))
}

func canonical(t *fare.Tariff) fare.Tariff {
	c := *t
	c.Location = nil
	c.Carriers = maps.Clone(t.Carriers)
	for id, cr := range c.Carriers {
		if len(cr.Routes) == 0 {
			cr.Routes = nil
		}
		c.Carriers[id] = cr
	}
	c.Categories = maps.Clone(t.Categories)
	for k, cat := range c.Categories {
		if len(cat.Networks) == 0 {
			cat.Networks = nil
		}
		if len(cat.Carriers) == 0 {
			cat.Carriers = nil
		}
		c.Categories[k] = cat
	}
	if len(c.Categories) == 0 {
		c.Categories = nil
	}
	if len(c.Passes) == 0 {
		c.Passes = nil
	}
	if len(c.Timeframes) == 0 {
		c.Timeframes = nil
	}
	if len(c.Transfers) == 0 {
		c.Transfers = nil
	}
	return c
}

// jsonCase is a case as the corpus keeps it (testdata/corpus/*.json): the
// tariff in its file form, the card with readable dates, the taps in
// local time with their offsets.
type jsonCase struct {
	// Note says what the case found or checks.
	Note string `json:"note"`
	// Open names a disagreement reported to the lead and not fixed yet:
	// the validator must still disagree, and the day it agrees the test
	// says to drop the mark.
	Open   string            `json:"open,omitempty"`
	Tariff map[string]string `json:"tariff"`
	Card   jsonCard          `json:"card"`
	// Fleet maps device numbers to vehicles.
	Fleet map[string]string `json:"fleet,omitempty"`
	Taps  []jsonTap         `json:"taps"`
}

type jsonCard struct {
	Blocked      bool              `json:"blocked,omitempty"`
	Expires      string            `json:"expires"`
	Entitlements []jsonEntitlement `json:"entitlements,omitempty"`
	Passes       []jsonPass        `json:"passes,omitempty"`
	PurseKop     int64             `json:"purse_kop"`
	Prev         *jsonRecord       `json:"prev,omitempty"`
}

type jsonEntitlement struct {
	Slot     int    `json:"slot"`
	Category uint16 `json:"category"`
	From     string `json:"from"`
	To       string `json:"to"`
	Limit    uint8  `json:"limit,omitempty"`
	Funding  string `json:"funding"`
}

type jsonPass struct {
	Slot     int    `json:"slot"`
	Product  uint16 `json:"product"`
	From     string `json:"from"`
	To       string `json:"to"`
	Carriers uint16 `json:"carriers"`
}

type jsonRecord struct {
	Time    string      `json:"time"`
	Device  uint32      `json:"device"`
	Carrier uint16      `json:"carrier"`
	Route   uint16      `json:"route"`
	Product string      `json:"product"`
	Counts  []jsonCount `json:"counts,omitempty"`
}

type jsonCount struct {
	Slot     int    `json:"slot"`
	Category uint16 `json:"category"`
	Month    string `json:"month"` // YYYY-MM
	Used     uint8  `json:"used"`
}

type jsonTap struct {
	Time        string `json:"time"` // RFC 3339 with milliseconds, local
	Device      uint32 `json:"device"`
	Carrier     string `json:"carrier"`
	Route       string `json:"route"`
	CarrierCode uint16 `json:"carrier_code"`
	RouteCode   uint16 `json:"route_code"`
	Listing     string `json:"listing,omitempty"` // "listed", "benefit-revoked"
	Torn        bool   `json:"torn,omitempty"`
	// Want is the model's decision, as FORMAT.md gives it
	// (decisionString).
	Want string `json:"want,omitempty"`
}

const (
	dateLayout = "2006-01-02"
	timeLayout = "2006-01-02T15:04:05.000Z07:00"
)

var listingNames = map[fareref.Listing]string{fareref.Listed: "listed", fareref.BenefitRevoked: "benefit-revoked"}

func toJSON(c *diffCase, note string) (*jsonCase, error) {
	files, err := tariffFiles(c.Tariff)
	if err != nil {
		return nil, err
	}
	day := func(d card.Date) string { return d.Time().Format(dateLayout) }
	ct := c.Contract
	jc := &jsonCase{Note: note, Tariff: files, Card: jsonCard{Blocked: ct.Status == card.StatusBlocked,
		Expires: day(ct.Expires), PurseKop: c.PurseKop}}
	for i, e := range ct.Entitlements {
		if !e.Empty() {
			jc.Card.Entitlements = append(jc.Card.Entitlements, jsonEntitlement{Slot: i, Category: e.Category,
				From: day(e.ValidFrom), To: day(e.ValidTo), Limit: e.Limit, Funding: e.Funding.String()})
		}
	}
	for i, p := range ct.Passes {
		if !p.Empty() {
			jc.Card.Passes = append(jc.Card.Passes, jsonPass{Slot: i, Product: p.Product, From: day(p.ValidFrom),
				To: day(p.ValidTo), Carriers: p.Carriers})
		}
	}
	if p := c.Prev; p != nil {
		jr := &jsonRecord{Time: p.Time.Time().In(zoneOf(c.Tariff)).Format(timeLayout), Device: p.Device, Carrier: p.Carrier,
			Route: p.Route, Product: p.Product.String()}
		for i, n := range p.Counts {
			if n != (card.Counter{}) {
				jr.Counts = append(jr.Counts, jsonCount{Slot: i, Category: n.Category,
					Month: fmt.Sprintf("%04d-%02d", n.Month.Year(), int(n.Month.Month())), Used: n.Used})
			}
		}
		jc.Card.Prev = jr
	}
	if len(c.Fleet) > 0 {
		jc.Fleet = map[string]string{}
		for d, v := range c.Fleet {
			jc.Fleet[strconv.FormatUint(uint64(d), 10)] = v
		}
	}
	for _, tp := range c.Taps {
		jc.Taps = append(jc.Taps, jsonTap{Time: tp.Time.In(zoneOf(c.Tariff)).Format(timeLayout), Device: tp.Device,
			Carrier: tp.Carrier, Route: tp.Route, CarrierCode: tp.CarrierCode, RouteCode: tp.RouteCode,
			Listing: listingNames[tp.Listing], Torn: tp.Torn})
	}
	return jc, nil
}

func fromJSON(jc *jsonCase) (*diffCase, error) {
	t, err := parseFiles(jc.Tariff)
	if err != nil {
		return nil, err
	}
	date := func(s string) (card.Date, error) {
		d, err := time.Parse(dateLayout, s)
		if err != nil {
			return 0, err
		}
		return card.DateOf(d)
	}
	c := &diffCase{Tariff: t, PurseKop: jc.Card.PurseKop}
	ct := card.Contract{KeyVersion: 1, Status: card.StatusActive, Number: cardNumber}
	if jc.Card.Blocked {
		ct.Status = card.StatusBlocked
	}
	if ct.Expires, err = date(jc.Card.Expires); err != nil {
		return nil, err
	}
	for _, e := range jc.Card.Entitlements {
		ce := card.Entitlement{Category: e.Category, Limit: e.Limit, Funding: card.FundingCity}
		if e.Funding == "state" {
			ce.Funding = card.FundingState
		}
		if ce.ValidFrom, err = date(e.From); err != nil {
			return nil, err
		}
		if ce.ValidTo, err = date(e.To); err != nil {
			return nil, err
		}
		ct.Entitlements[e.Slot] = ce
	}
	for _, p := range jc.Card.Passes {
		cp := card.Pass{Product: p.Product, Carriers: p.Carriers}
		if cp.ValidFrom, err = date(p.From); err != nil {
			return nil, err
		}
		if cp.ValidTo, err = date(p.To); err != nil {
			return nil, err
		}
		ct.Passes[p.Slot] = cp
	}
	if err := ct.Validate(); err != nil {
		return nil, err
	}
	c.Contract = ct
	if p := jc.Card.Prev; p != nil {
		at, err := time.Parse(timeLayout, p.Time)
		if err != nil {
			return nil, err
		}
		st, err := card.StampOf(at)
		if err != nil {
			return nil, err
		}
		rec := card.TapRecord{Time: st, Device: p.Device, Seq: 7, Carrier: p.Carrier, Route: p.Route,
			Result: card.ResultAccepted, Slot: card.NoSlot}
		for _, pr := range []card.Product{card.ProductPurse, card.ProductPass, card.ProductBenefit, card.ProductTransfer} {
			if pr.String() == p.Product {
				rec.Product = pr
			}
		}
		for _, n := range p.Counts {
			var y, m int
			if _, err := fmt.Sscanf(n.Month, "%d-%d", &y, &m); err != nil {
				return nil, fmt.Errorf("count month %q: %w", n.Month, err)
			}
			mon, err := card.NewMonth(y, time.Month(m))
			if err != nil {
				return nil, err
			}
			rec.Counts[n.Slot] = card.Counter{Category: n.Category, Month: mon, Used: n.Used}
		}
		if err := rec.Validate(); err != nil {
			return nil, err
		}
		c.Prev = &rec
	}
	if len(jc.Fleet) > 0 {
		c.Fleet = cardtx.Fleet{}
		for d, v := range jc.Fleet {
			n, err := strconv.ParseUint(d, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("fleet device %q: %w", d, err)
			}
			c.Fleet[uint32(n)] = v
		}
	}
	for _, jt := range jc.Taps {
		at, err := time.Parse(timeLayout, jt.Time)
		if err != nil {
			return nil, err
		}
		tp := diffTap{Time: at.UTC(), Device: jt.Device, Carrier: jt.Carrier, Route: jt.Route,
			CarrierCode: jt.CarrierCode, RouteCode: jt.RouteCode, Torn: jt.Torn}
		for l, name := range listingNames {
			if name == jt.Listing {
				tp.Listing = l
			}
		}
		c.Taps = append(c.Taps, tp)
	}
	return c, nil
}
