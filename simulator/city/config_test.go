package city

import (
	"os"
	"strings"
	"testing"

	"github.com/citycard/transit/validator/tariff"
)

func TestDefaultConfigIsAMidSizeUkrainianCity(t *testing.T) {
	cfg := DefaultConfig()
	s := cfg.FullSize()
	if s.Cardholders != 270_000 || s.Benefits != 100_000 || s.Validators < 780 || s.Validators > 820 {
		t.Fatalf("default city: %+v; want 270,000 cardholders, 100,000 with benefits, about 800 validators", s)
	}
	if got := cfg.Size(); got != s {
		t.Fatalf("at scale 1 the city is %+v, at full size %+v", got, s)
	}
	owners := map[string]bool{}
	for _, c := range cfg.Carriers {
		owners[c.Ownership] = true
	}
	if !owners["municipal"] || !owners["private"] {
		t.Fatalf("the default city needs municipal and private carriers: %v", owners)
	}
	tf, err := tariff.Parse(os.DirFS("../../testdata/tariff"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.checkTariff(tf); err != nil {
		t.Fatalf("the default city does not fit the sample tariff: %v", err)
	}
	week, err := LoadConfig("testdata/week.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := week.checkTariff(tf); err != nil {
		t.Fatal(err)
	}
	dishonest, err := LoadConfig("testdata/dishonest.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := dishonest.checkTariff(tf); err != nil || dishonest.Faults.Dishonest.Devices == 0 {
		t.Fatalf("testdata/dishonest.json: %v, %+v", err, dishonest.Faults.Dishonest)
	}
}

func TestScalingKeepsEveryCarrier(t *testing.T) {
	cfg := DefaultConfig()
	full := cfg.FullSize()
	for _, tc := range []struct {
		cards, validators int
	}{{20, 20}, {2000, 20}, {50_000, 200}} {
		cfg.Scale = float64(tc.cards) / float64(full.Cardholders)
		cfg.FleetScale = float64(tc.validators) / float64(full.Validators)
		s := cfg.Size()
		if d := s.Cardholders - tc.cards; d < -8 || d > 8 {
			t.Errorf("scaled to %d cards: %d cardholders", tc.cards, s.Cardholders)
		}
		if s.Validators < tc.validators*3/4 || s.Validators > tc.validators*3/2 {
			t.Errorf("scaled to about %d validators: %d", tc.validators, s.Validators)
		}
		for i, counts := range cfg.vehiclesPerRoute() {
			n := 0
			for _, v := range counts {
				n += v
			}
			if n == 0 {
				t.Errorf("scaled to %d validators, carrier %s has no vehicle", tc.validators, cfg.Carriers[i].ID)
			}
		}
	}
}

func TestParseConfigRefusesMistakes(t *testing.T) {
	good := string(DefaultConfigJSON())
	for _, tc := range []struct {
		name, from, to, want string
	}{
		{"unknown field", `"lost_ack_share"`, `"lost_acks_share"`, "unknown field"},
		{"share above one", `"torn_share": 0.002`, `"torn_share": 1.5`, "torn_share"},
		{"no days", `"days": 7`, `"days": 0`, "days 0"},
		{"unknown pattern", `"pattern": "daytime"`, `"pattern": "nightly"`, "pattern"},
		{"bad start", `"start": "2026-11-26"`, `"start": "26.11.2026"`, "start"},
		{"carrier twice", `{"id": "PRIVAT-7"`, `{"id": "ATP-1"`, "listed twice"},
		{"limit without benefit", `"profile": "adult", "cardholders"`, `"profile": "adult", "limit": 5, "cardholders"`, "limit"},
		{"drift beyond clearing's patience", `"max_seconds": 600`, `"max_seconds": 90000`, "max_seconds"},
		{"dishonest without devices", `"max_seconds": 600}`, `"max_seconds": 600}, "dishonest": {"inflate_share": 0.1}`, "dishonest devices 0"},
		{"dishonest share above one", `"max_seconds": 600}`, `"max_seconds": 600}, "dishonest": {"devices": 2, "inflate_share": 2}`, "inflate_share"},
		{"dishonest devices that do nothing", `"max_seconds": 600}`, `"max_seconds": 600}, "dishonest": {"devices": 2}`, "neither inflate"},
		{"dishonest field misspelt", `"max_seconds": 600}`, `"max_seconds": 600}, "dishonest": {"devices": 2, "invent_a_day": 3}`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatalf("%q is not in city.json", tc.from)
			}
			_, err := ParseConfig([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one about %q", err, tc.want)
			}
		})
	}
}

func TestConfigMustFitTheTariff(t *testing.T) {
	tf, err := tariff.Parse(os.DirFS("../../testdata/tariff"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Population[2].Category = 99
	if err := cfg.checkTariff(tf); err == nil || !strings.Contains(err.Error(), "99") {
		t.Fatalf("category 99 is not in the tariff: %v", err)
	}
	cfg = DefaultConfig()
	cfg.Carriers[0].ID = "BUS-9"
	if err := cfg.checkTariff(tf); err == nil || !strings.Contains(err.Error(), "BUS-9") {
		t.Fatalf("carrier BUS-9 is not in the tariff: %v", err)
	}
}
