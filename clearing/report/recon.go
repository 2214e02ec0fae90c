package report

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/citycard/transit/clearing/pdf"
	"github.com/citycard/transit/clearing/report/spreadsheet"
	"github.com/citycard/transit/clearing/xlsx"
)

// Names of quarantine reasons and anomaly kinds, in Ukrainian and
// English, for the documents of a reconciliation.
var (
	reasonNames = map[string][2]string{
		"malformed":      {"пошкоджений пакет", "malformed batch"},
		"unknown-device": {"невідомий пристрій", "unknown device"},
		"bad-mac":        {"хибний MAC", "bad MAC"},
		"invalid-tap":    {"неприпустимий запис", "invalid tap"},
		"tap-in-future":  {"поїздка з майбутнього", "tap in the future"},
	}
	kindNames = map[string][2]string{
		"time-backwards":       {"годинник пішов назад", "clock ran backwards"},
		"tap-after-seal":       {"поїздка пізніша за пакет", "tap after its batch was sealed"},
		"tap-long-before-seal": {"поїздка задовго до пакета", "tap long before its batch"},
		"batch-sealed-ahead":   {"годинник пристрою спішить", "device clock ahead"},
		"hotlisted-card":       {"картка в стоп-списку", "hotlisted card"},
		"cloned-card":          {"можливий клон картки", "possibly cloned card"},
	}
)

// bilingual names a code "українською / in English", or gives the code.
func bilingual(names map[string][2]string, code string) string {
	if n, ok := names[code]; ok {
		return n[0] + " / " + n[1]
	}
	return code
}

// WriteReconciliation writes r as a table, CSV, JSON, XLSX or PDF. Times
// are in r.Location (JSON keeps UTC instants).
func WriteReconciliation(w io.Writer, format string, r Reconciliation) error {
	switch format {
	case "json":
		return writeJSON(w, ReconciliationJSON(r))
	case "table":
		return reconciliationTable(w, r)
	case "csv":
		return reconciliationCSV(w, r)
	case "xlsx":
		return reconciliationXLSX(w, r)
	case "pdf":
		return reconciliationPDF(w, r)
	}
	return fmt.Errorf("reconciliation format %q: want one of %v", format, Formats)
}

func (r Reconciliation) local(t time.Time) string { return LocalTime(t, r.Location) }

func reconciliationTable(w io.Writer, r Reconciliation) error {
	fmt.Fprintf(w, "Reconciliation, %s (times in %s)\n\n", r.Period, zone(r.Location))
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
			state = "filled " + r.local(g.Closed)
		}
		fmt.Fprintf(w, "  %s %d-%d (%d taps) noticed %s, %s\n", g.Device, g.First, g.Last, g.Missing(), r.local(g.Opened), state)
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
		fmt.Fprintf(w, "  %s %s %s: %s\n", r.local(q.Received), dev, q.Reason, q.Detail)
	}
	fmt.Fprintf(w, "\nAnomalies: %d\n", len(r.Anomalies))
	for _, k := range sortedKeys(r.ByKind) {
		fmt.Fprintf(w, "  %s: %d\n", k, r.ByKind[k])
	}
	for _, a := range r.Anomalies {
		fmt.Fprintf(w, "  %s %s/%d at %s: %s\n", a.Kind, a.Device, a.Seq, r.local(a.At), a.Detail)
	}
	if r.PendingCloneChecks > 0 {
		fmt.Fprintf(w, "  %d batches of rides still wait for the cloned-card check (transit clearing serve runs it);\n"+
			"  cloned-card suspicions among them are not listed yet\n", r.PendingCloneChecks)
	}
	return nil
}

// reconciliationCSV writes one CSV of every finding, a section per row:
// device, gap, quarantine, anomaly.
func reconciliationCSV(w io.Writer, r Reconciliation) error {
	cw := csv.NewWriter(w)
	d := strconv.FormatUint
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	tm := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(zone(r.Location)).Format("2006-01-02 15:04:05")
	}
	cw.Write([]string{"period", "section", "device", "first_seq", "last_seq", "count", "duplicates", "time", "time_closed", "kind", "card", "other_device", "other_seq", "detail"}) //nolint:errcheck // checked at Flush
	row := func(cells ...string) {
		out := []string{r.Period}
		for i, c := range cells {
			if i == 1 || i == 8 || i == 10 || i == 12 { // device, kind, other device, detail: text from outside
				c = spreadsheet.Defuse(c)
			}
			out = append(out, c)
		}
		cw.Write(out) //nolint:errcheck // checked at Flush
	}
	for _, x := range r.Devices {
		row("device", x.Device, d(x.FirstSeq, 10), d(x.LastSeq, 10), n(x.Taps), n(x.Duplicates), "", "", "", "", "", "", "")
	}
	for _, g := range r.Gaps {
		closed := ""
		if !g.IsOpen() {
			closed = tm(g.Closed)
		}
		row("gap", g.Device, d(g.First, 10), d(g.Last, 10), d(g.Missing(), 10), "", tm(g.Opened), closed, "", "", "", "", "")
	}
	for _, q := range r.Quarantined {
		row("quarantine", q.Device, "", "", "", "", tm(q.Received), "", q.Reason, "", "", "", q.Detail)
	}
	for _, a := range r.Anomalies {
		other := ""
		if a.OtherSeq != 0 {
			other = d(a.OtherSeq, 10)
		}
		row("anomaly", a.Device, d(a.Seq, 10), "", "", "", tm(a.At), "", string(a.Kind), d(a.Card, 10), a.OtherDevice, other, a.Detail)
	}
	cw.Flush()
	return cw.Error()
}

func reconciliationXLSX(w io.Writer, r Reconciliation) error {
	loc := zone(r.Location)
	at := func(t time.Time) xlsx.Cell {
		if t.IsZero() {
			return xlsx.Empty()
		}
		return xlsx.Time(t.In(loc))
	}
	devices := xlsx.Sheet{Name: "Пристрої", Columns: []xlsx.Column{{Title: "Пристрій / device"}, {Title: "Поїздки / taps"},
		{Title: "Повтори / duplicates"}, {Title: "Перший номер / first seq"}, {Title: "Останній номер / last seq"}}}
	for _, x := range r.Devices {
		devices.Rows = append(devices.Rows, []xlsx.Cell{xlsx.Text(x.Device), xlsx.Int(x.Taps), xlsx.Int(x.Duplicates), xlsx.Int(int64(x.FirstSeq)), xlsx.Int(int64(x.LastSeq))})
	}
	devices.Foot = []xlsx.Cell{xlsx.Text("РАЗОМ / TOTAL"), xlsx.Int(r.Taps), xlsx.Int(r.Duplicates), xlsx.Empty(), xlsx.Empty()}
	gaps := xlsx.Sheet{Name: "Пропуски", Columns: []xlsx.Column{{Title: "Пристрій / device"}, {Title: "Перший / first"}, {Title: "Останній / last"},
		{Title: "Бракує / missing"}, {Title: "Виявлено / noticed"}, {Title: "Заповнено / filled"}}}
	for _, g := range r.Gaps {
		filled := xlsx.Empty()
		if !g.IsOpen() {
			filled = at(g.Closed)
		}
		gaps.Rows = append(gaps.Rows, []xlsx.Cell{xlsx.Text(g.Device), xlsx.Int(int64(g.First)), xlsx.Int(int64(g.Last)), xlsx.Int(int64(g.Missing())), at(g.Opened), filled})
	}
	quarantine := xlsx.Sheet{Name: "Карантин", Columns: []xlsx.Column{{Title: "Отримано / received"}, {Title: "Пристрій / device"},
		{Title: "Причина / reason"}, {Title: "Подробиці / detail", Width: 60}}}
	for _, q := range r.Quarantined {
		quarantine.Rows = append(quarantine.Rows, []xlsx.Cell{at(q.Received), xlsx.Text(q.Device), xlsx.Text(bilingual(reasonNames, q.Reason)), xlsx.Text(q.Detail)})
	}
	anomalies := xlsx.Sheet{Name: "Аномалії", Columns: []xlsx.Column{{Title: "Вид / kind"}, {Title: "Пристрій / device"}, {Title: "Номер / seq"},
		{Title: "Час / time"}, {Title: "Картка / card"}, {Title: "Інший пристрій / other device"}, {Title: "Інший номер / other seq"}, {Title: "Подробиці / detail", Width: 60}}}
	for _, a := range r.Anomalies {
		anomalies.Rows = append(anomalies.Rows, []xlsx.Cell{xlsx.Text(bilingual(kindNames, string(a.Kind))), xlsx.Text(a.Device), xlsx.Int(int64(a.Seq)),
			at(a.At), xlsx.Int(int64(a.Card)), xlsx.Text(a.OtherDevice), xlsx.Int(int64(a.OtherSeq)), xlsx.Text(a.Detail)})
	}
	about := xlsx.Sheet{Name: "Про звіт", Columns: []xlsx.Column{{Title: "Поле / field", Width: 28}, {Title: "Значення / value", Width: 60}},
		Rows: [][]xlsx.Cell{
			{xlsx.Text("Звірка / reconciliation"), xlsx.Text(r.Period)},
			{xlsx.Text("Відкриті пропуски / open gaps"), xlsx.Int(r.OpenGaps)},
			{xlsx.Text("Бракує поїздок / taps missing"), xlsx.Int(r.MissingTaps)},
			{xlsx.Text("Чекають перевірки клонів / awaiting the clone check"), xlsx.Int(r.PendingCloneChecks)},
			{xlsx.Text("Створено / created"), xlsx.Time(created(r.Created).In(loc))},
			{xlsx.Text("Часовий пояс / time zone"), xlsx.Text(loc.String())},
		}}
	return xlsx.Write(w, devices, gaps, quarantine, anomalies, about)
}

func reconciliationPDF(w io.Writer, r Reconciliation) error {
	return pdf.Write(w, ReconciliationDocument(r))
}

// ReconciliationDocument is the PDF document of r, for a caller that lays
// it out itself (pdf.WriteLayout).
func ReconciliationDocument(r Reconciliation) pdf.Document {
	doc := pdf.Document{Title: "Звірка / Reconciliation, " + r.Period, Lang: "uk", Created: created(r.Created), Landscape: true}
	add := func(b ...pdf.Block) { doc.Blocks = append(doc.Blocks, b...) }
	add(pdf.Paragraph(fmt.Sprintf("Період / period: %s. Складено / made: %s (%s). Збережено поїздок / taps stored: %d з %d пристроїв / from %d devices; повторів відкинуто / repeats ignored: %d.",
		r.Period, r.local(created(r.Created)), zone(r.Location), r.Taps, len(r.Devices), len(r.Devices), r.Duplicates)))
	add(pdf.Heading("Пристрої / Devices"))
	if len(r.Devices) == 0 {
		add(pdf.Paragraph("Поїздок цього місяця не збережено. / No taps stored this month."))
	} else {
		t := pdf.Table{Columns: []pdf.Column{{Title: "Пристрій / device", NoWrap: true}, {Title: "Поїздки / taps", Right: true},
			{Title: "Повтори / duplicates", Right: true}, {Title: "Номери / sequence", Right: true}}}
		for _, x := range r.Devices {
			t.Rows = append(t.Rows, []string{x.Device, fmt.Sprint(x.Taps), fmt.Sprint(x.Duplicates), fmt.Sprintf("%d–%d", x.FirstSeq, x.LastSeq)})
		}
		t.Foot = []string{"РАЗОМ / TOTAL", fmt.Sprint(r.Taps), fmt.Sprint(r.Duplicates), ""}
		add(t)
	}
	add(pdf.Heading("Пропуски в нумерації / Sequence gaps"),
		pdf.Paragraph(fmt.Sprintf("Відкритих / open: %d, бракує поїздок / taps missing: %d; заповнено пізніше / filled later: %d.", r.OpenGaps, r.MissingTaps, int64(len(r.Gaps))-r.OpenGaps)))
	if len(r.Gaps) > 0 {
		t := pdf.Table{Columns: []pdf.Column{{Title: "Пристрій / device", NoWrap: true}, {Title: "Номери / sequence", Right: true}, {Title: "Бракує / missing", Right: true},
			{Title: "Виявлено / noticed", NoWrap: true}, {Title: "Стан / state"}}}
		for _, g := range r.Gaps {
			state := "відкритий / open"
			if !g.IsOpen() {
				state = "заповнено / filled " + r.local(g.Closed)
			}
			t.Rows = append(t.Rows, []string{g.Device, fmt.Sprintf("%d–%d", g.First, g.Last), fmt.Sprint(g.Missing()), r.local(g.Opened), state})
		}
		add(t)
	}
	add(pdf.Heading("Пакети в карантині / Quarantined batches"),
		pdf.Paragraph(fmt.Sprintf("Отримано за %s і відкладено / received in %s and set aside: %d.", r.Period, r.Period, len(r.Quarantined))))
	if len(r.Quarantined) > 0 {
		t := pdf.Table{Columns: []pdf.Column{{Title: "Отримано / received", NoWrap: true}, {Title: "Пристрій / device"}, {Title: "Причина / reason"}, {Title: "Подробиці / detail"}}}
		for _, q := range r.Quarantined {
			dev := q.Device
			if dev == "" {
				dev = "(не розпізнано / undecodable)"
			}
			t.Rows = append(t.Rows, []string{r.local(q.Received), dev, bilingual(reasonNames, q.Reason), q.Detail})
		}
		add(t)
	}
	add(pdf.Heading("Аномалії / Anomalies"), pdf.Paragraph(fmt.Sprintf("Аномалій / anomalies: %d.", len(r.Anomalies))))
	if len(r.Anomalies) > 0 {
		t := pdf.Table{Columns: []pdf.Column{{Title: "Вид / kind"}, {Title: "Поїздка / tap", NoWrap: true}, {Title: "Час / time", NoWrap: true},
			{Title: "Картка / card", Right: true}, {Title: "Подробиці / detail"}}}
		for _, a := range r.Anomalies {
			t.Rows = append(t.Rows, []string{bilingual(kindNames, string(a.Kind)), fmt.Sprintf("%s/%d", a.Device, a.Seq), r.local(a.At), fmt.Sprint(a.Card), a.Detail})
		}
		add(t)
	}
	if r.PendingCloneChecks > 0 {
		add(pdf.Paragraph(fmt.Sprintf("Ще %d пакетів поїздок чекають на перевірку клонованих карток; підозр серед них тут ще немає. / %d batches of rides still wait for the cloned-card check; suspicions among them are not listed yet.",
			r.PendingCloneChecks, r.PendingCloneChecks)))
	}
	return doc
}
