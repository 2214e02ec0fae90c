package tariff

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSample(t *testing.T) {
	tf, err := Load(filepath.Join("..", "..", "testdata", "tariff.json"))
	if err != nil {
		t.Fatal(err)
	}
	if tf.Version != 1 || tf.FareKop["ATP-1"] != 1500 || tf.Passback != 120*time.Second {
		t.Fatalf("sample tariff read as %+v", tf)
	}
	if c := tf.Categories["31"]; c.DiscountPct != 50 || c.Funding != "city" {
		t.Fatalf("category 31 = %+v", c)
	}
}

func TestParseRejects(t *testing.T) {
	ok := `{"version":1,"fares":[{"carrier":"A","fare_kop":100}],"categories":[{"code":"11","discount_pct":100,"funding":"state"}]}`
	if _, err := Parse([]byte(ok), "t.json"); err != nil {
		t.Fatalf("valid tariff refused: %v", err)
	}
	for _, tc := range []struct{ name, doc, want string }{
		{"syntax", "{\n\"version\": 1,\n,}", "t.json:3"},
		{"unknown field", `{"version":1,"fare":[]}`, `unknown field "fare"`},
		{"no version", `{"fares":[{"carrier":"A","fare_kop":1}]}`, "version"},
		{"no fares", `{"version":1}`, "fares"},
		{"zero fare", `{"version":1,"fares":[{"carrier":"A","fare_kop":0}]}`, "fares[0].fare_kop"},
		{"dup carrier", `{"version":1,"fares":[{"carrier":"A","fare_kop":1},{"carrier":"A","fare_kop":2}]}`, "fares[1].carrier"},
		{"bad code", `{"version":1,"fares":[{"carrier":"A","fare_kop":1}],"categories":[{"code":"011","discount_pct":1,"funding":"city"}]}`, "categories[0].code"},
		{"discount", `{"version":1,"fares":[{"carrier":"A","fare_kop":1}],"categories":[{"code":"1","discount_pct":101,"funding":"city"}]}`, "discount_pct"},
		{"funding", `{"version":1,"fares":[{"carrier":"A","fare_kop":1}],"categories":[{"code":"1","discount_pct":1,"funding":"EU"}]}`, "funding"},
		{"two values", ok + ok, "more than one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "t.json")
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrInvalid mentioning %q", err, tc.want)
			}
		})
	}
}

func TestLoadMissing(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tariff.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tf, err := Parse(b, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		if tf.Version == 0 || len(tf.FareKop) == 0 {
			t.Fatalf("accepted an incomplete tariff: %+v", tf)
		}
	})
}
