package tariff

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tap"
)

var sampleDir = filepath.Join("..", "..", "testdata", "tariff")

// sample returns the sample city's files as an in-memory directory that a
// test may change.
func sample(t testing.TB) fstest.MapFS {
	t.Helper()
	m := fstest.MapFS{}
	entries, err := os.ReadDir(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(sampleDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m[e.Name()] = &fstest.MapFile{Data: b}
	}
	return m
}

func TestSample(t *testing.T) {
	tf, err := Load(sampleDir)
	if err != nil {
		t.Fatal(err)
	}
	if tf.Version != 2 || tf.Passback != 120*time.Second || tf.Location == nil || tf.Location.String() != "Europe/Kyiv" {
		t.Fatalf("x_tariff.txt read as version %d, passback %s, zone %v", tf.Version, tf.Passback, tf.Location)
	}
	et := tf.Carriers["ELEKTROTRANS"]
	if len(tf.Carriers) != 3 || et.Code != 2 || et.Group != 1 || et.Network != "tram" || len(et.Routes) != 3 ||
		et.Routes[1] != (fare.Route{ID: "TB5", Code: 105, Network: "trolleybus"}) {
		t.Fatalf("carriers %+v", tf.Carriers)
	}
	if len(tf.Legs) != 5 || tf.Legs[3] != (fare.LegRule{LegGroup: "minibus", Network: "minibus", Timeframe: "peak",
		Product: "single_minibus_peak", FareKop: 1500}) {
		t.Fatalf("leg rules %+v", tf.Legs)
	}
	weekdays := uint8(1<<time.Monday | 1<<time.Tuesday | 1<<time.Wednesday | 1<<time.Thursday | 1<<time.Friday)
	if len(tf.Timeframes) != 2 || tf.Timeframes[1] != (fare.Timeframe{Group: "peak", Start: 17 * 3600, End: 20 * 3600,
		Weekdays: weekdays, FromDate: 20260101, ToDate: 20301231}) {
		t.Fatalf("timeframes %+v", tf.Timeframes)
	}
	if len(tf.Transfers) != 3 || tf.Transfers[1] != (fare.TransferRule{From: "municipal", To: "minibus", Within: time.Hour,
		Type: fare.TransferAdd, Product: "transfer_to_minibus", AmountKop: -500}) || tf.Transfers[0].Chain {
		t.Fatalf("transfer rules %+v", tf.Transfers)
	}
	if c := tf.Categories["31"]; c.DiscountPct != 50 || c.Funding != "city" || c.MonthlyRides != 50 || c.FixedCompensation || c.Rider != "student" {
		t.Fatalf("category 31 = %+v", c)
	}
	if c := tf.Categories["12"]; !c.FixedCompensation || c.CompensationKop != 750 || c.Funding != "state" {
		t.Fatalf("category 12 = %+v", c)
	}
	if c := tf.Categories["41"]; len(c.Networks) != 2 || c.Networks[1] != "trolleybus" || len(c.Carriers) != 0 {
		t.Fatalf("category 41 = %+v", c)
	}
	if c := tf.Categories["42"]; len(c.Carriers) != 2 || c.Carriers[0] != "ATP-1" {
		t.Fatalf("category 42 = %+v", c)
	}
	if p := tf.Passes[2]; p.Groups != 1<<1 || p.PriceKop != 450_00 || p.Days != 31 || tf.Passes[1].Groups != fare.AllGroups {
		t.Fatalf("passes %+v", tf.Passes)
	}
}

// TestSampleRides prices rides of the sample city with fare.Decide: the
// file's rules as the decision applies them.
func TestSampleRides(t *testing.T) {
	tf, err := Parse(sample(t))
	if err != nil {
		t.Fatal(err)
	}
	kyiv := tf.Location
	tue8 := time.Date(2026, 11, 3, 8, 0, 0, 0, kyiv)
	dev := func(carrier, route string) fare.Device {
		return fare.Device{ID: "d", Carrier: carrier, Route: route, Vehicle: carrier + route}
	}
	rich := fare.Card{Number: 1, PurseKop: 500_00}
	for _, c := range []struct {
		name    string
		card    fare.Card
		dev     fare.Device
		now     time.Time
		product string
		fare    int64
		charged int64
		comp    int64
	}{
		{"bus", rich, dev("ATP-1", "12"), tue8, fare.ProductPurse, 1500, 1500, 0},
		{"tram", rich, dev("ELEKTROTRANS", "T3"), tue8, fare.ProductPurse, 800, 800, 0},
		{"trolleybus", rich, dev("ELEKTROTRANS", "TB5"), tue8, fare.ProductPurse, 1000, 1000, 0},
		{"minibus at peak, given in UTC", rich, dev("PRIVAT-7", "45"), tue8.UTC(), fare.ProductPurse, 1500, 1500, 0},
		{"minibus off-peak", rich, dev("PRIVAT-7", "45"), tue8.Add(4 * time.Hour), fare.ProductPurse, 1200, 1200, 0},
		{"minibus on Sunday", rich, dev("PRIVAT-7", "45"), tue8.AddDate(0, 0, 5), fare.ProductPurse, 1200, 1200, 0},
		{"veteran's fixed compensation", fare.Card{Entitlements: []fare.Entitlement{{Category: "12",
			ValidFrom: tue8.AddDate(-1, 0, 0), ValidTo: tue8.AddDate(1, 0, 0)}}}, dev("ATP-1", "12"), tue8, fare.ProductBenefit, 1500, 0, 750},
		{"bus to minibus transfer", fare.Card{PurseKop: 500_00, LastTap: &fare.LastTap{Time: tue8.Add(-20 * time.Minute),
			Carrier: 1, Route: 12, Product: fare.ProductPurse}}, dev("PRIVAT-7", "45"), tue8, fare.ProductTransfer, 1500, 1000, 0},
		{"electric pass on a trolleybus", fare.Card{Passes: []fare.Pass{{Product: 2, Groups: 0xFFFF,
			ValidFrom: tue8.AddDate(0, 0, -1), ValidTo: tue8.AddDate(0, 1, 0)}}}, dev("ELEKTROTRANS", "TB1"), tue8, fare.ProductPass, 1000, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := fare.Decide(c.card, tf, nil, c.dev, c.now)
			if d.Result != tap.Accepted || d.Product != c.product || d.FareKop != c.fare || d.ChargedKop != c.charged || d.CompensationKop != c.comp {
				t.Fatalf("decision %+v, want %s fare %d charged %d compensation %d", d, c.product, c.fare, c.charged, c.comp)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		if _, err := Load(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a file, like the old tariff.json", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "tariff.json")
		if err := os.WriteFile(p, []byte(`{"version":1}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "not a directory") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("error names the directory and the file", func(t *testing.T) {
		dir := writeDir(t, sample(t))
		if err := os.WriteFile(filepath.Join(dir, FileNetworks), []byte("network_id\nbus\nbus\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(dir)
		var fe *Error
		if !errors.As(err, &fe) || fe.File != FileNetworks || fe.Line != 3 || !strings.HasPrefix(err.Error(), "tariff "+dir+": networks.txt:3: network_id:") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("signed directory needs LoadSigned", func(t *testing.T) {
		m := sample(t)
		m[SignatureFile] = &fstest.MapFile{Data: []byte("anything")}
		if _, err := Load(writeDir(t, m)); !errors.Is(err, ErrSigned) {
			t.Fatalf("got %v", err)
		}
	})
}

// writeDir writes m to a new directory and returns its path.
func writeDir(t *testing.T, m fstest.MapFS) string {
	t.Helper()
	dir := t.TempDir()
	for name, f := range m {
		if err := os.WriteFile(filepath.Join(dir, name), f.Data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestRejects changes one file of the sample at a time; each error must
// name the file, line and column, carry the wrong value, and wrap
// ErrInvalid.
func TestRejects(t *testing.T) {
	const (
		tariffHead   = "version,currency,timezone,passback_seconds\n"
		productHead  = "fare_product_id,fare_product_name,amount,currency\n"
		legHead      = "leg_group_id,network_id,from_timeframe_group_id,fare_product_id\n"
		transferHead = "from_leg_group_id,to_leg_group_id,transfer_count,duration_limit,duration_limit_type,fare_transfer_type,fare_product_id\n"
		benefitHead  = "rider_category_id,card_category,discount_pct,monthly_rides,funding_source,compensation_amount,network_ids,carrier_ids\n"
		carrierHead  = "carrier_id,carrier_name,carrier_code,carrier_group,network_id\n"
		routeHead    = "carrier_id,route_id,route_code,route_type,network_id\n"
		passHead     = "pass_code,fare_product_id,duration_days,carrier_groups\n"
		calHead      = "service_id,monday,tuesday,wednesday,thursday,friday,saturday,sunday,start_date,end_date\n"
		tfHead       = "timeframe_group_id,start_time,end_time,service_id\n"
	)
	remove := "\x00remove"
	cases := []struct {
		name  string
		files map[string]string // file -> new content, or remove
		want  string            // prefix of the error
	}{
		// The example: the fourth line of x_benefits.txt.
		{"discount above 100", map[string]string{FileBenefits: strings.Replace(string(mustRead(t, FileBenefits)), "disability,21,100", "disability,21,120", 1)},
			"x_benefits.txt:4: discount_pct: 120 is outside 0..100"},

		// Files.
		{"unknown file", map[string]string{"notes.txt": "hello"}, "notes.txt: unknown file"},
		{"fare media", map[string]string{"fare_media.txt": "fare_media_id\n"}, "fare_media.txt: not supported"},
		{"required file missing", map[string]string{FileNetworks: remove}, "networks.txt: missing"},
		{"benefits without riders", map[string]string{FileRiders: remove}, "x_benefits.txt: needs rider_categories.txt"},
		{"timeframes without calendar", map[string]string{FileCalendar: remove}, `timeframes.txt:2: service_id: "weekdays" is not in calendar.txt`},
		{"empty file", map[string]string{FileNetworks: ""}, "networks.txt: empty"},
		{"not UTF-8", map[string]string{FileNetworks: "network_id\nbus\n\xff\n"}, "networks.txt:3: not UTF-8"},
		{"byte order mark is fine", map[string]string{FileNetworks: "\ufeffnetwork_id\nbus\ntram\ntrolleybus\nminibus\nbus\n"},
			`networks.txt:6: network_id: "bus" listed twice`},

		// CSV shape.
		{"field count", map[string]string{FileNetworks: "network_id,network_name\nbus,Bus,extra\n"}, "networks.txt:2: 3 fields, the header names 2"},
		{"bare quote", map[string]string{FileNetworks: "network_id\nb\"us\n"}, `networks.txt:2: bare "`},
		{"unknown column", map[string]string{FileProducts: "fare_product_id,amout,currency\n"}, "fare_products.txt:1: amout: unknown column"},
		{"unsupported GTFS column", map[string]string{FileLegRules: "network_id,from_area_id,fare_product_id\n"},
			"fare_leg_rules.txt:1: from_area_id: not supported"},
		{"column twice", map[string]string{FileNetworks: "network_id,network_id\n"}, "networks.txt:1: network_id: column named twice"},
		{"required column missing", map[string]string{FileProducts: "fare_product_id,amount\n"}, "fare_products.txt:1: currency: missing"},
		{"id with a space", map[string]string{FileNetworks: "network_id\nbus stop\n"}, `networks.txt:2: network_id: "bus stop": an id has no spaces`},

		// x_tariff.txt.
		{"version 0", map[string]string{FileTariff: tariffHead + "0,UAH,Europe/Kyiv,120\n"}, "x_tariff.txt:2: version: 0 is outside 1..4294967295"},
		{"version not plain", map[string]string{FileTariff: tariffHead + "+2,UAH,Europe/Kyiv,120\n"}, `x_tariff.txt:2: version: "+2" is not a whole number`},
		{"currency", map[string]string{FileTariff: tariffHead + "2,EUR,Europe/Kyiv,120\n"}, `x_tariff.txt:2: currency: "EUR": the card's purse holds UAH`},
		{"time zone", map[string]string{FileTariff: tariffHead + "2,UAH,Mars/Olympus,120\n"}, `x_tariff.txt:2: timezone: "Mars/Olympus" is not an IANA time zone`},
		{"local time zone", map[string]string{FileTariff: tariffHead + "2,UAH,Local,120\n"}, `x_tariff.txt:2: timezone: "Local"`},
		{"passback", map[string]string{FileTariff: tariffHead + "2,UAH,Europe/Kyiv,90000\n"}, "x_tariff.txt:2: passback_seconds: 90000 is outside 0..86400"},
		{"two rows", map[string]string{FileTariff: tariffHead + "2,UAH,Europe/Kyiv,120\n3,UAH,Europe/Kyiv,120\n"}, "x_tariff.txt: 2 rows: want exactly one"},

		// calendar.txt and timeframes.txt.
		{"weekday flag", map[string]string{FileCalendar: calHead + "weekdays,1,1,1,1,2,0,0,20260101,20301231\n"}, `calendar.txt:2: friday: "2": want 0 or 1`},
		{"impossible date", map[string]string{FileCalendar: calHead + "weekdays,1,1,1,1,1,0,0,20260230,20301231\n"}, `calendar.txt:2: start_date: "20260230" is not a date`},
		{"end before start", map[string]string{FileCalendar: calHead + "weekdays,1,1,1,1,1,0,0,20260101,20251231\n"}, "calendar.txt:2: end_date: 20251231 is before start_date 20260101"},
		{"time past 24:00", map[string]string{FileTimeframes: tfHead + "peak,07:00:00,24:00:01,weekdays\n"}, `timeframes.txt:2: end_time: "24:00:01" is not a time of day`},
		{"end not after start", map[string]string{FileTimeframes: tfHead + "peak,10:00:00,07:00:00,weekdays\n"}, "timeframes.txt:2: end_time: 07:00:00 is not after start_time 10:00:00"},
		{"start without end", map[string]string{FileTimeframes: tfHead + "peak,07:00:00,,weekdays\n"}, `timeframes.txt:2: end_time: empty while start_time is "07:00:00"`},
		{"overlap", map[string]string{FileTimeframes: tfHead + "peak,07:00:00,10:00:00,weekdays\npeak,9:30:00,11:00:00,weekdays\n"},
			"timeframes.txt:3: start_time: 9:30:00-11:00:00 overlaps line 2"},

		// rider_categories.txt and fare_products.txt.
		{"two defaults", map[string]string{FileRiders: "rider_category_id,rider_category_name,is_default_fare_category\nadult,A,1\nkid,K,1\n"},
			`rider_categories.txt:3: is_default_fare_category: a second default category ("adult" is one already)`},
		{"amount with three decimals", map[string]string{FileProducts: productHead + "single_bus,Bus,15.000,UAH\n"},
			`fare_products.txt:2: amount: "15.000" is not an amount`},
		{"amount too large", map[string]string{FileProducts: productHead + "single_bus,Bus,2000000,UAH\n"}, "fare_products.txt:2: amount: 2000000 is above 1000000.00"},
		{"product currency", map[string]string{FileProducts: productHead + "single_bus,Bus,15.00,USD\n"}, `fare_products.txt:2: currency: "USD"`},
		{"product twice", map[string]string{FileProducts: productHead + "single_bus,Bus,15.00,UAH\nsingle_bus,Bus,16.00,UAH\n"},
			`fare_products.txt:3: fare_product_id: "single_bus" listed twice`},
		{"product for a benefit category", map[string]string{FileProducts: "fare_product_id,rider_category_id,amount,currency\nsingle_bus,student,7.50,UAH\n"},
			`fare_products.txt:2: rider_category_id: "student": leave empty or name the default category`},

		// fare_leg_rules.txt.
		{"no leg rule", map[string]string{FileLegRules: legHead}, "fare_leg_rules.txt: no rule"},
		{"leg product unknown", map[string]string{FileLegRules: legHead + "municipal,bus,,single_metro\n"}, `fare_leg_rules.txt:2: fare_product_id: "single_metro" is not in fare_products.txt`},
		{"leg network unknown", map[string]string{FileLegRules: legHead + "municipal,metro,,single_bus\n"}, `fare_leg_rules.txt:2: network_id: "metro" is not in networks.txt`},
		{"leg timeframe unknown", map[string]string{FileLegRules: legHead + "municipal,bus,night,single_bus\n"}, `fare_leg_rules.txt:2: from_timeframe_group_id: "night" is not in timeframes.txt`},
		{"leg pays the rider", map[string]string{FileLegRules: legHead + "municipal,bus,,transfer_to_minibus\n"},
			`fare_leg_rules.txt:2: fare_product_id: "transfer_to_minibus" costs -5.00`},
		{"rule priority", map[string]string{FileLegRules: "network_id,fare_product_id,rule_priority\nbus,single_bus,-1\n"}, "fare_leg_rules.txt:2: rule_priority: -1 is outside"},
		{"network never priced", map[string]string{FileLegRules: legHead + "municipal,bus,,single_bus\nmunicipal,tram,,single_tram\nminibus,minibus,,single_minibus\n"},
			`x_routes.txt:2: network_id: "trolleybus" has no rule in fare_leg_rules.txt`},

		// fare_transfer_rules.txt.
		{"transfer leg group unknown", map[string]string{FileTransferRules: transferHead + "municipal,metro,,3600,1,0,transfer_free\n"},
			`fare_transfer_rules.txt:2: to_leg_group_id: "metro" is no leg_group_id`},
		{"transfer count missing", map[string]string{FileTransferRules: transferHead + "municipal,municipal,,3600,1,0,transfer_free\n"},
			"fare_transfer_rules.txt:2: transfer_count: empty"},
		{"transfer count 2", map[string]string{FileTransferRules: transferHead + "municipal,municipal,2,3600,1,0,transfer_free\n"},
			`fare_transfer_rules.txt:2: transfer_count: "2"`},
		{"transfer count between groups", map[string]string{FileTransferRules: transferHead + "municipal,minibus,1,3600,1,1,transfer_to_minibus\n"},
			`fare_transfer_rules.txt:2: transfer_count: "1": GTFS allows it only between equal leg groups`},
		{"duration limit missing", map[string]string{FileTransferRules: transferHead + "municipal,minibus,,,1,1,transfer_to_minibus\n"},
			"fare_transfer_rules.txt:2: duration_limit: empty"},
		{"duration limit type", map[string]string{FileTransferRules: transferHead + "municipal,minibus,,3600,0,1,transfer_to_minibus\n"},
			`fare_transfer_rules.txt:2: duration_limit_type: "0": want 1`},
		{"transfer type 2", map[string]string{FileTransferRules: transferHead + "municipal,minibus,,3600,1,2,transfer_to_minibus\n"},
			"fare_transfer_rules.txt:2: fare_transfer_type: 2 is not supported"},
		{"negative fixed transfer", map[string]string{FileTransferRules: transferHead + "municipal,minibus,,3600,1,0,transfer_to_minibus\n"},
			`fare_transfer_rules.txt:2: fare_product_id: "transfer_to_minibus" costs -5.00: with fare_transfer_type 0`},
		{"transfer pair twice", map[string]string{FileTransferRules: transferHead + "municipal,minibus,,3600,1,1,\nmunicipal,minibus,,1800,1,1,\n"},
			`fare_transfer_rules.txt:3: to_leg_group_id: the pair "municipal" to "minibus" has a rule at line 2`},

		// x_carriers.txt and x_routes.txt.
		{"carrier code twice", map[string]string{FileCarriers: carrierHead + "ATP-1,A,1,0,bus\nPRIVAT-7,P,1,2,minibus\nELEKTROTRANS,E,2,1,tram\n"},
			`x_carriers.txt:3: carrier_code: 1 is "ATP-1"'s code already`},
		{"carrier code 0", map[string]string{FileCarriers: carrierHead + "ATP-1,A,0,0,bus\n"}, "x_carriers.txt:2: carrier_code: 0 is outside 1..65535"},
		{"carrier group 16", map[string]string{FileCarriers: carrierHead + "ATP-1,A,1,16,bus\n"}, "x_carriers.txt:2: carrier_group: 16 is outside 0..15"},
		{"carrier network unknown", map[string]string{FileCarriers: carrierHead + "ATP-1,A,1,0,metro\n"}, `x_carriers.txt:2: network_id: "metro" is not in networks.txt`},
		{"route carrier unknown", map[string]string{FileRoutes: routeHead + "KTE,TB1,101,11,trolleybus\n"}, `x_routes.txt:2: carrier_id: "KTE" is not in x_carriers.txt`},
		{"route type", map[string]string{FileRoutes: routeHead + "ELEKTROTRANS,TB1,101,50,trolleybus\n"}, "x_routes.txt:2: route_type: 50 is not a GTFS route type"},
		{"route code twice", map[string]string{FileRoutes: routeHead + "ELEKTROTRANS,TB1,101,11,trolleybus\nELEKTROTRANS,TB2,101,11,trolleybus\n"},
			`x_routes.txt:3: route_code: 101 is route "TB1"'s code already`},

		// x_benefits.txt.
		{"benefit rider unknown", map[string]string{FileBenefits: benefitHead + "retiree,11,100,0,state,,,\n"}, `x_benefits.txt:2: rider_category_id: "retiree" is not in rider_categories.txt`},
		{"benefit for the default rider", map[string]string{FileBenefits: benefitHead + "adult,11,100,0,state,,,\n"}, `x_benefits.txt:2: rider_category_id: "adult" is the default category`},
		{"rider with two benefits", map[string]string{FileBenefits: benefitHead + "pensioner,11,100,0,state,,,\npensioner,13,100,0,state,,,\n"},
			`x_benefits.txt:3: rider_category_id: "pensioner" has a benefit at line 2`},
		{"card category with a leading zero", map[string]string{FileBenefits: benefitHead + "pensioner,011,100,0,state,,,\n"}, `x_benefits.txt:2: card_category: "011" is not a whole number`},
		{"card category twice", map[string]string{FileBenefits: benefitHead + "pensioner,11,100,0,state,,,\nveteran,11,100,0,state,,,\n"}, "x_benefits.txt:3: card_category: 11 listed twice"},
		{"monthly rides", map[string]string{FileBenefits: benefitHead + "student,31,50,300,city,,,\n"}, "x_benefits.txt:2: monthly_rides: 300 is outside 0..255"},
		{"funding", map[string]string{FileBenefits: benefitHead + "pensioner,11,100,0,EU,,,\n"}, `x_benefits.txt:2: funding_source: "EU": want city or state`},
		{"negative compensation", map[string]string{FileBenefits: benefitHead + "veteran,12,100,0,state,-1.00,,\n"}, "x_benefits.txt:2: compensation_amount: -1.00: a carrier is never charged"},
		{"benefit network unknown", map[string]string{FileBenefits: benefitHead + "schoolchild,41,100,0,city,,tram metro,\n"}, `x_benefits.txt:2: network_ids: "metro" is not in networks.txt`},
		{"benefit carrier unknown", map[string]string{FileBenefits: benefitHead + "large_family,42,50,0,city,,,ATP-1 KTE\n"}, `x_benefits.txt:2: carrier_ids: "KTE" is not in x_carriers.txt`},
		{"benefit network twice", map[string]string{FileBenefits: benefitHead + "schoolchild,41,100,0,city,,tram tram,\n"}, `x_benefits.txt:2: network_ids: "tram" listed twice`},

		// x_passes.txt.
		{"pass code 0", map[string]string{FilePasses: passHead + "0,pass_month_network,31,all\n"}, "x_passes.txt:2: pass_code: 0 is outside 1..65535"},
		{"pass group without carrier", map[string]string{FilePasses: passHead + "1,pass_month_network,31,0 5\n"}, "x_passes.txt:2: carrier_groups: group 5 has no carrier"},
		{"pass group not a number", map[string]string{FilePasses: passHead + "1,pass_month_network,31,tram\n"}, `x_passes.txt:2: carrier_groups: "tram" is not a carrier group`},
		{"pass groups empty", map[string]string{FilePasses: passHead + "1,pass_month_network,31,\n"}, "x_passes.txt:2: carrier_groups: empty"},
		{"pass duration", map[string]string{FilePasses: passHead + "1,pass_month_network,400,all\n"}, "x_passes.txt:2: duration_days: 400 is outside 1..366"},
		{"pass code twice", map[string]string{FilePasses: passHead + "1,pass_month_network,31,all\n1,pass_month_electric,31,1\n"}, "x_passes.txt:3: pass_code: 1 listed twice"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := sample(t)
			for name, content := range c.files {
				if content == remove {
					delete(m, name)
				} else {
					m[name] = &fstest.MapFile{Data: []byte(content)}
				}
			}
			_, err := Parse(m)
			var fe *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), c.want) {
				t.Fatalf("got  %v\nwant ErrInvalid starting %q", err, c.want)
			}
		})
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(sampleDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSubdirectoryRefused(t *testing.T) {
	m := sample(t)
	m["old/tariff.json"] = &fstest.MapFile{Data: []byte("{}")}
	if _, err := Parse(m); !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "old: a directory") {
		t.Fatalf("got %v", err)
	}
}

// FuzzParse replaces one file of the sample city with the fuzzer's bytes,
// so that every file's parser is reached with the others valid. Parse must
// not panic, must refuse with an *Error wrapping ErrInvalid, and what it
// accepts must hold the invariants Decide relies on.
func FuzzParse(f *testing.F) {
	base := sample(f)
	// fs.ReadDir order, so that a seed's index always names the same file.
	entries, err := fs.ReadDir(base, ".")
	if err != nil {
		f.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for i, n := range names {
		f.Add(uint8(i), base[n].Data)
	}
	f.Add(uint8(0), []byte("service_id,monday\n\"x\ny\",1\n"))
	f.Add(uint8(255), []byte("extra"))
	f.Fuzz(func(t *testing.T, which uint8, content []byte) {
		m := fstest.MapFS{}
		for n, file := range base {
			m[n] = file
		}
		name := "unknown.txt"
		if int(which) < len(names) {
			name = names[which]
		}
		m[name] = &fstest.MapFile{Data: content}
		tf, err := Parse(m)
		if err != nil {
			var fe *Error
			if !errors.Is(err, ErrInvalid) || !errors.As(err, &fe) || fe.File == "" || fe.Line < 0 {
				t.Fatalf("error is not a located *Error wrapping ErrInvalid: %v", err)
			}
			return
		}
		if tf.Version == 0 || tf.Location == nil || len(tf.Carriers) == 0 || len(tf.Legs) == 0 {
			t.Fatalf("accepted an incomplete tariff: %+v", tf)
		}
		for _, l := range tf.Legs {
			if l.FareKop < 0 || l.FareKop > maxAmountKop {
				t.Fatalf("leg fare %d accepted", l.FareKop)
			}
		}
		for _, c := range tf.Categories {
			if c.DiscountPct < 0 || c.DiscountPct > 100 || c.CompensationKop < 0 || c.Funding != fare.FundingCity && c.Funding != fare.FundingState {
				t.Fatalf("category %+v accepted", c)
			}
		}
		for _, c := range tf.Carriers {
			if c.Group < 0 || c.Group > 15 || c.Code == 0 {
				t.Fatalf("carrier %+v accepted", c)
			}
		}
		for _, r := range tf.Transfers {
			if r.Within <= 0 || r.Type == fare.TransferFixed && r.AmountKop < 0 {
				t.Fatalf("transfer rule %+v accepted", r)
			}
		}
		for _, tfr := range tf.Timeframes {
			if tfr.Start < 0 || tfr.End > 86400 || tfr.Start >= tfr.End {
				t.Fatalf("timeframe %+v accepted", tfr)
			}
		}
	})
}
