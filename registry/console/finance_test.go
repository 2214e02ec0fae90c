package console_test

import (
	"bytes"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/citycard/transit/clearing/pdf/pdftest"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/validator/tap"
)

// element returns the element of body with id (up to its closing tag of
// the same name, not nested), or fails.
func element(t *testing.T, body, tag, id string) string {
	t.Helper()
	loc := regexp.MustCompile(`<` + tag + `\b[^>]*\bid="` + regexp.QuoteMeta(id) + `"`).FindStringIndex(body)
	if loc == nil {
		t.Fatalf("no <%s id=%q> in the page", tag, id)
	}
	start := loc[0]
	end := strings.Index(body[start:], "</"+tag+">")
	if end < 0 {
		t.Fatalf("<%s id=%q> is not closed", tag, id)
	}
	return body[start : start+end]
}

var (
	cellRE = regexp.MustCompile(`<t[hd][^>]*>(.*?)</t[hd]>`)
	rowRE  = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	tagRE  = regexp.MustCompile(`<[^>]+>`)
)

// tableRows returns the text of each cell of each row of an HTML table.
func tableRows(table string) [][]string {
	var out [][]string
	for _, r := range rowRE.FindAllStringSubmatch(table, -1) {
		var cells []string
		for _, c := range cellRE.FindAllStringSubmatch(r[1], -1) {
			cells = append(cells, html.UnescapeString(strings.TrimSpace(tagRE.ReplaceAllString(c[1], ""))))
		}
		out = append(out, cells)
	}
	return out
}

// rollup is what the roll-up says each carrier is owed in each month of
// the chart, read the way clearing/report reads it.
func (f *fixture) rollup() map[string]map[string]int64 {
	f.t.Helper()
	want := map[string]map[string]int64{}
	for _, m := range yearMonths {
		c, err := report.BuildCompensation(f.ctx, f.clr, report.Query{Period: m, Carrier: "", Detail: report.Detail{}})
		if err != nil {
			f.t.Fatal(err)
		}
		want[m] = map[string]int64{}
		for _, l := range c.Lines {
			want[m][l.Carrier] = l.CompensationKop
		}
	}
	return want
}

// TestFinanceChartMatchesRollup reads the chart of the year up to
// November back from the page, the table, each marker and the geometry of
// each line, and compares them with the roll-up.
func TestFinanceChartMatchesRollup(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.seedYear()
	want := f.rollup()
	carriers := []string{"ATP-1", "ATP-2", kyivCarrier}
	if want["2026-06"]["ATP-1"] != 0 || want["2026-03"]["ATP-1"] != 4*1500 || want["2026-11"]["ATP-2"] != 5000 {
		t.Fatalf("the fixture is not what the test expects: %v", want)
	}
	fin, _ := f.login(financeUser)
	page := fin.get("/finance?period="+period).want(t, http.StatusOK, "finance").body

	// An image with a name and a description, named in both.
	svg := element(t, page, "svg", "chart-svg")
	for _, w := range []string{`role="img"`, `aria-labelledby="chart-title" aria-describedby="chart-desc"`, `<title id="chart-title">Compensation per carrier, 2025-12 to 2026-11</title>`, `<desc id="chart-desc">`} {
		if !strings.Contains(svg, w) {
			t.Errorf("the chart lacks %s", w)
		}
	}
	desc := html.UnescapeString(element(t, svg, "desc", "chart-desc"))
	for _, c := range carriers {
		var sum int64
		for _, m := range yearMonths {
			sum += want[m][c]
		}
		if w := fmt.Sprintf("%s: %s UAH in all", c, report.UAH(sum)); !strings.Contains(desc, w) {
			t.Errorf("the description lacks %q:\n%s", w, desc)
		}
	}

	// The table: a row per month, a column per carrier, the total and the
	// state of the month.
	rows := tableRows(element(t, page, "table", "chart-table"))
	if len(rows) != 13 {
		t.Fatalf("chart table has %d rows, want a head and 12 months: %q", len(rows), rows)
	}
	if got := strings.Join(rows[0], "|"); got != "Month|ATP-1|ATP-2|"+kyivCarrier+"|Total|Period" {
		t.Errorf("chart table head %q", got)
	}
	for i, m := range yearMonths {
		r := rows[i+1]
		var total int64
		wantRow := []string{m}
		for _, c := range carriers {
			wantRow = append(wantRow, report.UAH(want[m][c]))
			total += want[m][c]
		}
		state := "open"
		if m == "2026-09" {
			state = "closed"
		}
		wantRow = append(wantRow, report.UAH(total), state)
		if strings.Join(r, "|") != strings.Join(wantRow, "|") {
			t.Errorf("month %s: row %q, want %q", m, r, wantRow)
		}
	}

	// Each series: a marker per month whose figure and tooltip are the
	// roll-up's, on a line whose heights order as the figures do.
	series := regexp.MustCompile(`(?s)<g class="series" data-carrier="([^"]+)">\s*<polyline points="([^"]+)"(.*?)</g>\s*</g>`).FindAllStringSubmatch(svg, -1)
	if len(series) != len(carriers) {
		t.Fatalf("%d series drawn, want %d", len(series), len(carriers))
	}
	markRE := regexp.MustCompile(`data-kop="(-?\d+)"><title>([^<]*)</title>`)
	for j, s := range series {
		carrier := html.UnescapeString(s[1])
		if carrier != carriers[j] {
			t.Errorf("series %d is %q, want %q", j, carrier, carriers[j])
		}
		marks := markRE.FindAllStringSubmatch(s[3], -1)
		var ys []float64
		for _, pt := range strings.Fields(s[2]) {
			_, y, _ := strings.Cut(pt, ",")
			v, err := strconv.ParseFloat(y, 64)
			if err != nil {
				t.Fatalf("point %q: %v", pt, err)
			}
			ys = append(ys, v)
		}
		if len(marks) != 12 || len(ys) != 12 {
			t.Fatalf("%s: %d markers and %d points, want 12", carrier, len(marks), len(ys))
		}
		for i, m := range yearMonths {
			kop, _ := strconv.ParseInt(marks[i][1], 10, 64)
			if kop != want[m][carrier] {
				t.Errorf("%s %s: marker of %d kop, the roll-up says %d", carrier, m, kop, want[m][carrier])
			}
			if title, w := html.UnescapeString(marks[i][2]), fmt.Sprintf("%s, %s: %s UAH", carrier, m, report.UAH(want[m][carrier])); title != w {
				t.Errorf("marker title %q, want %q", title, w)
			}
			for k, n := range yearMonths {
				a, b := want[m][carrier], want[n][carrier]
				if (a > b) != (ys[i] < ys[k]) || (a == b) != (ys[i] == ys[k]) {
					t.Errorf("%s: %s (%d kop) is drawn at y=%.1f, %s (%d kop) at y=%.1f", carrier, m, a, ys[i], n, b, ys[k])
				}
			}
		}
	}
	// The same page in Ukrainian names the chart in Ukrainian.
	fin.lang = "uk"
	uk := fin.get("/finance?period="+period).want(t, http.StatusOK, "finance in Ukrainian").body
	if !strings.Contains(uk, "Компенсація за перевізниками, 2025-12 — 2026-11") || !strings.Contains(uk, "Суми діаграми таблицею") {
		t.Error("the Ukrainian page has no Ukrainian chart")
	}
}

// TestFinanceChartEmptyYear: a year without rides draws an empty chart
// that says so, rather than failing or dividing by zero.
func TestFinanceChartEmptyYear(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	fin, _ := f.login(financeUser)
	page := fin.get("/finance?period=2024-03").want(t, http.StatusOK, "finance of an empty year").body
	if !strings.Contains(page, "No benefit rides were booked in these twelve months.") || strings.Contains(page, `class="series"`) {
		t.Error("an empty year: want the note and no series")
	}
	if rows := tableRows(element(t, page, "table", "chart-table")); len(rows) != 13 || rows[1][0] != "2023-04" {
		t.Errorf("empty year's table %q", rows)
	}
}

// TestFinanceReconciliation checks the page against
// report.BuildReconciliation, and who may open it.
func TestFinanceReconciliation(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.seedReconciliation()
	rec, err := report.BuildReconciliation(f.ctx, f.clr, period, f.kyiv)
	if err != nil {
		t.Fatal(err)
	}
	if rec.OpenGaps == 0 || int64(len(rec.Gaps)) == rec.OpenGaps || len(rec.Quarantined) != 2 || rec.Duplicates == 0 ||
		rec.ByKind[string(recon.HotlistedCard)] == 0 || rec.ByKind[string(recon.ClonedCard)] == 0 || rec.ByKind[string(recon.TimeBackwards)] == 0 {
		t.Fatalf("the fixture lacks what the test needs: %+v", rec)
	}
	const path = "/finance/reconciliation?period=" + period
	for _, tc := range []struct {
		user   string
		status int
	}{{deskUser, http.StatusForbidden}, {aliceUser, http.StatusForbidden}, {auditorUser, http.StatusForbidden}, {supervisorUser, http.StatusOK}} {
		u, _ := f.login(tc.user)
		r := u.get(path).want(t, tc.status, tc.user+" opens the reconciliation")
		if tc.status == http.StatusForbidden && strings.Contains(r.body, "BUS-21") {
			t.Errorf("%s is refused but sees the devices", tc.user)
		}
	}
	if r := f.anonymous().get(path); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Errorf("signed out: %d to %q, want the login page", r.status, r.header.Get("Location"))
	}

	fin, _ := f.login(financeUser)
	page := fin.get(path).want(t, http.StatusOK, "reconciliation").body
	if !strings.Contains(page, `<a href="/finance/reconciliation" aria-current="page">Reconciliation</a>`) {
		t.Error("the menu does not mark the reconciliation as the current page")
	}
	if !strings.Contains(page, `href="/finance?period=2026-11"`) {
		t.Error("no link back to the period's statements")
	}
	devices := tableRows(element(t, page, "table", "devices"))
	for _, d := range rec.Devices {
		w := []string{d.Device, fmt.Sprint(d.Taps), fmt.Sprint(d.Duplicates), fmt.Sprint(d.FirstSeq), fmt.Sprint(d.LastSeq)}
		if !containsRow(devices, w) {
			t.Errorf("devices table %q lacks %q", devices, w)
		}
	}
	if !containsRow(devices, []string{"Total", fmt.Sprint(rec.Taps), fmt.Sprint(rec.Duplicates), "", ""}) {
		t.Errorf("devices table %q lacks the totals", devices)
	}
	gaps := tableRows(element(t, page, "table", "gaps"))
	for _, g := range rec.Gaps {
		state := "open: the taps are missing"
		if !g.IsOpen() {
			state = "filled " + g.Closed.In(f.kyiv).Format("2006-01-02 15:04")
		}
		w := []string{g.Device, fmt.Sprintf("%d–%d", g.First, g.Last), fmt.Sprint(g.Missing()), g.Opened.In(f.kyiv).Format("2006-01-02 15:04"), state}
		if !containsRow(gaps, w) {
			t.Errorf("gaps table %q lacks %q", gaps, w)
		}
	}
	if w := fmt.Sprintf("Open gaps: %d, taps missing: %d; filled by late batches: %d.", rec.OpenGaps, rec.MissingTaps, int64(len(rec.Gaps))-rec.OpenGaps); !strings.Contains(page, w) {
		t.Errorf("no gap summary %q", w)
	}
	quarantine := tableRows(element(t, page, "table", "quarantine"))
	for _, w := range [][]string{
		{"2026-11-12 11:00", "BUS-21", "bad MAC", "batch MAC does not verify"},
		{"2026-11-12 12:00", "(not decodable)", "malformed", "truncated batch"},
	} {
		if !containsRow(quarantine, w) {
			t.Errorf("quarantine table %q lacks %q", quarantine, w)
		}
	}
	for group, kind := range map[string]recon.Kind{"clock": recon.TimeBackwards, "hotlist": recon.HotlistedCard, "clone": recon.ClonedCard} {
		rows := tableRows(element(t, page, "table", "anomalies-"+group))
		n := 0
		for _, a := range rec.Anomalies {
			if a.Kind != kind {
				continue
			}
			n++
			if !containsCell(rows, a.Detail) || !containsCell(rows, fmt.Sprint(a.Card)) || !containsCell(rows, fmt.Sprintf("%s/%d", a.Device, a.Seq)) {
				t.Errorf("%s table %q lacks %+v", group, rows, a)
			}
		}
		if len(rows)-1 != n {
			t.Errorf("%s table has %d rows, the reconciliation %d anomalies of kind %s", group, len(rows)-1, n, kind)
		}
	}
	if clone := tableRows(element(t, page, "table", "anomalies-clone")); !containsCell(clone, "BUS-22/1") {
		t.Errorf("the clone table %q does not name the other sighting", clone)
	}

	if strings.Contains(page, `id="clone-pending"`) {
		t.Error("the page says rides wait for the cloned-card check, with none queued")
	}
	// A batch not yet through the check: the page says suspicions may be
	// missing.
	late := rec.Anomalies[0]
	if _, _, err := f.clr.AddTaps(f.ctx, []tap.Tap{{Device: "BUS-23", Seq: 1, Time: late.At, Card: 99, Carrier: "ATP-3", Route: "21",
		Vehicle: "V-BUS-23", Lat: 50_450_000, Lon: 30_523_000, Result: tap.Accepted, Reason: "ok", Product: "benefit",
		Category: "pensioner", Funding: "state", FareKop: 1500, CompensationKop: 1500, CardCommitted: true}}); err != nil {
		t.Fatal(err)
	}
	page = fin.get(path).want(t, http.StatusOK, "reconciliation with a check pending").body
	if !strings.Contains(page, "1 batches of rides still wait for the cloned-card check") {
		t.Error("the page does not say that rides wait for the cloned-card check")
	}

	// In Ukrainian, kinds and reasons are named in Ukrainian.
	fin.lang = "uk"
	uk := fin.get(path).want(t, http.StatusOK, "reconciliation in Ukrainian").body
	for _, w := range []string{"Звірка", "картка в стоп-списку", "можливий клон", "годинник пішов назад", "хибний MAC", "відкритий: поїздок бракує"} {
		if !strings.Contains(uk, w) {
			t.Errorf("the Ukrainian page lacks %q", w)
		}
	}
}

func containsRow(rows [][]string, want []string) bool {
	for _, r := range rows {
		if strings.Join(r, "|") == strings.Join(want, "|") {
			return true
		}
	}
	return false
}

func containsCell(rows [][]string, want string) bool {
	for _, r := range rows {
		for _, c := range r {
			if c == want {
				return true
			}
		}
	}
	return false
}

// TestFinanceReconciliationBadPeriod: a wrong period is refused with a
// message that shows what was typed and how to write it; no period means
// the month the finance page opens with.
func TestFinanceReconciliationBadPeriod(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	fin, _ := f.login(financeUser)
	for _, p := range []string{"November", "2026-13", "2026-1", "26-11"} {
		r := fin.get("/finance/reconciliation?period="+url.QueryEscape(p)).want(t, http.StatusBadRequest, "period "+p)
		if w := html.EscapeString(fmt.Sprintf("%q is not a period. Write the month as YYYY-MM, for example 2026-11.", p)); !strings.Contains(r.body, w) {
			t.Errorf("period %q: the page lacks %q", p, w)
		}
		if strings.Contains(r.body, `id="devices"`) {
			t.Errorf("period %q: a refused period shows a reconciliation", p)
		}
	}
	r := fin.get("/finance/reconciliation").want(t, http.StatusOK, "no period")
	if !strings.Contains(r.body, `value="2026-11"`) || !strings.Contains(r.body, "Taps stored: 9 from 1 devices") {
		t.Errorf("without a period: want November, the month before the fixture's today")
	}
}

// TestFinancePDF downloads the PDF before and after the period is closed:
// it is clearing/report's document byte for byte, and its text has the
// carriers, the Ukrainian texts, the totals and, once closed, the seal.
func TestFinancePDF(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	fin, _ := f.login(financeUser)
	page := fin.get("/finance?period="+period).want(t, http.StatusOK, "finance").body
	const href = "/finance/export?format=pdf&amp;period=2026-11"
	if !strings.Contains(page, `<a href="`+href+`" id="pdf" download>Statements 2026-11 as PDF</a>`) {
		t.Errorf("no PDF link next to the CSV and XLSX")
	}
	if !strings.Contains(page, `<a href="/finance/reconciliation?period=2026-11" id="recon-link">`) {
		t.Errorf("no link to the period's reconciliation")
	}
	const path = "/finance/export?period=" + period + "&format=pdf"
	download := func(who *user, what string) string {
		t.Helper()
		r := who.get(path).want(t, http.StatusOK, what)
		if r.header.Get("Content-Type") != "application/pdf" || r.header.Get("Content-Disposition") != `attachment; filename="compensation-2026-11.pdf"` {
			t.Errorf("%s: headers %v", what, r.header)
		}
		c, err := report.BuildCompensation(f.ctx, f.clr, report.Query{Period: period, Carrier: "", Detail: report.Detail{Category: true}})
		if err != nil {
			t.Fatal(err)
		}
		c = f.asConsole(c)
		sts, err := f.clr.Statements(f.ctx, period)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := report.WriteCompensationPDF(&want, c, sts); err != nil {
			t.Fatal(err)
		}
		if r.body != want.String() {
			t.Errorf("%s: the download differs from clearing/report's PDF", what)
		}
		return strings.Join(strings.Fields(pdftest.Text(t, []byte(r.body))), " ")
	}
	text := download(fin, "draft PDF")
	for _, w := range []string{"Період / period: 2026-11", "чернетка / draft", "Перевізник / carrier: ATP-1", "11 міський бюджет 3 45,00 45,00",
		"Перевізник / carrier: ATP-2", "12 державний бюджет 1 15,00 20,00",
		"РАЗОМ / TOTAL 8 120,00 135,00"} {
		if !strings.Contains(text, w) {
			t.Errorf("draft PDF lacks %q:\n%s", w, text)
		}
	}

	sup, secret := f.login(supervisorUser)
	sup.post("/finance/close", confirmClose(secret, period, false)).want(t, http.StatusSeeOther, "close November")
	sts, err := f.clr.Statements(f.ctx, period)
	if err != nil || !sts[0].Closed {
		t.Fatalf("after closing: %+v, %v", sts, err)
	}
	text = download(sup, "closed PDF")
	for _, w := range []string{"Період закрито, суми остаточні.", fmt.Sprintf("content hash: %x", sts[0].Hash), "signing key: sign-statement@1", "РАЗОМ / TOTAL 8 120,00 135,00"} {
		if !strings.Contains(text, w) {
			t.Errorf("closed PDF lacks %q:\n%s", w, text)
		}
	}

	for _, u := range []string{deskUser, aliceUser} {
		who, _ := f.login(u)
		if r := who.get(path).want(t, http.StatusForbidden, u+" downloads the PDF"); strings.HasPrefix(r.body, "%PDF") {
			t.Errorf("%s is refused but gets the PDF", u)
		}
	}
	if r := fin.get("/finance/export?period=2026-13&format=pdf").want(t, http.StatusBadRequest, "bad period"); !strings.Contains(r.body, "The accounting month, for example 2026-11.") {
		t.Error("a bad period does not say how to write one")
	}
	if r := fin.get("/finance/export?period=2026-11&format=docx").want(t, http.StatusBadRequest, "bad format"); !strings.Contains(r.body, "choose CSV, XLSX or PDF") {
		t.Error("an unknown format does not say which there are")
	}
}

// TestFinanceNav: finance staff and supervisors find the reconciliation in
// the menu; nobody else does.
func TestFinanceNav(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	for user, want := range map[string]bool{financeUser: true, supervisorUser: true, deskUser: false, auditorUser: false, aliceUser: false} {
		u, _ := f.login(user)
		home := u.get("/").header.Get("Location")
		body := u.get(home).body
		if got := strings.Contains(body, `href="/finance/reconciliation"`); got != want {
			t.Errorf("%s: menu has the reconciliation: %v, want %v", user, got, want)
		}
	}
}

// TestFinancePagesAccessible checks the chart and the reconciliation
// pages as TestAccessible checks the others: a language, the skip link
// first, one h1, a label for every field, no positive tabindex; and every
// table head cell says what it heads.
func TestFinancePagesAccessible(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.seedYear()
	f.seedReconciliation()
	fin, _ := f.login(financeUser)
	for name, r := range map[string]response{
		"finance with chart": fin.get("/finance?period=" + period),
		"reconciliation":     fin.get("/finance/reconciliation?period=" + period),
		"bad period":         fin.get("/finance/reconciliation?period=May"),
	} {
		b := r.body
		if !regexp.MustCompile(`<html lang="(uk|en)">`).MatchString(b) {
			t.Errorf("%s: no lang on <html>", name)
		}
		if i, j := strings.Index(b, `<a class="skip" href="#main">`), strings.Index(b, "<a "); i < 0 || i != j {
			t.Errorf("%s: the first link is not the skip link", name)
		}
		if strings.Count(b, "<h1>") != 1 || regexp.MustCompile(`tabindex="[1-9]`).MatchString(b) {
			t.Errorf("%s: want one h1 and no positive tabindex", name)
		}
		fields := 0
		for _, tag := range inputTag.FindAllString(b, -1) {
			if attr(tag, "type") == "hidden" {
				continue
			}
			fields++
			if id := attr(tag, "id"); id == "" || !strings.Contains(b, `<label for="`+id+`">`) {
				t.Errorf("%s: field without a label: %s", name, tag)
			}
		}
		if fields == 0 {
			t.Errorf("%s: no fields found; the check is not looking", name)
		}
		for _, th := range regexp.MustCompile(`<th\b[^>]*>`).FindAllString(b, -1) {
			if !strings.Contains(th, `scope="col"`) && !strings.Contains(th, `scope="row"`) {
				t.Errorf("%s: a head cell without scope: %s", name, th)
			}
		}
		if strings.Contains(b, " style=") {
			t.Errorf("%s: an inline style, which the CSP blocks", name)
		}
	}
}
