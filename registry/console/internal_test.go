package console

import (
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/citycard/transit/registry"
)

func TestAcceptLanguage(t *testing.T) {
	for header, want := range map[string]string{
		"":                               "uk",
		"uk":                             "uk",
		"en":                             "en",
		"EN-us":                          "en",
		"fr-FR, de;q=0.9":                "uk",
		"fr, en;q=0.1":                   "en",
		"en;q=0.3, uk-UA;q=0.7":          "uk",
		"uk;q=0, en;q=0.1":               "en",
		"en;q=bad, uk;q=0.2":             "uk",
		"en;q=2, uk;q=0.2":               "uk",
		"*, en;q=0.5":                    "en",
		"uk-UA,uk;q=0.9,en;q=0.8":        "uk",
		"en-GB;q=0.9,en;q=0.9,uk;q=0.95": "uk",
	} {
		if got := acceptLanguage(header); got != want {
			t.Errorf("acceptLanguage(%q) = %q, want %q", header, got, want)
		}
	}
}

// TestCatalogue checks that both languages have every message: the keys
// the templates name, and the keys the code builds from statuses,
// reasons, roles and error codes.
func TestCatalogue(t *testing.T) {
	en, uk := slices.Sorted(maps.Keys(messages["en"])), slices.Sorted(maps.Keys(messages["uk"]))
	for _, k := range en {
		if _, ok := messages["uk"][k]; !ok {
			t.Errorf("uk lacks %q", k)
		}
	}
	for _, k := range uk {
		if _, ok := messages["en"][k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
	need := []string{"err.400", "err.403", "err.404", "err.409", "err.500", "err.503"}
	for _, s := range registry.Statuses {
		need = append(need, "status."+string(s))
	}
	for _, r := range append(slices.Clone(registry.BlockReasons), registry.ReasonReplaced) {
		need = append(need, "reason."+string(r))
	}
	for _, r := range []registry.Role{registry.RoleDesk, registry.RoleSupervisor, registry.RoleFinance, registry.RoleAuditor, registry.RoleResident} {
		need = append(need, "role."+string(r))
	}
	for _, f := range []registry.Funding{registry.FundingCity, registry.FundingState} {
		need = append(need, "funding."+string(f))
	}
	for _, c := range []uint16{registry.CategoryPensioner, registry.CategoryVeteran, registry.CategoryDisability, registry.CategoryStudent} {
		need = append(need, "category."+strconv.Itoa(int(c)))
	}
	named := regexp.MustCompile(`\.T "([a-z0-9.-]+)"`)
	files, err := fs.Glob(assets, "templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v %v", files, err)
	}
	for _, name := range files {
		b, err := fs.ReadFile(assets, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range named.FindAllStringSubmatch(string(b), -1) {
			need = append(need, m[1])
		}
	}
	for _, k := range need {
		for _, lang := range languages {
			if _, ok := messages[lang][k]; !ok {
				t.Errorf("%s lacks %q", lang, k)
			}
		}
	}
	if got := translate("en", "no.such.key"); got != "[no.such.key]" {
		t.Errorf("a missing key shows as %q", got)
	}
}

func TestParseUAH(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "12": 1200, "12.5": 1250, "12,50": 1250, " 3.07 ": 307, "5000.00": 500000} {
		if got, err := parseUAH(in); err != nil || got != want {
			t.Errorf("parseUAH(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.234", "1e3", "12.", ".5", "1 000", "abc", "1234567890"} {
		if got, err := parseUAH(in); err == nil {
			t.Errorf("parseUAH(%q) = %d, want an error", in, got)
		}
	}
}
