package migration

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoad(t *testing.T) {
	fsys := fstest.MapFS{
		"m/0002_more.sql":  {Data: []byte("B")},
		"m/0001_first.sql": {Data: []byte("A")},
	}
	ms, err := Load(fsys, "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Version != 1 || ms[0].SQL != "A" || ms[1].Name != "0002_more.sql" {
		t.Fatalf("loaded %+v", ms)
	}
	for name, bad := range map[string]fstest.MapFS{
		"gap":     {"m/0001_a.sql": {}, "m/0003_c.sql": {}},
		"no num":  {"m/first.sql": {}},
		"zero":    {"m/0000_a.sql": {}},
		"not sql": {"m/0001_a.txt": {}},
	} {
		if _, err := Load(bad, "m"); err == nil || !strings.Contains(err.Error(), "embedded migration") {
			t.Errorf("%s: got %v", name, err)
		}
	}
}
