package console_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/citycard/transit/clearing/pdf/pdftest"
	"github.com/citycard/transit/clearing/report"
)

// TestBrowserFinanceChartReconciliationPDF: finance staff see the year's
// chart drawn, open its figures and follow the link to the reconciliation
// with the keyboard alone, and download the period's PDF.
func TestBrowserFinanceChartReconciliationPDF(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.seedYear()
	f.seedReconciliation()
	ctx := newBrowser(t)
	shots, downloads := t.TempDir(), t.TempDir()
	browserLogin(t, ctx, f, financeUser, "uk")
	must(t, "open November", chromedp.Do(ctx, chromedp.Navigate(f.srv.URL+"/finance?period="+period)))

	// The chart is drawn: the stylesheet reached it (lines unfilled, as
	// wide as the page allows) and there is a line per carrier.
	lines := run(t, ctx, "series", chromedp.Evaluate[int](`document.querySelectorAll("#chart-svg polyline").length`))
	if lines != 4 { // ATP-1, ATP-2, ATP-3 (the clone's rides), Київпастранс
		t.Errorf("%d lines drawn, want 4", lines)
	}
	if fill := run(t, ctx, "line style", chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#chart-svg polyline")).fill`)); fill != "none" {
		t.Errorf("a chart line is filled with %q: the stylesheet did not apply", fill)
	}
	if w := run(t, ctx, "chart width", chromedp.Evaluate[float64](`document.querySelector("#chart-svg").getBoundingClientRect().width`)); w < 500 {
		t.Errorf("the chart is %.0f px wide", w)
	}
	if name := run(t, ctx, "chart name", chromedp.Evaluate[string](`document.getElementById(document.querySelector("#chart-svg").getAttribute("aria-labelledby")).textContent`)); name != "Компенсація за перевізниками, 2025-12 — 2026-11" {
		t.Errorf("the chart is named %q", name)
	}
	desc := run(t, ctx, "chart description", chromedp.Evaluate[string](`document.getElementById(document.querySelector("#chart-svg").getAttribute("aria-describedby")).textContent`))
	for _, w := range []string{"ATP-1: усього", "Київпастранс: усього", "Ті самі суми є в таблиці"} {
		if !strings.Contains(desc, w) {
			t.Errorf("the chart's description %q lacks %q", desc, w)
		}
	}
	must(t, "scroll to the chart", chromedp.Do(ctx, chromedp.ScrollIntoView(chromedp.ID("chart"))))
	accessible(t, ctx, "finance-chart")
	screenshot(t, ctx, shots, "finance-chart")

	// The figures open from the keyboard: focus the summary, press Enter.
	must(t, "open the figures", chromedp.Do(ctx, chromedp.Focus(chromedp.CSS("#chart-figures summary")), chromedp.KeyEvent("\r")))
	if open := run(t, ctx, "figures open", chromedp.Evaluate[bool](`document.getElementById("chart-figures").open`)); !open {
		t.Fatal("Enter on the summary did not open the chart's figures")
	}
	figures := run(t, ctx, "figures", chromedp.Text(chromedp.ID("chart-table")))
	for _, w := range []string{"2026-06", "2026-11", "Київпастранс", "закритий", report.UAHComma(4 * 1500)} {
		if !strings.Contains(figures, w) {
			t.Errorf("the chart's figures %q lack %q", figures, w)
		}
	}
	accessible(t, ctx, "finance-chart-figures")
	screenshot(t, ctx, shots, "finance-chart-figures")

	// To the reconciliation with the keyboard: focus the link, press Enter.
	must(t, "focus the reconciliation link", chromedp.Do(ctx, chromedp.Focus(chromedp.ID("recon-link"))))
	resp, err := chromedp.RunResponse(ctx, chromedp.KeyEvent("\r"))
	must(t, "follow the reconciliation link", err)
	if resp.Status != 200 || !strings.HasSuffix(resp.URL, "/finance/reconciliation?period="+period) {
		t.Fatalf("the link led to %s (status %d)", resp.URL, resp.Status)
	}
	if cur := run(t, ctx, "menu", chromedp.Evaluate[string](`document.querySelector('nav.menu a[aria-current="page"]').textContent`)); cur != "Звірка" {
		t.Errorf("the menu marks %q as the current page", cur)
	}
	for id, want := range map[string]string{"gaps": "відкритий: поїздок бракує", "quarantine": "хибний MAC", "anomalies-hotlist": "424242", "anomalies-clone": "BUS-22/1", "anomalies-clock": "годинник пішов назад"} {
		if got := run(t, ctx, id, chromedp.Text(chromedp.ID(id))); !strings.Contains(got, want) {
			t.Errorf("#%s %q lacks %q", id, got, want)
		}
	}
	accessible(t, ctx, "reconciliation")
	screenshot(t, ctx, shots, "reconciliation")

	// Back to the statements, and the PDF.
	submit(t, ctx, "finance-link", 200)
	_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
	must(t, "allow downloads", err)
	must(t, "click the PDF link", chromedp.Do(ctx, chromedp.Click(chromedp.ID("pdf"))))
	file := filepath.Join(downloads, "compensation-"+period+".pdf")
	var got []byte
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if got, err = os.ReadFile(file); err == nil && bytes.HasSuffix(bytes.TrimSpace(got), []byte("%%EOF")) {
			break
		}
		if time.Now().After(deadline) {
			entries, _ := os.ReadDir(downloads)
			t.Fatalf("no download %s after 15 s (the directory has %v)", file, entries)
		}
	}
	c, err := report.BuildCompensation(f.ctx, f.clr, report.Query{Period: period, Carrier: "", Detail: report.Detail{Category: true}})
	must(t, "compensation", err)
	c = f.asConsole(c)
	sts, err := f.clr.Statements(f.ctx, period)
	must(t, "statements", err)
	var want bytes.Buffer
	must(t, "write the PDF", report.WriteCompensationPDF(&want, c, sts))
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("the downloaded PDF (%d bytes) differs from clearing/report's (%d bytes)", len(got), want.Len())
	}
	text := strings.Join(strings.Fields(pdftest.Text(t, got)), " ")
	for _, w := range []string{"Компенсація за пільгові поїздки", "ATP-1", "ATP-3", "РАЗОМ / TOTAL " + strconv.FormatInt(c.Total.Rides, 10) + " " + strings.ReplaceAll(report.UAHComma(c.Total.FareKop), "\u00a0", " ") + " " + strings.ReplaceAll(report.UAHComma(c.Total.CompensationKop), "\u00a0", " ")} {
		if !strings.Contains(text, w) {
			t.Errorf("the downloaded PDF lacks %q:\n%s", w, text)
		}
	}
	accessible(t, ctx, "finance-downloads")
	screenshot(t, ctx, shots, "finance-downloads")
}
