package storetest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"slices"
	"testing"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tap"
)

// TariffVersion is the version of the suite's tariff, which the suite's
// taps name.
const TariffVersion = 3

// tariffFiles is the suite's tariff: ATP-1 and PRIVAT-7 buses at 15.00,
// trams of ELEKTROTRANS and of Електротранс (a carrier named in
// Cyrillic, as a city's own is) at 8.00, no anti-passback and no
// transfers (so that a claim is right whatever order the suite's rides
// come in); category 11 rides free on the city's money, 31 at half price
// on the city's, 12 free with a flat 7.50 from the state, 21 and 42 free
// on the state's, 41 free on the city's.
var tariffFiles = map[string]string{
	"x_tariff.txt": "version,currency,timezone,passback_seconds\n3,UAH,Europe/Kyiv,0\n",
	"networks.txt": "network_id,network_name\nbus,Bus\ntram,Tram\n",
	"x_carriers.txt": "carrier_id,carrier_name,carrier_code,carrier_group,network_id\n" +
		"ATP-1,Bus company,1,0,bus\nELEKTROTRANS,Tram company,2,1,tram\nЕлектротранс,Київські трамваї,3,1,tram\nPRIVAT-7,Private buses,4,2,bus\n",
	"fare_products.txt": "fare_product_id,fare_product_name,amount,currency\nbus,Bus,15.00,UAH\ntram,Tram,8.00,UAH\n",
	"fare_leg_rules.txt": "leg_group_id,network_id,from_timeframe_group_id,fare_product_id\n" +
		"municipal,bus,,bus\nmunicipal,tram,,tram\n",
	"rider_categories.txt": "rider_category_id,rider_category_name,is_default_fare_category,eligibility_url\n" +
		"adult,Adult,1,\npensioner,Pensioner,0,\nstudent,Student,0,\nveteran,Veteran,0,\n" +
		"disabled,Disabled,0,\nchild,Child,0,\nlarge-family,Large family,0,\n",
	"x_benefits.txt": "rider_category_id,card_category,discount_pct,monthly_rides,funding_source,compensation_amount,network_ids,carrier_ids\n" +
		"pensioner,11,100,0,city,,,\nstudent,31,50,0,city,,,\nveteran,12,100,0,state,7.50,,\n" +
		"disabled,21,100,0,state,,,\nchild,41,100,0,city,,,\nlarge-family,42,100,0,state,,,\n",
}

// TariffZip returns the suite's tariff as the registry publishes it.
func TariffZip(t testing.TB) []byte { return zipFiles(t, tariffFiles) }

// TariffFileOf is a tariff of the caller's, version of files (by name, as
// validator/tariff/FORMAT.md lays them out), as a store keeps it: for
// tests whose carriers and fares are not the suite's and whose rides
// re-rating must prove. Like the suite's, it is not signed (the stores
// do not verify signatures; clearing/tariffs does, before adding).
func TariffFileOf(t testing.TB, version uint32, files map[string]string) store.TariffFile {
	z := zipFiles(t, files)
	return store.TariffFile{Version: version, Digest: sha256.Sum256(z), KeyRef: "sign-tariff@1",
		Source: "test", Added: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Zip: z}
}

func zipFiles(t testing.TB, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(files[n])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tariffFile is the suite's tariff as a store keeps it. The stores do
// not verify signatures (clearing/tariffs does, before adding); the
// digest here only has to be stable.
func tariffFile(t testing.TB) store.TariffFile {
	z := TariffZip(t)
	return store.TariffFile{Version: TariffVersion, Digest: sha256.Sum256(z), KeyRef: "sign-tariff@1",
		Source: "storetest", Added: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), Zip: z}
}

// Claim is what the suite's tariff owes a benefit ride of category on
// carrier (fare, charged, compensation, funding), for tests whose rides
// re-rating must prove (Prove).
func Claim(carrier, category string) (fare, charged, comp int64, funding string) {
	return claim(carrier, category)
}

// claim is what the suite's tariff owes a benefit ride of category on
// carrier (fare, charged, compensation, funding).
func claim(carrier, category string) (fare, charged, comp int64, funding string) {
	fare = 1500
	if carrier != "ATP-1" && carrier != "PRIVAT-7" {
		fare = 800
	}
	switch category {
	case "11", "41":
		return fare, 0, fare, "city"
	case "21", "42":
		return fare, 0, fare, "state"
	case "31":
		charged = fare - fare*50/100
		return fare, charged, fare - charged, "city"
	case "12":
		return fare, 0, 750, "state"
	}
	return fare, fare, 0, ""
}

// records returns registry records giving each card of taps the benefit
// its taps claim, for all of 2020 to 2030.
func records(taps []tap.Tap) []store.CardRecord {
	cats := map[uint64]map[string]bool{}
	for _, tp := range taps {
		if tp.Category == "" {
			continue
		}
		if cats[tp.Card] == nil {
			cats[tp.Card] = map[string]bool{}
		}
		cats[tp.Card][tp.Category] = true
	}
	var out []store.CardRecord
	for card, cs := range cats {
		r := store.CardRecord{Card: card}
		for c := range cs {
			n := uint16(0)
			for _, d := range c {
				n = n*10 + uint16(d-'0')
			}
			_, _, _, funding := claim("ATP-1", c)
			if funding == "" {
				funding = "city"
			}
			r.Entitlements = append(r.Entitlements, store.RecordEntitlement{Category: n, ValidFrom: "2020-01-01", ValidTo: "2030-12-31", Funding: funding})
		}
		out = append(out, r)
	}
	return out
}

// Ride returns a compensable tap of device that the suite's tariff and
// the records Prove adds prove: a free ride of category 11 on ATP-1 at
// 15.00, paid by the city.
func Ride(device string, seq uint64, at time.Time) tap.Tap { return ride(device, seq, at) }

// Prove gives s the suite's tariff and registry records for the cards of
// taps, so that re-rating proves every honest claim among taps.
func Prove(t testing.TB, s store.Store, taps []tap.Tap) { proven(t, s, taps) }

// proven gives s the suite's tariff and registry records for the cards
// of taps, current as of asOf (zero: far in the future), so that
// re-rating proves every honest claim among taps.
func proven(t testing.TB, s store.Store, taps []tap.Tap) {
	t.Helper()
	if _, err := s.AddTariff(ctxFor(t), tariffFile(t)); err != nil {
		t.Fatalf("AddTariff: %v", err)
	}
	feed, err := s.Feed(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	feed.Next++
	feed.AsOf = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, err := s.SetCardRecords(ctxFor(t), records(taps), feed); err != nil {
		t.Fatalf("SetCardRecords: %v", err)
	}
}
