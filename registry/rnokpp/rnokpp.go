// Package rnokpp checks Ukrainian individual tax registry numbers (РНОКПП,
// "registration number of the taxpayer's account card"): ten digits, the
// first five the holder's birth date as days since 1899-12-31, the ninth
// odd for men and even for women, and the tenth a check digit.
//
// The check digit is the published one: the first nine digits weighted
// -1, 5, 7, 9, 4, 6, 10, 5, 7, summed, taken modulo 11 (never negative)
// and then modulo 10.
package rnokpp

import (
	"errors"
	"fmt"
	"time"
)

// Digits is the length of a registry number.
const Digits = 10

// Errors that Parse wraps; test with errors.Is.
var (
	ErrFormat     = errors.New("not 10 digits")
	ErrCheckDigit = errors.New("wrong check digit")
)

// Number is a registry number that passed Parse: exactly ten ASCII
// digits with a correct check digit.
type Number string

var weights = [Digits - 1]int{-1, 5, 7, 9, 4, 6, 10, 5, 7}

// Parse checks s, with surrounding spaces removed, and returns it as a
// Number. The error says what is wrong without repeating the number, which
// is personal data and ends up in logs.
func Parse(s string) (Number, error) {
	s = trimSpace(s)
	if len(s) != Digits {
		return "", fmt.Errorf("%w: %d characters; type the ten digits of the РНОКПП", ErrFormat, len(s))
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return "", fmt.Errorf("%w: character %d is not a digit; type the ten digits of the РНОКПП", ErrFormat, i+1)
		}
	}
	if CheckDigit(s[:Digits-1]) != s[Digits-1] {
		return "", fmt.Errorf("%w: the last digit does not match the other nine; check for a mistyped digit", ErrCheckDigit)
	}
	return Number(s), nil
}

// Valid reports whether s (without surrounding spaces) is a registry
// number with a correct check digit.
func Valid(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// CheckDigit returns the check digit, as an ASCII digit, for the first
// nine digits of a number. It panics unless first9 is nine ASCII digits.
func CheckDigit(first9 string) byte {
	if len(first9) != Digits-1 {
		panic("rnokpp.CheckDigit: want nine digits")
	}
	sum := 0
	for i, w := range weights {
		d := int(first9[i]) - '0'
		if d < 0 || d > 9 {
			panic("rnokpp.CheckDigit: want nine digits")
		}
		sum += w * d
	}
	r := sum % 11
	if r < 0 { // Go's % keeps the sign of the dividend; the rule does not
		r += 11
	}
	return byte('0' + r%10)
}

// birthEpoch is day 0 of the birth date encoded in the first five digits.
var birthEpoch = time.Date(1899, time.December, 31, 0, 0, 0, 0, time.UTC)

// BirthDate returns the birth date encoded in the first five digits, at
// midnight UTC. The tax service assigns it; it is not guaranteed to match
// the civil record, so callers may warn on a mismatch but should not
// refuse one.
func (n Number) BirthDate() time.Time {
	days := 0
	for i := 0; i < 5 && i < len(n); i++ {
		days = days*10 + int(n[i]-'0')
	}
	return birthEpoch.AddDate(0, 0, days)
}

// Female reports whether the ninth digit is even, as the tax service
// assigns it to women.
func (n Number) Female() bool { return len(n) == Digits && (n[8]-'0')%2 == 0 }

// String returns "**********" with the last two digits, so that a Number
// printed by mistake does not leak; use string(n) for the digits.
func (n Number) String() string {
	if len(n) != Digits {
		return "rnokpp(invalid)"
	}
	return "********" + string(n[Digits-2:])
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
