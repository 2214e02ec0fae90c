package card

import (
	"errors"
	"testing"
)

func TestNumber(t *testing.T) {
	tests := []struct {
		in      string
		want    Number
		wantErr error
	}{
		{in: "4000 0000 0000 0002", want: 4000000000000002},
		{in: "4111-1111-1111-1111", want: 4111111111111111},
		{in: "0000000000000000", wantErr: ErrValue}, // zero is no card
		{in: "4111111111111112", wantErr: ErrCheckDigit},
		{in: "411111111111111"},   // 15 digits
		{in: "41111111111111110"}, // 17 digits
		{in: "4111 1111 1111 111x"},
		{in: ""},
	}
	for _, tt := range tests {
		got, err := ParseNumber(tt.in)
		if tt.want != 0 {
			if err != nil || got != tt.want {
				t.Errorf("ParseNumber(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseNumber(%q) = %v, want error", tt.in, got)
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseNumber(%q) error %v, want %v", tt.in, err, tt.wantErr)
		}
	}
}

func TestNewNumber(t *testing.T) {
	n, err := NewNumber(9804, 12345678901)
	if err != nil {
		t.Fatal(err)
	}
	if !n.Valid() || n.Issuer() != 9804 || n.String()[:15] != "980412345678901" {
		t.Errorf("NewNumber = %s (issuer %d, valid %v)", n, n.Issuer(), n.Valid())
	}
	if got := n.Grouped(); got != "9804 1234 5678 9014" {
		t.Errorf("Grouped = %q", got)
	}
	back, err := ParseNumber(n.Grouped())
	if err != nil || back != n {
		t.Errorf("ParseNumber(Grouped) = %v, %v", back, err)
	}
	// Every single-digit change must break the check digit.
	s := []byte(n.String())
	for i := range s {
		for d := byte('0'); d <= '9'; d++ {
			if d == s[i] {
				continue
			}
			c := append([]byte(nil), s...)
			c[i] = d
			if _, err := ParseNumber(string(c)); err == nil {
				t.Errorf("%s accepted (digit %d changed)", c, i)
			}
		}
	}
	if _, err := NewNumber(10000, 1); err == nil {
		t.Error("issuer 10000 accepted")
	}
	if _, err := NewNumber(1, 100_000_000_000); err == nil {
		t.Error("12-digit serial accepted")
	}
	if Number(1e16 + 6).Valid() {
		t.Error("17-digit number valid")
	}
}

func FuzzParseNumber(f *testing.F) {
	f.Add("4000 0000 0000 0002")
	f.Add("x")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseNumber(s)
		if err != nil {
			return
		}
		if !n.Valid() {
			t.Fatalf("ParseNumber(%q) = invalid %v", s, n)
		}
		if back, err := ParseNumber(n.String()); err != nil || back != n {
			t.Fatalf("round trip %v: %v, %v", n, back, err)
		}
	})
}
