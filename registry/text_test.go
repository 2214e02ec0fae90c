package registry_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/citycard/transit/registry"
)

func TestCleanText(t *testing.T) {
	for _, tc := range []struct {
		in, want, problem string
	}{
		{"Коваленко Йосип", "Коваленко Йосип", ""},
		{"Коваленко И\u0306осип", "Коваленко Йосип", ""}, // NFD in, NFC out
		{"вул. І\u0308жакевича 1", "вул. Їжакевича 1", ""},
		{"O'Neil-Петренко", "O'Neil-Петренко", ""},
		{"Петро \u202eокнелаВ", "", "direction"},
		{"Пет\u200bро", "", "invisible"},
		{"Пет\u00adро", "", "invisible"}, // soft hyphen
		{"Петро\u2066", "", "direction"},
		{"line\nbreak", "", "control"},
		{"nul\x00", "", "control"},
		{"bad \xff byte", "", "UTF-8"},
		{"Пет\ufffdро", "", "replacement"},
		{"a\u2028b", "", "separator"},
		{"priv\ue000", "", "private-use"},
		{"x\uffff", "", "non-character"},
		{" padded", "", "spaces"},
		{strings.Repeat("я", 11), "", "at most 10"},
	} {
		got, err := registry.CleanText("name", tc.in, 10+len("Коваленко Йосип"), true)
		if tc.problem == "" {
			if err != nil || got != tc.want {
				t.Errorf("CleanText(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if tc.problem == "at most 10" {
			_, err = registry.CleanText("name", tc.in, 10, true)
		}
		var fe *registry.FieldError
		if !errors.As(err, &fe) || fe.Field != "name" || !strings.Contains(err.Error(), tc.problem) {
			t.Errorf("CleanText(%q) = %v; want a name FieldError about %q", tc.in, err, tc.problem)
		}
	}
	if _, err := registry.CleanText("contact", "", 10, false); err != nil {
		t.Errorf("an empty optional field: %v", err)
	}
	if _, err := registry.CleanText("name", "  ", 10, true); err == nil {
		t.Error("a blank required field passed")
	}
}

func TestCleanPurpose(t *testing.T) {
	if p, err := registry.CleanPurpose("  заява И\u0306осипа  "); err != nil || p != "заява Йосипа" {
		t.Errorf("CleanPurpose = %q, %v", p, err)
	}
	for _, p := range []string{"a\r\nforged line", "nul\x00", "\u202eevil"} {
		if _, err := registry.CleanPurpose(p); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("CleanPurpose(%q) = %v; want ErrInvalid", p, err)
		}
	}
}

func TestNameKeyFoldsNormalForms(t *testing.T) {
	if a, b := registry.NameKey("Коваленко  Йосип"), registry.NameKey("коваленко И\u0306осип"); a != b {
		t.Errorf("NameKey: %q and %q differ", a, b)
	}
}

// FuzzCleanText: whatever comes in, what comes out is valid NFC with no
// character the registry refuses, within the limit.
func FuzzCleanText(f *testing.F) {
	for _, s := range []string{"Коваленко", "И\u0306", "\u202e", "\xff", "a\nb", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := registry.CleanText("f", s, 50, false)
		if err != nil {
			return
		}
		if !utf8.ValidString(got) || !norm.NFC.IsNormalString(got) || registry.TextProblem(got) != "" || utf8.RuneCountInString(got) > 50 {
			t.Fatalf("CleanText(%q) = %q", s, got)
		}
	})
}
