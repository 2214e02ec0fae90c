package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/pdf/pdftest"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	csqlite "github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/clearing/store/storetest"
	"github.com/citycard/transit/validator/tap"
)

// pdfStore makes a clearing database with November's benefit rides of two
// carriers, one named in Cyrillic, with November closed and sealed, and
// returns its --db value and the compensation and statements the report
// must show.
func pdfStore(t *testing.T) (db string, c report.Compensation, sts []store.Statement) {
	t.Helper()
	ctx := context.Background()
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "clearing.db")
	st, err := csqlite.Open(ctx, path, store.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	at := time.Date(2026, 11, 10, 8, 0, 0, 0, kyiv)
	// Rides that clearing's re-rating proves (the store suite's tariff):
	// free rides on ATP-1's buses and on Електротранс's trams.
	var taps []tap.Tap
	for i, carrier := range []string{"ATP-1", "Електротранс", "Електротранс", "ATP-1", "Електротранс"} {
		tp := storetest.Ride("BUS-3", uint64(i+1), at.Add(time.Duration(i)*time.Hour))
		tp.Card = 42
		if carrier != "ATP-1" {
			tp.Carrier, tp.Route, tp.FareKop, tp.CompensationKop = carrier, "T1", 800, 800
		}
		taps = append(taps, tp)
	}
	storetest.Prove(t, st, taps)
	if _, _, err := st.AddTaps(ctx, taps); err != nil {
		t.Fatal(err)
	}
	seal := func(_ context.Context, s *store.Statement) error {
		h := sha256.Sum256([]byte("statement " + s.Period))
		s.Hash, s.Signature, s.KeyRef = h[:], bytes.Repeat([]byte{1}, 64), "sign-statement@2"
		return nil
	}
	if _, err := st.CloseStatements(ctx, "2026-11", time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC), seal); err != nil {
		t.Fatal(err)
	}
	if c, err = report.BuildCompensation(ctx, st, report.Query{Period: "2026-11", Carrier: "", Detail: report.Detail{Category: true}}); err != nil {
		t.Fatal(err)
	}
	if sts, err = st.Statements(ctx, "2026-11"); err != nil {
		t.Fatal(err)
	}
	return "sqlite:" + path, c, sts
}

// TestReportCompensationPDF: `transit report compensation --format pdf`
// writes the same document as clearing/report, to a file or to a
// redirected stdout, and its text has the carriers, the Ukrainian texts,
// the seal and the total.
func TestReportCompensationPDF(t *testing.T) {
	db, c, sts := pdfStore(t)
	c.Location, _ = time.LoadLocation("Europe/Kyiv")
	var want bytes.Buffer
	if err := report.WriteCompensationPDF(&want, c, sts); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "november.pdf")
	transit(t, context.Background(), 0, "report", "compensation", "--period", "2026-11", "--by-category", "--format", "pdf", "--out", file, "--db", db)
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The same document but for when it was made.
	made := regexp.MustCompile(`made: \S+ \S+ \S+`)
	same := func(a, b []byte) bool {
		return made.ReplaceAllString(pdftest.Text(t, a), "") == made.ReplaceAllString(pdftest.Text(t, b), "")
	}
	if !same(got, want.Bytes()) {
		t.Errorf("the command's PDF (%d bytes) differs from clearing/report's (%d bytes)", len(got), want.Len())
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("--out file mode %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	text := strings.Join(strings.Fields(pdftest.Text(t, got)), " ")
	for _, w := range []string{"ATP-1", "Електротранс", "Компенсація за пільгові поїздки", "Період закрито",
		fmt.Sprintf("content hash: %x", sts[0].Hash), "sign-statement@2",
		"РАЗОМ / TOTAL 5 " + report.UAHComma(c.Total.FareKop) + " " + report.UAHComma(c.Total.CompensationKop)} {
		if !strings.Contains(text, w) {
			t.Errorf("the PDF's text lacks %q:\n%s", w, text)
		}
	}
	if c.Total.CompensationKop != 1500*2+800*3 {
		t.Errorf("total %d kop; the fixture says %d", c.Total.CompensationKop, 1500*2+800*3)
	}

	// A redirected stdout (not a terminal) takes the PDF as it is.
	out := transit(t, context.Background(), 0, "report", "compensation", "--period", "2026-11", "--by-category", "--format", "pdf", "--db", db)
	if !same([]byte(out), want.Bytes()) {
		t.Errorf("the PDF on stdout differs from clearing/report's")
	}
}
