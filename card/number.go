package card

import (
	"fmt"
	"strings"
)

// NumberDigits is how many decimal digits a card number has, check digit
// included.
const NumberDigits = 16

const numberLimit = 1e16

// Number is a city card number: 16 decimal digits, the first four the
// issuer code, then an 11-digit serial, then a Luhn check digit. It is the
// only identifier validators and clearing see.
type Number uint64

// NewNumber builds the number for issuer and serial, computing the check
// digit.
func NewNumber(issuer uint16, serial uint64) (Number, error) {
	if issuer > 9999 {
		return 0, fmt.Errorf("card number: issuer code %d has more than 4 digits", issuer)
	}
	if serial > 99_999_999_999 {
		return 0, fmt.Errorf("card number: serial %d has more than 11 digits", serial)
	}
	body := uint64(issuer)*1e11 + serial
	return Number(body*10 + uint64(luhnDigit(body))), nil
}

// ParseNumber reads a card number as printed: 16 digits, optionally grouped
// with spaces or hyphens.
func ParseNumber(s string) (Number, error) {
	var v uint64
	n := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			if n == NumberDigits {
				return 0, fmt.Errorf("card number %q: more than %d digits", s, NumberDigits)
			}
			v = v*10 + uint64(r-'0')
			n++
		case r == ' ' || r == '-':
		default:
			return 0, fmt.Errorf("card number %q: unexpected character %q; type the 16 digits printed on the card", s, r)
		}
	}
	if n != NumberDigits {
		return 0, fmt.Errorf("card number %q: %d digits, want %d", s, n, NumberDigits)
	}
	num := Number(v)
	if num == 0 {
		return 0, fmt.Errorf("card number %q: %w: all zeros is no card", s, ErrValue)
	}
	if !num.Valid() {
		return 0, fmt.Errorf("card number %q: %w; check for a mistyped digit", s, ErrCheckDigit)
	}
	return num, nil
}

// Valid reports whether n is non-zero, has at most 16 digits and a correct
// check digit. Zero is what an unwritten file holds, never a card.
func (n Number) Valid() bool {
	return n != 0 && uint64(n) < numberLimit && luhnDigit(uint64(n)/10) == uint8(n%10)
}

// Issuer is the issuer code: the first four digits.
func (n Number) Issuer() uint16 { return uint16(uint64(n) / 1e12) }

// String returns the 16 digits, zero-padded, without grouping.
func (n Number) String() string { return fmt.Sprintf("%016d", uint64(n)) }

// Grouped returns the number as printed on the card: four groups of four.
func (n Number) Grouped() string {
	s := n.String()
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// luhnDigit is the check digit to append to body (Luhn mod 10).
func luhnDigit(body uint64) uint8 {
	sum := 0
	double := true // the digit next to the check digit is doubled
	for ; body > 0; body /= 10 {
		d := int(body % 10)
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return uint8((10 - sum%10) % 10)
}
