package register_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/citycard/transit/clearing/register"
)

func TestSample(t *testing.T) {
	r, err := register.Load("../../testdata/finance")
	if err != nil {
		t.Fatal(err)
	}
	c, ok := r.Carrier("ATP-1")
	if !ok || c.EDRPOU != "03301009" || c.IBAN != "UA203052990000026001000000101" || c.ContractDate.Format("02.01.2006") != "15.01.2026" {
		t.Errorf("ATP-1 = %+v", c)
	}
	if got := r.CategoryName("uk", "11"); got != "Пенсіонери за віком" {
		t.Errorf("category 11 in Ukrainian: %q", got)
	}
	if got := r.CategoryName("en", "12"); got != "War veterans" {
		t.Errorf("category 12 in English: %q", got)
	}
	if got := r.CategoryName("uk", "99"); got != "99" {
		t.Errorf("an unknown category: %q", got)
	}
	if got := register.FundingName("uk", "state"); got != "державний бюджет" {
		t.Errorf("funding: %q", got)
	}
	if got := strings.Join(r.Carriers(), " "); got != "ATP-1 ELEKTROTRANS PRIVAT-7" {
		t.Errorf("carriers %q", got)
	}
	if register.GroupIBAN(c.IBAN) != "UA20 3052 9900 0002 6001 0000 0010 1" {
		t.Errorf("GroupIBAN = %q", register.GroupIBAN(c.IBAN))
	}
}

func TestIDs(t *testing.T) {
	for _, ok := range []string{"00032129", "14360570", "03301009"} {
		if err := register.CheckEDRPOU(ok); err != nil {
			t.Errorf("CheckEDRPOU(%s): %v", ok, err)
		}
	}
	for _, bad := range []string{"00032128", "1436057", "1436057a", "", "143605700"} {
		if err := register.CheckEDRPOU(bad); err == nil {
			t.Errorf("CheckEDRPOU(%q) passed", bad)
		}
	}
	if _, err := register.CheckIBAN("UA21 3223 1300 0002 6007 2335 6600 1"); err != nil {
		t.Errorf("NBU's sample IBAN: %v", err)
	}
	for _, bad := range []string{"UA213223130000026007233566002", "UA21322313000002600723356600", "PL61109010140000071219812874",
		"UA21322313000002600723356600a", "UAXX3223130000026007233566001"} {
		if _, err := register.CheckIBAN(bad); err == nil {
			t.Errorf("CheckIBAN(%q) passed", bad)
		}
	}
}

func TestRefusals(t *testing.T) {
	head := "carrier_id,legal_name,edrpou,address,iban,contract_number,contract_date\n"
	good := `ATP-1,КП АТП-1,03301009,"вул. Транспортна, 1",UA203052990000026001000000101,К-17,2026-01-15` + "\n"
	for name, c := range map[string]struct{ carriers, categories, want string }{
		"bad iban":      {head + strings.Replace(good, "0101,", "0102,", 1), "", "carriers.csv:2: iban"},
		"bad edrpou":    {head + strings.Replace(good, "03301009", "03301008", 1), "", "carriers.csv:2: edrpou"},
		"twice":         {head + good + good, "", "listed twice"},
		"bidi":          {head + strings.Replace(good, "КП АТП-1", "КП \u202eАТП", 1), "", "legal_name"},
		"no date":       {head + strings.Replace(good, "2026-01-15", "15.01.2026", 1), "", "contract_date"},
		"column":        {strings.Replace(head, "iban", "ibn", 1) + good, "", `unknown column "ibn"`},
		"category code": {head + good, "card_category,name_uk,name_en\n011,Пенсіонери,\n", "categories.csv:2: card_category"},
		"no carriers":   {"", "", "carriers.csv"},
	} {
		fsys := fstest.MapFS{}
		if c.carriers != "" {
			fsys["carriers.csv"] = &fstest.MapFile{Data: []byte(c.carriers)}
		}
		if c.categories != "" {
			fsys["categories.csv"] = &fstest.MapFile{Data: []byte(c.categories)}
		}
		_, err := register.Parse(fsys)
		if !errors.Is(err, register.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid mentioning %q", name, err, c.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("carrier_id,legal_name,edrpou,address,iban,contract_number,contract_date\nA,B,03301009,C,UA203052990000026001000000101,K,2026-01-15\n"),
		[]byte("card_category,name_uk,name_en\n11,a,b\n"))
	f.Fuzz(func(t *testing.T, carriers, categories []byte) {
		r, err := register.Parse(fstest.MapFS{"carriers.csv": {Data: carriers}, "categories.csv": {Data: categories}})
		if err != nil {
			return
		}
		for _, id := range r.Carriers() {
			c, _ := r.Carrier(id)
			if register.CheckEDRPOU(c.EDRPOU) != nil {
				t.Fatalf("accepted a bad EDRPOU %q", c.EDRPOU)
			}
		}
	})
}
