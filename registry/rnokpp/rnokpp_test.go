package rnokpp_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry/rnokpp"
)

func TestParseValid(t *testing.T) {
	for _, tc := range []struct {
		in     string
		born   string
		female bool
	}{
		// Published examples: a man born 2000-01-01 and a woman born 1984-01-05.
		{"3652504575", "2000-01-01", false},
		{"3068208400", "1984-01-02", true},
		{" 3652504575 ", "2000-01-01", false},
		// A negative weighted sum (first digit 9, the rest 0) must be
		// reduced to 0..10 before the final modulo 10.
		{"9000000002", "2146-05-30", true},
	} {
		n, err := rnokpp.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if got := n.BirthDate().Format(time.DateOnly); got != tc.born {
			t.Errorf("%q: BirthDate = %s, want %s", tc.in, got, tc.born)
		}
		if n.Female() != tc.female {
			t.Errorf("%q: Female = %v, want %v", tc.in, n.Female(), tc.female)
		}
	}
}

func TestParseInvalid(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", rnokpp.ErrFormat},
		{"365250457", rnokpp.ErrFormat},
		{"36525045751", rnokpp.ErrFormat},
		{"36525O4575", rnokpp.ErrFormat}, // a letter O
		{"３６５２５０４５７５", rnokpp.ErrFormat},
		{"3652504576", rnokpp.ErrCheckDigit},
		{"3652504565", rnokpp.ErrCheckDigit},
		{"1234567890", rnokpp.ErrCheckDigit},
	} {
		_, err := rnokpp.Parse(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("Parse(%q) = %v, want %v", tc.in, err, tc.want)
			continue
		}
		if len(tc.in) >= 6 && strings.Contains(err.Error(), tc.in) {
			t.Errorf("Parse(%q): error repeats the number: %v", tc.in, err)
		}
	}
}

// TestCheckDigitCatchesTypos: changing any one digit of a valid number
// gives an invalid one unless the weighted sums differ by a multiple of
// 11 that the final modulo 10 folds (remainders 0 and 10), which the rule
// cannot see.
func TestCheckDigitCatchesTypos(t *testing.T) {
	caught, missed := 0, 0
	for body := 0; body < 1_000_000_000; body += 7_919_911 {
		first9 := fmt.Sprintf("%09d", body)
		valid := first9 + string(rnokpp.CheckDigit(first9))
		if !rnokpp.Valid(valid) {
			t.Fatalf("%s with its own check digit is not valid", valid)
		}
		for i := 0; i < rnokpp.Digits; i++ {
			for d := byte('0'); d <= '9'; d++ {
				if valid[i] == d {
					continue
				}
				typo := valid[:i] + string(d) + valid[i+1:]
				if rnokpp.Valid(typo) {
					missed++
				} else {
					caught++
				}
			}
		}
	}
	if rate := float64(caught) / float64(caught+missed); rate < 0.9 {
		t.Errorf("check digit caught %.1f%% of single-digit typos, want at least 90%%", 100*rate)
	}
}

func TestStringHidesTheNumber(t *testing.T) {
	n, err := rnokpp.Parse("3652504575")
	if err != nil {
		t.Fatal(err)
	}
	if s := fmt.Sprint(n); s != "********75" {
		t.Errorf("fmt.Sprint = %q, want ********75", s)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"3652504575", "3068208400", "", "9000000002", " 1 ", "36525045751", "\x00\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := rnokpp.Parse(s)
		if err != nil {
			if n != "" {
				t.Fatalf("Parse(%q) returned %q with error %v", s, string(n), err)
			}
			return
		}
		if len(n) != rnokpp.Digits || rnokpp.CheckDigit(string(n[:9])) != n[9] {
			t.Fatalf("Parse(%q) accepted %q", s, string(n))
		}
		if again, err := rnokpp.Parse(string(n)); err != nil || again != n {
			t.Fatalf("Parse(Parse(%q)) = %q, %v", s, string(again), err)
		}
		_ = n.BirthDate()
	})
}

func ExampleParse() {
	n, err := rnokpp.Parse("3652504575")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(n, n.BirthDate().Format(time.DateOnly))
	_, err = rnokpp.Parse("3652504576")
	fmt.Println(err)
	// Output:
	// ********75 2000-01-01
	// wrong check digit: the last digit does not match the other nine; check for a mistyped digit
}
