package report

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/citycard/transit/clearing/register"
	"github.com/citycard/transit/clearing/report/spreadsheet"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/xlsx"
)

// Formats of WriteCompensation and WriteReconciliation.
var Formats = []string{"table", "csv", "json", "xlsx", "pdf"}

// WriteCompensation writes c in format: table, csv, json, xlsx or pdf. A
// PDF written here says whether the period is closed but carries no
// statement's seal; WriteCompensationPDF adds them.
func WriteCompensation(w io.Writer, format string, c Compensation) error {
	switch format {
	case "table":
		return compensationTable(w, c)
	case "csv":
		return compensationCSV(w, c)
	case "json":
		return writeJSON(w, CompensationJSON(c))
	case "xlsx":
		return compensationXLSX(w, c)
	case "pdf":
		return WriteCompensationPDF(w, c, nil)
	}
	return fmt.Errorf("report format %q: want one of %v", format, Formats)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c Compensation) lang() string {
	if c.Lang == "en" {
		return "en"
	}
	return "uk"
}

func (c Compensation) loc() *time.Location { return zone(c.Location) }

func zone(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

func created(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// column is one column of a compensation line: its header, its text
// (for a table and CSV, already defused where it comes from outside) and
// its cell.
type column struct {
	head   string // the CSV's name
	title  string // a person's, in Ukrainian and English
	text   func(store.Line) string
	cell   func(store.Line) xlsx.Cell
	right  bool
	number bool // a number the exporter formats, never defused
}

// columns returns the columns of c's lines. compact leaves out the
// adjusts column when no line has one and the name columns (a table
// shows names in the code's column), which suits a table for people but
// not a CSV or sheet read by programs.
func columns(c Compensation, compact bool) []column {
	lang := c.lang()
	str := func(head, title string, f func(store.Line) string) column {
		return column{head: head, title: title, text: f, cell: func(l store.Line) xlsx.Cell { return xlsx.Text(f(l)) }}
	}
	var cols []column
	if compact {
		cols = append(cols, str("carrier", "Перевізник / carrier", func(l store.Line) string { return l.Carrier }))
	} else {
		cols = append(cols, str("carrier", "Перевізник / carrier", func(l store.Line) string { return l.Carrier }),
			str("carrier_name", "Назва перевізника / carrier's name", func(l store.Line) string { return c.Names.CarrierName(l.Carrier) }))
	}
	if c.Detail.Category {
		// The adjusts column shows only when there is something in it:
		// most periods have no late rides of a closed one.
		if !compact || slices.ContainsFunc(c.Lines, func(l store.Line) bool { return l.Adjusts != "" }) {
			cols = append(cols, str("adjusts", "Коригує період / adjusts", func(l store.Line) string { return l.Adjusts }))
		}
		if compact {
			cols = append(cols,
				str("category", "Категорія / category", func(l store.Line) string { return categoryLabel(c.Names, lang, l.Category) }),
				str("funding", "Джерело / funding", func(l store.Line) string { return register.FundingName(lang, l.Funding) }))
		} else {
			cols = append(cols,
				str("category", "Код категорії / category code", func(l store.Line) string { return l.Category }),
				str("category_name", "Категорія / category", func(l store.Line) string { return c.Names.CategoryName(lang, l.Category) }),
				str("funding", "Код джерела / funding code", func(l store.Line) string { return l.Funding }),
				str("funding_name", "Джерело фінансування / funding", func(l store.Line) string { return register.FundingName(lang, l.Funding) }))
		}
	}
	if c.Detail.Route {
		cols = append(cols, str("route", "Маршрут / route", func(l store.Line) string { return l.Route }))
	}
	if c.Detail.Day {
		day := str("day", "День / day", func(l store.Line) string { return l.Day })
		day.cell = func(l store.Line) xlsx.Cell {
			if d, err := time.Parse("2006-01-02", l.Day); err == nil {
				return xlsx.Date(d)
			}
			return xlsx.Text(l.Day)
		}
		cols = append(cols, day)
	}
	return append(cols,
		column{head: "rides", title: "Пільгові поїздки / benefit rides", right: true, number: true,
			text: func(l store.Line) string { return strconv.FormatInt(l.Rides, 10) },
			cell: func(l store.Line) xlsx.Cell { return xlsx.Int(l.Rides) }},
		column{head: "fare_uah", title: "Тариф, грн / fare, UAH", right: true, number: true,
			text: func(l store.Line) string { return UAH(l.FareKop) },
			cell: func(l store.Line) xlsx.Cell { return xlsx.Money(l.FareKop) }},
		column{head: "compensation_uah", title: "Компенсація, грн / compensation, UAH", right: true, number: true,
			text: func(l store.Line) string { return UAH(l.CompensationKop) },
			cell: func(l store.Line) xlsx.Cell { return xlsx.Money(l.CompensationKop) }})
}

// categoryLabel is a category for a person: its name and code.
func categoryLabel(names *register.Register, lang, code string) string {
	if n := names.CategoryName(lang, code); n != code {
		return n + " (" + code + ")"
	}
	return code
}

func title(c Compensation) string {
	s := "Compensation for benefit rides, " + c.Period
	if c.Carrier != "" {
		s += ", carrier " + c.Carrier
	}
	if c.Category != "" {
		s += ", category " + c.Category
	}
	if c.Closed {
		return s + " (closed)"
	}
	return s + " (open: figures may still grow)"
}

// emptyLine says in words that a report has no lines.
func emptyLine(c Compensation) string {
	s := "No benefit rides are booked in " + c.Period
	if c.Carrier != "" {
		s += " for carrier " + c.Carrier
	}
	if c.Category != "" {
		s += " in category " + c.Category
	}
	if c.Closed {
		return s + "; the period is closed."
	}
	return s + " so far."
}

// groups splits lines into runs of one carrier, in order.
func groups(lines []store.Line) [][]store.Line {
	var out [][]store.Line
	for i, l := range lines {
		if i == 0 || lines[i-1].Carrier != l.Carrier {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], l)
	}
	return out
}

// subtotals reports whether a detailed report shows each carrier's
// subtotal: when its lines are split and there are several carriers.
func subtotals(c Compensation) bool {
	return c.Detail.Category && len(groups(c.Lines)) > 1 || c.Detail.Category && len(c.Lines) > 1
}

func compensationTable(w io.Writer, c Compensation) error {
	fmt.Fprintln(w, title(c))
	if len(c.Lines) == 0 {
		fmt.Fprintln(w, emptyLine(c))
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	cols := columns(c, true)
	for _, col := range cols {
		fmt.Fprintf(tw, "%s\t", strings.TrimSpace(col.title[strings.Index(col.title, "/")+1:]))
	}
	fmt.Fprintln(tw)
	row := func(l store.Line, label string) {
		for i, col := range cols {
			switch {
			case label != "" && i == 0:
				fmt.Fprintf(tw, "%s\t", label)
			case label != "" && !col.right:
				fmt.Fprint(tw, "\t")
			default:
				fmt.Fprintf(tw, "%s\t", col.text(l))
			}
		}
		fmt.Fprintln(tw)
	}
	for _, g := range groups(c.Lines) {
		var sub store.Line
		for _, l := range g {
			row(l, "")
			sub.Add(l)
		}
		if subtotals(c) {
			row(sub, g[0].Carrier+" subtotal")
		}
	}
	row(c.Total, "TOTAL")
	return tw.Flush()
}

func compensationCSV(w io.Writer, c Compensation) error {
	cw := csv.NewWriter(w)
	cols := columns(c, false)
	head := []string{"period"}
	for _, col := range cols {
		head = append(head, col.head)
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, l := range c.Lines {
		row := []string{c.Period}
		for _, col := range cols {
			v := col.text(l)
			if !col.number {
				v = spreadsheet.Defuse(v)
			}
			row = append(row, v)
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func compensationXLSX(w io.Writer, c Compensation) error {
	cols := columns(c, false)
	lines := xlsx.Sheet{Name: "Компенсація " + c.Period}
	for _, col := range cols {
		lines.Columns = append(lines.Columns, xlsx.Column{Title: col.title})
	}
	for _, l := range c.Lines {
		row := make([]xlsx.Cell, len(cols))
		for i, col := range cols {
			row[i] = col.cell(l)
		}
		lines.Rows = append(lines.Rows, row)
	}
	lines.Foot = make([]xlsx.Cell, len(cols))
	for i, col := range cols {
		switch {
		case i == 0:
			lines.Foot[i] = xlsx.Text("РАЗОМ / TOTAL")
		case col.right:
			lines.Foot[i] = col.cell(c.Total)
		default:
			lines.Foot[i] = xlsx.Empty()
		}
	}
	sheets := []xlsx.Sheet{lines}
	if c.Detail.Category {
		per := xlsx.Sheet{Name: "За перевізниками", Columns: []xlsx.Column{{Title: "Перевізник / carrier"}, {Title: "Назва / name"},
			{Title: "Пільгові поїздки / benefit rides"}, {Title: "Тариф, грн / fare, UAH"}, {Title: "Компенсація, грн / compensation, UAH"}}}
		for _, l := range PerCarrier(c.Lines) {
			per.Rows = append(per.Rows, []xlsx.Cell{xlsx.Text(l.Carrier), xlsx.Text(c.Names.CarrierName(l.Carrier)),
				xlsx.Int(l.Rides), xlsx.Money(l.FareKop), xlsx.Money(l.CompensationKop)})
		}
		per.Foot = []xlsx.Cell{xlsx.Text("РАЗОМ / TOTAL"), xlsx.Empty(), xlsx.Int(c.Total.Rides), xlsx.Money(c.Total.FareKop), xlsx.Money(c.Total.CompensationKop)}
		sheets = append(sheets, per)
	}
	status := "відкритий: суми ще можуть зрости / open: the figures may still grow"
	if c.Closed {
		status = "закрито: суми остаточні / closed: the figures are final"
	}
	about := xlsx.Sheet{Name: "Про звіт", Columns: []xlsx.Column{{Title: "Поле / field", Width: 24}, {Title: "Значення / value", Width: 70}},
		Rows: [][]xlsx.Cell{
			{xlsx.Text("Звіт / report"), xlsx.Text(title(c))},
			{xlsx.Text("Період / period"), xlsx.Text(c.Period)},
			{xlsx.Text("Стан / status"), xlsx.Text(status)},
			{xlsx.Text("Суми / amounts"), xlsx.Text("гривні, точні суми цілих копійок / hryvnias, exact sums of integer kopiyky")},
			{xlsx.Text("Створено / created"), xlsx.Time(created(c.Created).In(c.loc()))},
			{xlsx.Text("Часовий пояс / time zone"), xlsx.Text(c.loc().String())},
		}}
	if len(c.Lines) == 0 {
		about.Rows = append(about.Rows, []xlsx.Cell{xlsx.Text("Рядки / lines"), xlsx.Text(emptyLine(c))})
	}
	return xlsx.Write(w, append(sheets, about)...)
}

// LineJSON is a compensation line in JSON.
type LineJSON struct {
	Carrier         string `json:"carrier"`
	CarrierName     string `json:"carrier_name,omitempty"`
	Adjusts         string `json:"adjusts,omitempty"`
	Category        string `json:"category,omitempty"`
	CategoryName    string `json:"category_name,omitempty"`
	Funding         string `json:"funding,omitempty"`
	FundingName     string `json:"funding_name,omitempty"`
	Kind            string `json:"kind,omitempty"`
	Route           string `json:"route,omitempty"`
	Day             string `json:"day,omitempty"`
	Rides           int64  `json:"rides"`
	FareKop         int64  `json:"fare_kop"`
	ChargedKop      int64  `json:"charged_kop"`
	CompensationKop int64  `json:"compensation_kop"`
}

func lineJSON(l store.Line, names *register.Register, lang string) LineJSON {
	j := LineJSON{Carrier: l.Carrier, Adjusts: l.Adjusts, Category: l.Category, Funding: l.Funding, Kind: l.Kind, Route: l.Route, Day: l.Day,
		Rides: l.Rides, FareKop: l.FareKop, ChargedKop: l.ChargedKop, CompensationKop: l.CompensationKop}
	if n := names.CarrierName(l.Carrier); n != l.Carrier {
		j.CarrierName = n
	}
	if l.Category != "" {
		j.CategoryName = names.CategoryName(lang, l.Category)
	}
	if l.Funding != "" {
		j.FundingName = register.FundingName(lang, l.Funding)
	}
	return j
}

func linesJSON(ls []store.Line, names *register.Register, lang string) []LineJSON {
	out := make([]LineJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, lineJSON(l, names, lang))
	}
	return out
}

// CompensationDoc is a compensation report in JSON.
type CompensationDoc struct {
	Period          string     `json:"period"`
	Carrier         string     `json:"carrier,omitempty"`
	Category        string     `json:"category,omitempty"`
	Closed          bool       `json:"closed"`
	Lines           []LineJSON `json:"lines"`
	Rides           int64      `json:"rides"`
	FareKop         int64      `json:"fare_kop"`
	ChargedKop      int64      `json:"charged_kop"`
	CompensationKop int64      `json:"compensation_kop"`
}

// CompensationJSON returns c as its JSON document.
func CompensationJSON(c Compensation) CompensationDoc {
	return CompensationDoc{Period: c.Period, Carrier: c.Carrier, Category: c.Category, Closed: c.Closed, Lines: linesJSON(c.Lines, c.Names, c.lang()),
		Rides: c.Total.Rides, FareKop: c.Total.FareKop, ChargedKop: c.Total.ChargedKop, CompensationKop: c.Total.CompensationKop}
}

// StatementDoc is a statement in JSON. Hash and signature are hex.
type StatementDoc struct {
	Period         string     `json:"period"`
	Adjusts        string     `json:"adjusts,omitempty"`
	Status         string     `json:"status"`
	ClosedAt       *time.Time `json:"closed_at,omitempty"`
	ClosedBy       string     `json:"closed_by,omitempty"`
	ContentHash    string     `json:"content_hash,omitempty"`
	Signature      string     `json:"signature,omitempty"`
	KeyRef         string     `json:"key_ref,omitempty"`
	KeyFingerprint string     `json:"key_fingerprint,omitempty"`
	// Form is the canonical form the signature covers (clearing/statement).
	Form            int        `json:"form,omitempty"`
	Lines           []LineJSON `json:"lines"`
	Rides           int64      `json:"rides"`
	CompensationKop int64      `json:"compensation_kop"`
	// Held are the rides the statement does not pay, and why.
	Held []HeldJSON `json:"held,omitempty"`
}

// StatementJSON returns st as its JSON document.
func StatementJSON(st store.Statement) StatementDoc {
	t := st.Total()
	d := StatementDoc{Period: st.Period, Adjusts: st.Adjusts, Status: "draft", Lines: linesJSON(st.Lines, nil, "uk"),
		Rides: t.Rides, CompensationKop: t.CompensationKop, Held: heldJSON(st.Held)}
	if st.Closed {
		at := st.ClosedAt
		d.Status, d.ClosedAt = "closed", &at
		d.ContentHash, d.Signature, d.KeyRef = hex.EncodeToString(st.Hash), hex.EncodeToString(st.Signature), st.KeyRef
		d.ClosedBy, d.KeyFingerprint, d.Form = st.ClosedBy, st.KeyFingerprint, max(st.Form, 1)
	}
	return d
}

// WriteStatements writes statements as a table or JSON; the table gives
// times in loc.
func WriteStatements(w io.Writer, format string, sts []store.Statement, loc *time.Location) error {
	switch format {
	case "json":
		docs := make([]StatementDoc, 0, len(sts))
		for _, st := range sts {
			docs = append(docs, StatementJSON(st))
		}
		return writeJSON(w, docs)
	case "table":
	default:
		return fmt.Errorf("statement format %q: want table or json", format)
	}
	for i, st := range sts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		name := "Statement " + st.Period
		if st.Adjusts != "" {
			name += ", adjusting " + st.Adjusts + " (rides that arrived after it closed)"
		}
		if st.Closed {
			fmt.Fprintf(w, "%s: closed %s by %s\n  content hash %x\n  signed by %s %s: %x\n", name,
				LocalTime(st.ClosedAt, loc), orUnknown(st.ClosedBy), st.Hash, st.KeyRef, st.KeyFingerprint, st.Signature)
		} else {
			fmt.Fprintf(w, "%s: draft (the period is open)\n", name)
		}
		c := Compensation{Period: st.Period, Detail: Detail{Category: true}, Closed: st.Closed, Lines: st.Lines, Total: st.Total()}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "carrier\tcategory\tfunding\tbenefit rides\tfare, UAH\tcompensation, UAH\t")
		for _, l := range c.Lines {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t\n", l.Carrier, categoryText(l), l.Funding, l.Rides, UAH(l.FareKop), UAH(l.CompensationKop))
		}
		fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%s\t%s\t\n", c.Total.Rides, UAH(c.Total.FareKop), UAH(c.Total.CompensationKop))
		if err := tw.Flush(); err != nil {
			return err
		}
		if err := writeHeld(w, st); err != nil {
			return err
		}
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(not recorded)"
	}
	return s
}

// LocalTime writes t in loc as Ukrainian documents do: DD.MM.YYYY HH:MM
// and the zone's abbreviation (EET, EEST).
func LocalTime(t time.Time, loc *time.Location) string {
	return t.In(zone(loc)).Format("02.01.2006 15:04 MST")
}

// Date writes a "YYYY-MM-DD" day as DD.MM.YYYY.
func Date(day string) string {
	if d, err := time.Parse("2006-01-02", day); err == nil {
		return d.Format("02.01.2006")
	}
	return day
}

// UAHComma formats kopiyky as a Ukrainian document does: hryvnias in
// groups of three separated by no-break spaces, a decimal comma.
func UAHComma(kop int64) string {
	s := UAH(kop)
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteRune('\u00a0')
		}
		b.WriteRune(d)
	}
	return sign + b.String() + "," + frac
}

// ReconciliationDoc is a reconciliation report in JSON.
type ReconciliationDoc struct {
	Period      string           `json:"period"`
	Taps        int64            `json:"taps"`
	Duplicates  int64            `json:"duplicates"`
	Devices     []DeviceJSON     `json:"devices"`
	OpenGaps    int64            `json:"open_gaps"`
	MissingTaps int64            `json:"missing_taps"`
	Gaps        []GapJSON        `json:"gaps"`
	Quarantined []QuarantineJSON `json:"quarantined"`
	ByReason    map[string]int   `json:"quarantined_by_reason"`
	Anomalies   []AnomalyJSON    `json:"anomalies"`
	ByKind      map[string]int   `json:"anomalies_by_kind"`
	// PendingCloneChecks counts runs of rides not yet through the
	// cloned-card check.
	PendingCloneChecks int64 `json:"pending_clone_checks"`
}

// DeviceJSON is one device's counts.
type DeviceJSON struct {
	Device     string `json:"device"`
	Taps       int64  `json:"taps"`
	Duplicates int64  `json:"duplicates"`
	FirstSeq   uint64 `json:"first_seq"`
	LastSeq    uint64 `json:"last_seq"`
}

// GapJSON is one gap.
type GapJSON struct {
	Device  string     `json:"device"`
	First   uint64     `json:"first_seq"`
	Last    uint64     `json:"last_seq"`
	Missing uint64     `json:"missing"`
	Open    bool       `json:"open"`
	Opened  time.Time  `json:"opened"`
	Closed  *time.Time `json:"closed,omitempty"`
}

// QuarantineJSON is one quarantined batch, without its bytes.
type QuarantineJSON struct {
	Received time.Time `json:"received"`
	Device   string    `json:"device"`
	Reason   string    `json:"reason"`
	Detail   string    `json:"detail"`
}

// AnomalyJSON is one anomaly.
type AnomalyJSON struct {
	Kind        string    `json:"kind"`
	Device      string    `json:"device"`
	Seq         uint64    `json:"seq"`
	OtherDevice string    `json:"other_device,omitempty"`
	OtherSeq    uint64    `json:"other_seq,omitempty"`
	At          time.Time `json:"at"`
	Card        uint64    `json:"card"`
	Detail      string    `json:"detail"`
}

// ReconciliationJSON returns r as its JSON document. Times are instants
// with the city's offset (RFC 3339).
func ReconciliationJSON(r Reconciliation) ReconciliationDoc {
	loc := zone(r.Location)
	d := ReconciliationDoc{Period: r.Period, Taps: r.Taps, Duplicates: r.Duplicates, OpenGaps: r.OpenGaps, MissingTaps: r.MissingTaps,
		ByReason: r.ByReason, ByKind: r.ByKind, PendingCloneChecks: r.PendingCloneChecks,
		Devices: []DeviceJSON{}, Gaps: []GapJSON{}, Quarantined: []QuarantineJSON{}, Anomalies: []AnomalyJSON{}}
	for _, x := range r.Devices {
		d.Devices = append(d.Devices, DeviceJSON(x))
	}
	for _, g := range r.Gaps {
		j := GapJSON{Device: g.Device, First: g.First, Last: g.Last, Missing: g.Missing(), Open: g.IsOpen(), Opened: g.Opened.In(loc)}
		if !g.IsOpen() {
			c := g.Closed.In(loc)
			j.Closed = &c
		}
		d.Gaps = append(d.Gaps, j)
	}
	for _, q := range r.Quarantined {
		d.Quarantined = append(d.Quarantined, QuarantineJSON{q.Received.In(loc), q.Device, q.Reason, q.Detail})
	}
	for _, a := range r.Anomalies {
		d.Anomalies = append(d.Anomalies, AnomalyJSON{string(a.Kind), a.Device, a.Seq, a.OtherDevice, a.OtherSeq, a.At.In(loc), a.Card, a.Detail})
	}
	return d
}
