package registry_test

import (
	"errors"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
)

func TestGuardianshipActive(t *testing.T) {
	d := func(y int, m time.Month, day int) registry.Date { return registry.Date{Year: y, Month: m, Day: day} }
	leap := registry.Guardianship{ChildBirth: d(2008, time.February, 29)}
	for _, tt := range []struct {
		today registry.Date
		want  bool
	}{
		{d(2026, time.February, 28), true},
		{d(2026, time.March, 1), false}, // no 29 February in 2026: of age on 1 March
		{d(2008, time.February, 29), true},
	} {
		if got := leap.Active(tt.today); got != tt.want {
			t.Errorf("born 2008-02-29, on %s: active %v, want %v", tt.today, got, tt.want)
		}
	}
	ended := registry.Guardianship{ChildBirth: d(2015, time.May, 1), Ended: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	if ended.Active(d(2026, time.June, 1)) {
		t.Error("an ended link is active")
	}
}

func TestCheckGuardianship(t *testing.T) {
	today := registry.Date{Year: 2026, Month: time.November, Day: 20}
	parent := registry.Resident{ID: 1, Name: "Parent", BirthDate: registry.Date{Year: 1990, Month: time.January, Day: 1}}
	child := registry.Resident{ID: 2, Name: "Child", BirthDate: registry.Date{Year: 2008, Month: time.November, Day: 21}}
	if ev, err := registry.CheckGuardianship(parent, child, " birth certificate I-КВ 1 ", today); err != nil || ev != "birth certificate I-КВ 1" {
		t.Errorf("a child a day short of 18: %q, %v", ev, err)
	}
	child.BirthDate.Day = 20
	if _, err := registry.CheckGuardianship(parent, child, "birth certificate", today); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("a child 18 today: %v, want ErrInvalid", err)
	}
	child.BirthDate.Day = 21
	if _, err := registry.CheckGuardianship(parent, child, "line\nbreak", today); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("evidence with a line break: %v, want ErrInvalid", err)
	}
}
