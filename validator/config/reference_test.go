package config

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// field is one leaf of the configuration as JSON names it.
type field struct {
	name string // dotted: kafka.topic
	typ  reflect.Type
	path []int // index path in Config
}

func fields(t reflect.Type, prefix string, index []int) []field {
	var out []field
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		if f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeFor[Duration]() {
			out = append(out, fields(f.Type, prefix+name+".", idx)...)
			continue
		}
		out = append(out, field{name: prefix + name, typ: f.Type, path: idx})
	}
	return out
}

// docType is how REFERENCE.md may name a Go type.
func docTypes(t reflect.Type) []string {
	switch {
	case t == reflect.TypeFor[Duration]():
		return []string{"duration"}
	case t.Kind() == reflect.String:
		return []string{"string", "path", "URL", "host:port", "time zone"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return []string{"integer"}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return []string{"list of strings"}
	}
	return nil
}

// render writes a loaded value as the default column does.
func render(v reflect.Value) string {
	if d, ok := v.Interface().(Duration); ok {
		s := time.Duration(d).String()
		s = strings.TrimSuffix(strings.TrimSuffix(s, "0s"), "0m") // 48h0m0s -> 48h
		return s
	}
	return fmt.Sprint(v.Interface())
}

// TestReferenceCoversEveryField checks REFERENCE.md against Config: a row
// for every field and no other, the right type, "required" exactly for
// the fields without which Load fails, and the default Load fills in.
func TestReferenceCoversEveryField(t *testing.T) {
	doc, err := os.ReadFile("REFERENCE.md")
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ typ, required, def, meaning string }
	rows := map[string]row{}
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 5 {
			t.Fatalf("REFERENCE.md row %q: want 5 cells", line)
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[strings.Trim(cells[0], "`")] = row{cells[1], cells[2], cells[3], cells[4]}
	}

	// A complete configuration: every field set.
	full := map[string]any{
		"device": "bus-1", "device_number": 7, "carrier": "ATP-1", "route": "12", "vehicle": "0417",
		"carrier_number": 1, "route_number": 12, "reader": "R", "journal": "j.db", "keystore": "k", "tariff": "t",
		"hotlist_dir": "h", "hotlist_max_age": "24h", "updates_url": "https://registry.example/v1/validator",
		"metrics_listen": "127.0.0.1:9464", "time_zone": "UTC", "kafka": map[string]any{"brokers": []string{"k:9092"}, "topic": "x"},
		"upload_interval": "1s", "batch_size": 10,
	}
	dir := t.TempDir()
	load := func(doc map[string]any) (*Config, error) {
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, "v.json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p)
	}
	if _, err := load(full); err != nil {
		t.Fatalf("the complete configuration does not load: %v", err)
	}
	all := fields(reflect.TypeFor[Config](), "", nil)
	seen := map[string]bool{}
	for _, f := range all {
		seen[f.name] = true
		r, ok := rows[f.name]
		if !ok {
			t.Errorf("REFERENCE.md has no row for %q", f.name)
			continue
		}
		if want := docTypes(f.typ); !contains(want, r.typ) {
			t.Errorf("%s: type %q, want one of %q", f.name, r.typ, want)
		}
		if len(r.meaning) < 20 {
			t.Errorf("%s: the meaning %q says too little", f.name, r.meaning)
		}
		// Without the field: refused if required, else the default.
		without := clone(full)
		if top, sub, nested := strings.Cut(f.name, "."); nested {
			without[top] = clone(without[top].(map[string]any))
			delete(without[top].(map[string]any), sub)
		} else {
			delete(without, f.name)
		}
		c, err := load(without)
		switch {
		case r.required == "yes" && err == nil:
			t.Errorf("%s is documented as required, but a file without it loads", f.name)
		case r.required == "no" && err != nil:
			t.Errorf("%s is documented as optional, but a file without it is refused: %v", f.name, err)
		case r.required != "yes" && r.required != "no":
			t.Errorf("%s: required %q, want yes or no", f.name, r.required)
		case err == nil:
			v := reflect.ValueOf(*c).FieldByIndex(f.path)
			got := render(v)
			switch {
			case v.IsZero() && r.def != "none" && r.def != "0" && !(f.name == "hotlist_max_age" && r.def == "48h"):
				t.Errorf("%s: Load leaves it empty, the reference says the default is %q (write none)", f.name, r.def)
			case !v.IsZero() && f.name == "hotlist_dir":
				if !strings.Contains(r.def, "beside the journal") || filepath.Dir(got) != filepath.Dir(c.Journal) {
					t.Errorf("hotlist_dir: default %q, documented %q", got, r.def)
				}
			case !v.IsZero() && r.def != got:
				t.Errorf("%s: Load fills in %q, the reference says %q", f.name, got, r.def)
			}
		}
	}
	for name := range rows {
		if !seen[name] {
			t.Errorf("REFERENCE.md documents %q, which Config does not have", name)
		}
	}
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
