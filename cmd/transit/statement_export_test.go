package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
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
	// Rides clearing's re-rating proves with the tariff below, a card
	// each: odd amounts on ELEKTROTRANS, so that a leak of its figures
	// into ATP-1's copy shows.
	var (
		taps []tap.Tap
		recs []store.CardRecord
	)
	for i, c := range []struct {
		carrier, category, funding string
		fare, comp                 int64
	}{{"ATP-1", "11", "city", 1500, 1500}, {"ATP-1", "21", "city", 1500, 1500}, {"ELEKTROTRANS", "11", "city", 987, 987}, {"ELEKTROTRANS", "12", "state", 987, 654}} {
		tp := tap.Tap{Device: "BUS-" + c.carrier, Seq: uint64(i + 1), Time: at.Add(time.Duration(i) * time.Hour), Card: 42 + uint64(i),
			Carrier: c.carrier, Route: "7", Result: tap.Accepted, Product: "benefit", Category: c.category, Funding: c.funding,
			FareKop: c.fare, CompensationKop: c.comp, TariffVersion: 5, CardCommitted: true}
		taps = append(taps, tp)
		code, _ := strconv.Atoi(c.category)
		recs = append(recs, store.CardRecord{Card: tp.Card, Entitlements: []store.RecordEntitlement{
			{Category: uint16(code), ValidFrom: "2026-01-01", ValidTo: "2027-12-31", Funding: c.funding}}})
	}
	if _, err := st.AddTariff(ctx, storetest.TariffFileOf(t, 5, map[string]string{
		"x_tariff.txt":       "version,currency,timezone,passback_seconds\n5,UAH,Europe/Kyiv,0\n",
		"networks.txt":       "network_id,network_name\nbus,Bus\ntram,Tram\n",
		"x_carriers.txt":     "carrier_id,carrier_name,carrier_code,carrier_group,network_id\nATP-1,ATP-1,1,0,bus\nELEKTROTRANS,ELEKTROTRANS,2,1,tram\n",
		"fare_products.txt":  "fare_product_id,fare_product_name,amount,currency\nbus,Bus,15.00,UAH\ntram,Tram,9.87,UAH\n",
		"fare_leg_rules.txt": "leg_group_id,network_id,from_timeframe_group_id,fare_product_id\nmunicipal,bus,,bus\nmunicipal,tram,,tram\n",
		"rider_categories.txt": "rider_category_id,rider_category_name,is_default_fare_category,eligibility_url\n" +
			"adult,Adult,1,\npensioner,Pensioner,0,\nveteran,Veteran,0,\ndisabled,Disabled,0,\n",
		"x_benefits.txt": "rider_category_id,card_category,discount_pct,monthly_rides,funding_source,compensation_amount,network_ids,carrier_ids\n" +
			"pensioner,11,100,0,city,,,\nveteran,12,100,0,state,6.54,,\ndisabled,21,100,0,city,,,\n",
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetCardRecords(ctx, recs, store.Feed{Next: 1, AsOf: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	// A device with a valid key claims 2^40 kopiyky for one ride: held,
	// never paid, and ATP-1's copy says so.
	inflated := taps[0]
	inflated.Seq, inflated.Time, inflated.CompensationKop = 9, at.Add(8*time.Hour), 1<<40
	taps = append(taps, inflated)
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
		"ATP-1: held back, not paid (amount-invalid): 1 rides claiming " + report.UAH(1<<40) + " UAH",
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
