package report

import (
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/citycard/transit/clearing/pdf"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/xlsx"
)

// Formats of WriteCompensation.
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

// column is one column of a compensation line: its header and value.
type column struct {
	head  string
	text  func(store.Line) string
	cell  func(store.Line) xlsx.Cell
	right bool
}

// columns returns the columns of c's lines. compact leaves out the
// adjusts column when no line has one, which suits a table for people
// but not a CSV or sheet read by programs.
func columns(c Compensation, compact bool) []column {
	str := func(head string, f func(store.Line) string) column {
		return column{head: head, text: f, cell: func(l store.Line) xlsx.Cell { return xlsx.Text(f(l)) }}
	}
	cols := []column{str("carrier", func(l store.Line) string { return l.Carrier })}
	if c.Detail.Category {
		// The adjusts column shows only when there is something in it:
		// most periods have no late rides of a closed one.
		if !compact || slices.ContainsFunc(c.Lines, func(l store.Line) bool { return l.Adjusts != "" }) {
			cols = append(cols, str("adjusts", func(l store.Line) string { return l.Adjusts }))
		}
		cols = append(cols,
			str("category", func(l store.Line) string { return l.Category }),
			str("funding", func(l store.Line) string { return l.Funding }))
	}
	if c.Detail.Route {
		cols = append(cols, str("route", func(l store.Line) string { return l.Route }))
	}
	if c.Detail.Day {
		cols = append(cols, str("day", func(l store.Line) string { return l.Day }))
	}
	return append(cols,
		column{head: "benefit rides", right: true,
			text: func(l store.Line) string { return strconv.FormatInt(l.Rides, 10) },
			cell: func(l store.Line) xlsx.Cell { return xlsx.Int(l.Rides) }},
		column{head: "fare, UAH", right: true,
			text: func(l store.Line) string { return UAH(l.FareKop) },
			cell: func(l store.Line) xlsx.Cell { return xlsx.Money(l.FareKop) }},
		column{head: "compensation, UAH", right: true,
			text: func(l store.Line) string { return UAH(l.CompensationKop) },
			cell: func(l store.Line) xlsx.Cell { return xlsx.Money(l.CompensationKop) }})
}

func title(c Compensation) string {
	s := "Compensation for benefit rides, " + c.Period
	if c.Carrier != "" {
		s += ", carrier " + c.Carrier
	}
	if c.Closed {
		return s + " (closed)"
	}
	return s + " (open: figures may still grow)"
}

func compensationTable(w io.Writer, c Compensation) error {
	fmt.Fprintln(w, title(c))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	cols := columns(c, true)
	for _, col := range cols {
		fmt.Fprintf(tw, "%s\t", col.head)
	}
	fmt.Fprintln(tw)
	for _, l := range c.Lines {
		for _, col := range cols {
			fmt.Fprintf(tw, "%s\t", col.text(l))
		}
		fmt.Fprintln(tw)
	}
	for i, col := range cols {
		v := ""
		switch {
		case i == 0:
			v = "TOTAL"
		case col.right:
			v = col.text(c.Total)
		}
		fmt.Fprintf(tw, "%s\t", v)
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}

func compensationCSV(w io.Writer, c Compensation) error {
	cw := csv.NewWriter(w)
	cols := columns(c, false)
	head := []string{"period"}
	for _, col := range cols {
		head = append(head, csvHead(col.head))
	}
	if err := cw.Write(head); err != nil {
		return err
	}
	for _, l := range c.Lines {
		row := []string{c.Period}
		for _, col := range cols {
			row = append(row, col.text(l))
		}
		if err := cw.Write(row); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvHead makes a header a machine-friendly name: "benefit rides" ->
// "rides", "compensation, UAH" -> "compensation_uah".
func csvHead(h string) string {
	switch h {
	case "benefit rides":
		return "rides"
	case "fare, UAH":
		return "fare_uah"
	case "compensation, UAH":
		return "compensation_uah"
	}
	return h
}

func compensationXLSX(w io.Writer, c Compensation) error {
	cols := columns(c, false)
	head := make([]xlsx.Cell, len(cols))
	for i, col := range cols {
		head[i] = xlsx.Text(col.head)
	}
	rows := [][]xlsx.Cell{head}
	for _, l := range c.Lines {
		row := make([]xlsx.Cell, len(cols))
		for i, col := range cols {
			row[i] = col.cell(l)
		}
		rows = append(rows, row)
	}
	total := make([]xlsx.Cell, len(cols))
	for i, col := range cols {
		switch {
		case i == 0:
			total[i] = xlsx.Text("TOTAL")
		case col.right:
			total[i] = col.cell(c.Total)
		default:
			total[i] = xlsx.Text("")
		}
	}
	rows = append(rows, total)
	about := [][]xlsx.Cell{
		{xlsx.Text("report"), xlsx.Text(title(c))},
		{xlsx.Text("period"), xlsx.Text(c.Period)},
		{xlsx.Text("closed"), xlsx.Text(strconv.FormatBool(c.Closed))},
		{xlsx.Text("amounts"), xlsx.Text("hryvnias, exact sums of integer kopiyky")},
	}
	return xlsx.Write(w, xlsx.Sheet{Name: "Compensation " + c.Period, Rows: rows}, xlsx.Sheet{Name: "About", Rows: about})
}

// pdfHeads are the PDF's column heads: the city's language first, then
// the heads of the CSV and XLSX.
var pdfHeads = map[string]string{
	"carrier":           "Перевізник / carrier",
	"adjusts":           "Коригує період / adjusts",
	"category":          "Категорія / category",
	"funding":           "Джерело фінансування / funding",
	"route":             "Маршрут / route",
	"day":               "День / day",
	"benefit rides":     "Пільгові поїздки / benefit rides",
	"fare, UAH":         "Тариф, грн / fare, UAH",
	"compensation, UAH": "Компенсація, грн / compensation, UAH",
}

// WriteCompensationPDF writes c as a PDF: the lines and total of the CSV
// and XLSX, under the period, whether it is closed, and the seal of each
// of the period's statements sts (as Store.Statements returns them): a
// draft, or when it was closed, its content hash, signature and signing
// key. sts may be nil. Texts are in Ukrainian and English, since the
// document is filed and read by both the city and the carriers.
func WriteCompensationPDF(w io.Writer, c Compensation, sts []store.Statement) error {
	for _, st := range sts {
		if st.Period != c.Period {
			return fmt.Errorf("report: a statement of %s cannot go into the PDF of %s", st.Period, c.Period)
		}
	}
	doc := pdf.Document{Title: "Компенсація за пільгові поїздки / Compensation for benefit rides, " + c.Period, Lang: "uk"}
	add := func(b pdf.Block) { doc.Blocks = append(doc.Blocks, b) }
	add(pdf.Paragraph("Період / period: " + c.Period))
	if c.Carrier != "" {
		add(pdf.Paragraph("Перевізник / carrier: " + c.Carrier))
	}
	if c.Closed {
		add(pdf.Paragraph("Період закрито, суми остаточні. / The period is closed: the figures are final."))
	} else {
		add(pdf.Paragraph("Період відкритий, це чернетка: суми ще можуть зрости. / The period is open, this is a draft: the figures may still grow."))
	}
	if len(sts) > 0 {
		add(pdf.Heading("Звіти періоду / Statements of the period"))
	}
	for _, st := range sts {
		name := "Звіт / statement " + st.Period
		if st.Adjusts != "" {
			name = fmt.Sprintf("Коригування %s, враховане в %s / adjustment of %s booked in %s", st.Adjusts, st.Period, st.Adjusts, st.Period)
		}
		if !st.Closed {
			add(pdf.Paragraph(name + ": чернетка / draft"))
			continue
		}
		add(pdf.Paragraph(fmt.Sprintf("%s: закрито / closed %s\nХеш вмісту (SHA-256) / content hash: %x\nКлюч підпису / signing key: %s\nПідпис (Ed25519) / signature: %x",
			name, st.ClosedAt.UTC().Format(time.RFC3339), st.Hash, st.KeyRef, st.Signature)))
	}
	add(pdf.Heading("Рядки / Lines"))
	add(pdf.Paragraph("Суми в гривнях, точні суми цілих копійок. / Amounts in hryvnias, exact sums of integer kopiyky."))
	cols := columns(c, false)
	t := pdf.Table{Foot: make([]string, len(cols))}
	for i, col := range cols {
		head, ok := pdfHeads[col.head]
		if !ok {
			head = col.head
		}
		t.Columns = append(t.Columns, pdf.Column{Title: head, Right: col.right})
		switch {
		case i == 0:
			t.Foot[i] = "РАЗОМ / TOTAL"
		case col.right:
			t.Foot[i] = col.text(c.Total)
		}
	}
	for _, l := range c.Lines {
		row := make([]string, len(cols))
		for i, col := range cols {
			row[i] = col.text(l)
		}
		t.Rows = append(t.Rows, row)
	}
	add(t)
	return pdf.Write(w, doc)
}

// LineJSON is a compensation line in JSON.
type LineJSON struct {
	Carrier         string `json:"carrier"`
	Adjusts         string `json:"adjusts,omitempty"`
	Category        string `json:"category,omitempty"`
	Funding         string `json:"funding,omitempty"`
	Kind            string `json:"kind,omitempty"`
	Route           string `json:"route,omitempty"`
	Day             string `json:"day,omitempty"`
	Rides           int64  `json:"rides"`
	FareKop         int64  `json:"fare_kop"`
	ChargedKop      int64  `json:"charged_kop"`
	CompensationKop int64  `json:"compensation_kop"`
}

func lineJSON(l store.Line) LineJSON {
	return LineJSON{l.Carrier, l.Adjusts, l.Category, l.Funding, l.Kind, l.Route, l.Day, l.Rides, l.FareKop, l.ChargedKop, l.CompensationKop}
}

func linesJSON(ls []store.Line) []LineJSON {
	out := make([]LineJSON, 0, len(ls))
	for _, l := range ls {
		out = append(out, lineJSON(l))
	}
	return out
}

// CompensationDoc is a compensation report in JSON.
type CompensationDoc struct {
	Period          string     `json:"period"`
	Carrier         string     `json:"carrier,omitempty"`
	Closed          bool       `json:"closed"`
	Lines           []LineJSON `json:"lines"`
	Rides           int64      `json:"rides"`
	FareKop         int64      `json:"fare_kop"`
	ChargedKop      int64      `json:"charged_kop"`
	CompensationKop int64      `json:"compensation_kop"`
}

// CompensationJSON returns c as its JSON document.
func CompensationJSON(c Compensation) CompensationDoc {
	return CompensationDoc{Period: c.Period, Carrier: c.Carrier, Closed: c.Closed, Lines: linesJSON(c.Lines),
		Rides: c.Total.Rides, FareKop: c.Total.FareKop, ChargedKop: c.Total.ChargedKop, CompensationKop: c.Total.CompensationKop}
}

// StatementDoc is a statement in JSON. Hash and signature are hex.
type StatementDoc struct {
	Period          string     `json:"period"`
	Adjusts         string     `json:"adjusts,omitempty"`
	Status          string     `json:"status"`
	ClosedAt        *time.Time `json:"closed_at,omitempty"`
	ContentHash     string     `json:"content_hash,omitempty"`
	Signature       string     `json:"signature,omitempty"`
	KeyRef          string     `json:"key_ref,omitempty"`
	Lines           []LineJSON `json:"lines"`
	Rides           int64      `json:"rides"`
	CompensationKop int64      `json:"compensation_kop"`
	// Held are the rides the statement does not pay, and why.
	Held []HeldJSON `json:"held,omitempty"`
}

// StatementJSON returns st as its JSON document.
func StatementJSON(st store.Statement) StatementDoc {
	t := st.Total()
	d := StatementDoc{Period: st.Period, Adjusts: st.Adjusts, Status: "draft", Lines: linesJSON(st.Lines),
		Rides: t.Rides, CompensationKop: t.CompensationKop, Held: heldJSON(st.Held)}
	if st.Closed {
		at := st.ClosedAt
		d.Status, d.ClosedAt = "closed", &at
		d.ContentHash, d.Signature, d.KeyRef = hex.EncodeToString(st.Hash), hex.EncodeToString(st.Signature), st.KeyRef
	}
	return d
}

// WriteStatements writes statements as a table or JSON.
func WriteStatements(w io.Writer, format string, sts []store.Statement) error {
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
			fmt.Fprintf(w, "%s: closed %s\n  content hash %x\n  signed by %s: %x\n", name,
				st.ClosedAt.Format(time.RFC3339), st.Hash, st.KeyRef, st.Signature)
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

// ReconciliationJSON returns r as its JSON document.
func ReconciliationJSON(r Reconciliation) ReconciliationDoc {
	d := ReconciliationDoc{Period: r.Period, Taps: r.Taps, Duplicates: r.Duplicates, OpenGaps: r.OpenGaps, MissingTaps: r.MissingTaps,
		ByReason: r.ByReason, ByKind: r.ByKind, PendingCloneChecks: r.PendingCloneChecks,
		Devices: []DeviceJSON{}, Gaps: []GapJSON{}, Quarantined: []QuarantineJSON{}, Anomalies: []AnomalyJSON{}}
	for _, x := range r.Devices {
		d.Devices = append(d.Devices, DeviceJSON(x))
	}
	for _, g := range r.Gaps {
		j := GapJSON{Device: g.Device, First: g.First, Last: g.Last, Missing: g.Missing(), Open: g.IsOpen(), Opened: g.Opened}
		if !g.IsOpen() {
			c := g.Closed
			j.Closed = &c
		}
		d.Gaps = append(d.Gaps, j)
	}
	for _, q := range r.Quarantined {
		d.Quarantined = append(d.Quarantined, QuarantineJSON{q.Received, q.Device, q.Reason, q.Detail})
	}
	for _, a := range r.Anomalies {
		d.Anomalies = append(d.Anomalies, AnomalyJSON{string(a.Kind), a.Device, a.Seq, a.OtherDevice, a.OtherSeq, a.At, a.Card, a.Detail})
	}
	return d
}

// WriteReconciliation writes r as a table or JSON.
func WriteReconciliation(w io.Writer, format string, r Reconciliation) error {
	switch format {
	case "json":
		return writeJSON(w, ReconciliationJSON(r))
	case "table":
	default:
		return fmt.Errorf("reconciliation format %q: want table or json", format)
	}
	fmt.Fprintf(w, "Reconciliation, %s\n\n", r.Period)
	fmt.Fprintf(w, "Taps stored: %d from %d devices; repeats received and ignored: %d\n", r.Taps, len(r.Devices), r.Duplicates)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(r.Devices) > 0 {
		fmt.Fprintln(tw, "  device\ttaps\tduplicates\tsequence\t")
		for _, d := range r.Devices {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d-%d\t\n", d.Device, d.Taps, d.Duplicates, d.FirstSeq, d.LastSeq)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\nSequence gaps: %d open, %d taps missing; %d filled by late batches\n", r.OpenGaps, r.MissingTaps, int64(len(r.Gaps))-r.OpenGaps)
	for _, g := range r.Gaps {
		state := "OPEN"
		if !g.IsOpen() {
			state = "closed " + g.Closed.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  %s %d-%d (%d taps) noticed %s, %s\n", g.Device, g.First, g.Last, g.Missing(), g.Opened.Format(time.RFC3339), state)
	}
	fmt.Fprintf(w, "\nQuarantined batches received in %s: %d\n", r.Period, len(r.Quarantined))
	for _, k := range sortedKeys(r.ByReason) {
		fmt.Fprintf(w, "  %s: %d\n", k, r.ByReason[k])
	}
	for _, q := range r.Quarantined {
		dev := q.Device
		if dev == "" {
			dev = "(undecodable)"
		}
		fmt.Fprintf(w, "  %s %s %s: %s\n", q.Received.Format(time.RFC3339), dev, q.Reason, q.Detail)
	}
	fmt.Fprintf(w, "\nAnomalies: %d\n", len(r.Anomalies))
	for _, k := range sortedKeys(r.ByKind) {
		fmt.Fprintf(w, "  %s: %d\n", k, r.ByKind[k])
	}
	for _, a := range r.Anomalies {
		fmt.Fprintf(w, "  %s %s/%d: %s\n", a.Kind, a.Device, a.Seq, a.Detail)
	}
	if r.PendingCloneChecks > 0 {
		fmt.Fprintf(w, "  %d batches of rides still wait for the cloned-card check (transit clearing serve runs it);\n"+
			"  cloned-card suspicions among them are not listed yet\n", r.PendingCloneChecks)
	}
	return nil
}
