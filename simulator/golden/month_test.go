package golden

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/hotlist"
)

// dataDir is the golden month, from this package's directory.
var dataDir = filepath.Join("..", "..", "testdata", "golden")

// tariffDir is the sample city's tariff the month is priced with.
var tariffDir = filepath.Join("..", "..", "testdata", "tariff")

// zone is the city's time zone, as the tariff's x_tariff.txt names it.
const zone = "Europe/Kyiv"

// timeLayout is how the files write local times; a fraction of a second
// may follow the seconds.
const timeLayout = "2006-01-02 15:04:05"

// Schedule of the month outside the rides (README.md, "How the month
// runs").
const (
	uploadHour = 3                     // every validator in reach uploads nightly at 03:00
	closeAt    = "2026-12-01 06:00:00" // November is closed
	november   = "2026-11"
	december   = "2026-12"
)

// month is testdata/golden, read.
type month struct {
	loc      *time.Location
	cards    []*cardRow
	byCard   map[string]*cardRow
	devices  []*deviceRow
	byDevice map[string]*deviceRow
	rides    []*rideRow
	byRide   map[string]*rideRow
	hotlists []hotlistVersion
	// statements are README.md's tables by period and the period they
	// adjust ("" for the period's own).
	statements map[[2]string]statementTable
}

type cardRow struct {
	label    string
	number   card.Number
	status   card.Status
	expires  card.Date
	purseKop int64
	profile  string
	ents     [card.MaxEntitlements]card.Entitlement
	passes   [card.MaxPasses]card.Pass
	// endKop is the purse expected at the end of the month (README.md).
	endKop int64
}

type deviceRow struct {
	id          string
	number      uint32
	carrier     string
	carrierCode uint16
	route       string
	routeCode   uint16
	vehicle     string
	// online is when a validator out of reach uploads again; zero for
	// one that uploads every night.
	online time.Time
	note   string
}

type rideRow struct {
	id     string
	card   string
	at     time.Time
	device string
	// tear is the card's answered APDUs before it leaves the field (0: it
	// stays); lost says the next APDU still reaches the card but its
	// answer is lost.
	tear int
	lost bool
	want expectRow
}

// expectRow is the hand-worked outcome of one ride.
type expectRow struct {
	result, reason, product, category, funding string
	fareKop, chargedKop, owedKop               int64
	counted, clockAnomaly, benefitRevoked      bool
	committed                                  string // yes, no or unknown
	prev                                       string // ride id of the previous ride, "" for none
	step                                       int
	note                                       string
}

type hotlistVersion struct {
	version uint64
	from    time.Time
	entries []hotlist.Entry
}

// statementTable is one of README.md's statement tables.
type statementTable struct {
	lines []store.Line
	total store.Line
}

// csvFile reads a CSV file of dataDir and returns its rows as maps by the
// header's column names, refusing unknown or missing columns.
func csvFile(t *testing.T, name string, cols ...string) []map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], cols) {
		t.Fatalf("%s: header %q, want %q", name, recs[0], cols)
	}
	out := make([]map[string]string, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		m := make(map[string]string, len(cols))
		for i, c := range cols {
			m[c] = strings.TrimSpace(rec[i])
		}
		out = append(out, m)
	}
	return out
}

// kop reads an amount in hryvnias with exactly two decimals ("15.00").
func kop(s string) (int64, error) {
	whole, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) != 2 || whole == "" {
		return 0, fmt.Errorf("amount %q: want hryvnias with two decimals, e.g. 15.00", s)
	}
	w, err := strconv.ParseUint(whole, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	f, err := strconv.ParseUint(frac, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("amount %q: %w", s, err)
	}
	return int64(w)*100 + int64(f), nil
}

// uah writes kopiyky as the files do.
func uah(k int64) string { return fmt.Sprintf("%d.%02d", k/100, k%100) }

func date(s string) (card.Date, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return 0, err
	}
	return card.DateOf(d)
}

// loadMonth reads testdata/golden.
func loadMonth(t *testing.T) *month {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	m := &month{loc: loc, byCard: map[string]*cardRow{}, byDevice: map[string]*deviceRow{}, byRide: map[string]*rideRow{}}
	must := func(where string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
	}
	localTime := func(where, s string) time.Time {
		t.Helper()
		at, err := time.ParseInLocation(timeLayout, s, loc)
		must(where, err)
		return at
	}

	for _, r := range csvFile(t, "cards.csv", "card", "number", "status", "expires", "purse", "profile") {
		c := &cardRow{label: r["card"], profile: r["profile"], endKop: -1}
		where := "cards.csv " + c.label
		var err error
		c.number, err = card.ParseNumber(r["number"])
		must(where, err)
		switch r["status"] {
		case "active":
			c.status = card.StatusActive
		case "blocked":
			c.status = card.StatusBlocked
		default:
			t.Fatalf("%s: status %q", where, r["status"])
		}
		c.expires, err = date(r["expires"])
		must(where, err)
		c.purseKop, err = kop(r["purse"])
		must(where, err)
		if m.byCard[c.label] != nil {
			t.Fatalf("%s: twice", where)
		}
		m.cards = append(m.cards, c)
		m.byCard[c.label] = c
	}

	for _, r := range csvFile(t, "contracts.csv", "card", "kind", "slot", "code", "from", "to", "limit", "funding", "groups") {
		where := fmt.Sprintf("contracts.csv %s %s %s", r["card"], r["kind"], r["slot"])
		c := m.byCard[r["card"]]
		if c == nil {
			t.Fatalf("%s: no such card", where)
		}
		slot, err := strconv.Atoi(r["slot"])
		must(where, err)
		code, err := strconv.ParseUint(r["code"], 10, 16)
		must(where, err)
		from, err := date(r["from"])
		must(where, err)
		to, err := date(r["to"])
		must(where, err)
		switch r["kind"] {
		case "entitlement":
			limit, err := strconv.ParseUint(r["limit"], 10, 8)
			must(where, err)
			var f card.Funding
			switch r["funding"] {
			case "city":
				f = card.FundingCity
			case "state":
				f = card.FundingState
			default:
				t.Fatalf("%s: funding %q", where, r["funding"])
			}
			c.ents[slot] = card.Entitlement{Category: uint16(code), ValidFrom: from, ValidTo: to, Limit: uint8(limit), Funding: f}
		case "pass":
			var groups uint16
			if r["groups"] == "all" {
				groups = card.AllCarriers
			} else {
				for g := range strings.FieldsSeq(r["groups"]) {
					n, err := strconv.ParseUint(g, 10, 4)
					must(where, err)
					groups |= 1 << n
				}
			}
			c.passes[slot] = card.Pass{Product: uint16(code), ValidFrom: from, ValidTo: to, Carriers: groups}
		default:
			t.Fatalf("%s: kind %q", where, r["kind"])
		}
	}

	for _, r := range csvFile(t, "devices.csv", "device", "device_number", "carrier", "carrier_number", "route", "route_number", "vehicle", "online", "note") {
		d := &deviceRow{id: r["device"], carrier: r["carrier"], route: r["route"], vehicle: r["vehicle"], note: r["note"]}
		where := "devices.csv " + d.id
		n, err := strconv.ParseUint(r["device_number"], 10, 32)
		must(where, err)
		cc, err := strconv.ParseUint(r["carrier_number"], 10, 16)
		must(where, err)
		rc, err := strconv.ParseUint(r["route_number"], 10, 16)
		must(where, err)
		d.number, d.carrierCode, d.routeCode = uint32(n), uint16(cc), uint16(rc)
		if r["online"] != "" {
			d.online = localTime(where, r["online"])
		}
		m.devices = append(m.devices, d)
		m.byDevice[d.id] = d
	}

	for _, r := range csvFile(t, "rides.csv", "ride", "card", "time", "device", "torn") {
		rd := &rideRow{id: r["ride"], card: r["card"], device: r["device"]}
		where := "rides.csv " + rd.id
		if m.byCard[rd.card] == nil || m.byDevice[rd.device] == nil || m.byRide[rd.id] != nil {
			t.Fatalf("%s: unknown card or device, or the ride twice", where)
		}
		rd.at = localTime(where, r["time"])
		if tear := r["torn"]; tear != "" {
			n, lost := strings.CutSuffix(tear, "+lost")
			var err error
			rd.tear, err = strconv.Atoi(n)
			must(where, err)
			rd.lost = lost
		}
		m.rides = append(m.rides, rd)
		m.byRide[rd.id] = rd
	}

	exp := csvFile(t, "expected.csv", "ride", "result", "reason", "product", "category", "funding", "fare", "charged", "owed",
		"flags", "committed", "prev", "step", "note")
	if len(exp) != len(m.rides) {
		t.Fatalf("expected.csv has %d rows for %d rides", len(exp), len(m.rides))
	}
	for i, r := range exp {
		rd := m.rides[i]
		where := "expected.csv " + r["ride"]
		if r["ride"] != rd.id {
			t.Fatalf("%s: row %d is ride %s in rides.csv; keep both files in one order", where, i+1, rd.id)
		}
		e := expectRow{result: r["result"], reason: r["reason"], product: r["product"], category: r["category"], funding: r["funding"],
			committed: r["committed"], prev: r["prev"], note: r["note"]}
		var err error
		e.fareKop, err = kop(r["fare"])
		must(where, err)
		e.chargedKop, err = kop(r["charged"])
		must(where, err)
		e.owedKop, err = kop(r["owed"])
		must(where, err)
		for f := range strings.FieldsSeq(r["flags"]) {
			switch f {
			case "counted":
				e.counted = true
			case "clock_anomaly":
				e.clockAnomaly = true
			case "benefit_revoked":
				e.benefitRevoked = true
			default:
				t.Fatalf("%s: flag %q", where, f)
			}
		}
		e.step, err = strconv.Atoi(r["step"])
		must(where, err)
		if e.prev != "" && m.byRide[e.prev] == nil {
			t.Fatalf("%s: previous ride %s is no ride", where, e.prev)
		}
		rd.want = e
	}

	var cur *hotlistVersion
	for _, r := range csvFile(t, "hotlist.csv", "version", "from", "card", "reason") {
		where := "hotlist.csv version " + r["version"]
		v, err := strconv.ParseUint(r["version"], 10, 64)
		must(where, err)
		if cur == nil || cur.version != v {
			m.hotlists = append(m.hotlists, hotlistVersion{version: v, from: localTime(where, r["from"])})
			cur = &m.hotlists[len(m.hotlists)-1]
		}
		if r["card"] == "" {
			continue
		}
		c := m.byCard[r["card"]]
		if c == nil {
			t.Fatalf("%s: no card %s", where, r["card"])
		}
		reason, err := hotlist.ParseReason(r["reason"])
		must(where, err)
		cur.entries = append(cur.entries, hotlist.Entry{Card: uint64(c.number), Reason: reason})
	}

	m.readREADME(t)
	return m
}

// readREADME reads README.md's end-of-month purses and statement tables:
// each table follows a line "<!-- golden: purses -->",
// "<!-- golden: statement PERIOD -->" or
// "<!-- golden: statement PERIOD adjusts PERIOD -->".
func (m *month) readREADME(t *testing.T) {
	t.Helper()
	b, err := fs.ReadFile(os.DirFS(dataDir), "README.md")
	if err != nil {
		t.Fatal(err)
	}
	m.statements = map[[2]string]statementTable{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	var marker string
	var table [][]string
	flush := func() {
		if marker == "" {
			return
		}
		if len(table) < 2 {
			t.Fatalf("README.md: %q is not followed by a table", marker)
		}
		m.readTable(t, marker, table[1:]) // the header row goes
		marker, table = "", nil
	}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if c, ok := strings.CutPrefix(line, "<!-- golden:"); ok {
			flush()
			marker = strings.TrimSpace(strings.TrimSuffix(c, "-->"))
			continue
		}
		if marker == "" {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if len(table) > 0 {
				flush()
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.Trim(strings.TrimSpace(cells[i]), "*")
		}
		if strings.Trim(cells[0], "-: ") == "" {
			continue // the separator row
		}
		table = append(table, cells)
	}
	flush()
	for _, c := range m.cards {
		if c.endKop < 0 {
			t.Fatalf("README.md: no end-of-month purse for card %s", c.label)
		}
	}
}

func (m *month) readTable(t *testing.T, marker string, rows [][]string) {
	t.Helper()
	f := strings.Fields(marker)
	switch {
	case len(f) == 1 && f[0] == "purses":
		for _, r := range rows {
			if len(r) < 3 {
				t.Fatalf("README.md purses: row %q", r)
			}
			c := m.byCard[r[0]]
			if c == nil {
				t.Fatalf("README.md purses: no card %q", r[0])
			}
			start, err := kop(r[1])
			if err != nil || start != c.purseKop {
				t.Fatalf("README.md purses: card %s starts with %s, cards.csv says %s (%v)", r[0], r[1], uah(c.purseKop), err)
			}
			if c.endKop, err = kop(r[2]); err != nil {
				t.Fatalf("README.md purses: card %s: %v", r[0], err)
			}
		}
	case f[0] == "statement" && (len(f) == 2 || len(f) == 4 && f[2] == "adjusts"):
		key := [2]string{f[1], ""}
		if len(f) == 4 {
			key[1] = f[3]
		}
		var st statementTable
		for _, r := range rows {
			// carrier | category | benefit | funding | rides | fare | charged | owed
			if len(r) != 8 {
				t.Fatalf("README.md %s: row %q has %d cells, want 8", marker, r, len(r))
			}
			l := store.Line{Adjusts: key[1], Carrier: r[0], Category: r[1], Funding: r[3]}
			var err error
			if l.Rides, err = strconv.ParseInt(r[4], 10, 64); err != nil {
				t.Fatalf("README.md %s: row %q: rides: %v", marker, r, err)
			}
			for i, p := range []*int64{&l.FareKop, &l.ChargedKop, &l.CompensationKop} {
				if *p, err = kop(r[5+i]); err != nil {
					t.Fatalf("README.md %s: row %q: %v", marker, r, err)
				}
			}
			if strings.EqualFold(r[0], "total") {
				st.total = l
				st.total.Adjusts, st.total.Carrier, st.total.Category, st.total.Funding = "", "", "", ""
				continue
			}
			st.lines = append(st.lines, l)
		}
		m.statements[key] = st
	default:
		t.Fatalf("README.md: unknown table marker %q", marker)
	}
}
