package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/pdf/pdftest"
	"github.com/citycard/transit/clearing/store"
	csqlite "github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/validator/tap"
)

// TestCarrierCopy is the month end as finance and a carrier do it: close
// November (confirmed, with who closed it), export ATP-1's copy in one
// command, and check it as the carrier does with the three commands the
// help gives, holding only the city's public key. ATP-1's copy holds no
// line of the other carrier, and a changed copy fails.
func TestCarrierCopy(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	keys, pemFile, db := filepath.Join(dir, "city.keys"), filepath.Join(dir, "city-statements.pem"), filepath.Join(dir, "clearing.db")
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "city pass")
	transit(t, ctx, 0, "hsm", "init", "--keystore", keys)

	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	st, err := csqlite.Open(ctx, db, store.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 10, 8, 0, 0, 0, kyiv)
	var taps []tap.Tap
	for i, c := range []struct {
		carrier, category string
		kop               int64
	}{{"ATP-1", "11", 1500}, {"ATP-1", "21", 1500}, {"ELEKTROTRANS", "11", 987}, {"ELEKTROTRANS", "12", 654}} {
		taps = append(taps, tap.Tap{Device: "BUS-" + c.carrier, Seq: uint64(i + 1), Time: at.Add(time.Duration(i) * time.Hour), Card: 42,
			Carrier: c.carrier, Route: "7", Result: tap.Accepted, Product: "benefit", Category: c.category, Funding: "city",
			FareKop: c.kop, CompensationKop: c.kop, CardCommitted: true})
	}
	if _, _, err := st.AddTaps(ctx, taps); err != nil {
		t.Fatal(err)
	}
	st.Close()
	sqlite := "sqlite:" + db

	transit(t, ctx, 2, "statement", "close", "--period", "2026-11", "--actor", "o.koval", "--db", sqlite, "--keystore", keys)
	transit(t, ctx, 0, "statement", "close", "--period", "2026-11", "--yes", "--actor", "o.koval", "--db", sqlite, "--keystore", keys)
	key := transit(t, ctx, 0, "hsm", "export-public", "sign-statement", "--keystore", keys)
	if err := os.WriteFile(pemFile, []byte(key), 0o600); err != nil {
		t.Fatal(err)
	}
	register, err := filepath.Abs(filepath.Join("..", "..", "testdata", "finance"))
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(dir, "atp1-2026-11")
	transit(t, ctx, 0, "statement", "export", "--period", "2026-11", "--carrier", "ATP-1", "--register", register,
		"--public-key", pemFile, "--out", prefix, "--db", sqlite)

	// The carrier holds no secret: no passphrase, no keystore, no database.
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "")
	out := transit(t, ctx, 0, "statement", "verify", "--bundle", prefix+".bundle", "--public-key", pemFile)
	for _, want := range []string{"OK: signed by the key sha256:", "ATP-1: 2 benefit rides, compensation 30.00 UAH",
		"by o.koval", "the signature also covers the lines of ELEKTROTRANS, which are not in this copy"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify output lacks %q:\n%s", want, out)
		}
	}
	bundle, err := os.ReadFile(prefix + ".bundle")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(prefix + ".pdf")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(strings.Fields(pdftest.Text(t, doc)), " ")
	for _, w := range []string{"Комунальне підприємство «Автотранспортне підприємство № 1»", "03301009", "30,00", "the carrier's part:"} {
		if !strings.Contains(text, w) {
			t.Errorf("ATP-1's PDF lacks %q:\n%s", w, text)
		}
	}
	// Nothing of ELEKTROTRANS's lines: its amounts, its category 12. (Not
	// the bare kopiyka figures: the salted digests in the copy are random
	// hex, which holds any three digits now and then.)
	for _, leak := range []string{"9,87", "6,54", "9.87", "6.54", "16,41", "46,41", "16.41", "46.41", "Ветерани"} {
		if strings.Contains(out+string(bundle)+blocksOf(bundle)+text, leak) {
			t.Errorf("ATP-1's copy shows %q of another carrier's lines", leak)
		}
	}

	// A copy changed on the way fails, with exit 1.
	tampered := filepath.Join(dir, "tampered.bundle")
	changed := bytes.Replace(bundle, []byte("Signing key:"), []byte("Signing key (as sent):"), 1)
	if err := os.WriteFile(tampered, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	transit(t, ctx, 0, "statement", "verify", "--bundle", tampered, "--public-key", pemFile) // the text for people is not signed
	i := bytes.Index(bundle, []byte("-----BEGIN CITYCARD STATEMENT PART-----"))
	if i < 0 {
		t.Fatalf("the bundle has no part:\n%s", bundle)
	}
	body := i + bytes.IndexByte(bundle[i:], '\n') + 1
	body += bytes.Index(bundle[body:], []byte("\n\n")) + 2 // after the part's headers
	changed = append(bytes.Clone(bundle[:body]), 'X')
	changed = append(changed, bundle[body+1:]...)
	if err := os.WriteFile(tampered, changed, 0o600); err != nil {
		t.Fatal(err)
	}
	var errb syncBuffer
	if code := run(ctx, []string{"statement", "verify", "--bundle", tampered, "--public-key", pemFile}, &syncBuffer{}, &errb); code != 1 {
		t.Errorf("a changed part: exit %d, %s", code, errb.String())
	}

	// Without --carrier: every carrier's lines, for the city and auditors.
	transit(t, ctx, 0, "statement", "export", "--period", "2026-11", "--register", register, "--public-key", pemFile, "--out", filepath.Join(dir, "all"), "--db", sqlite)
	out = transit(t, ctx, 0, "statement", "verify", "--bundle", filepath.Join(dir, "all.bundle"), "--public-key", pemFile)
	if !strings.Contains(out, "ELEKTROTRANS: 2 benefit rides, compensation 16.41 UAH") || !strings.Contains(out, "total: 4 benefit rides, compensation 46.41 UAH") {
		t.Errorf("the whole bundle:\n%s", out)
	}
}

// blocksOf decodes the base64 blocks of a bundle, for looking into them.
func blocksOf(bundle []byte) string {
	var b strings.Builder
	for rest := bundle; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return b.String()
		}
		b.Write(blk.Bytes)
	}
}
