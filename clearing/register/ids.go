package register

import (
	"fmt"
	"math/big"
	"strings"
)

// CheckEDRPOU checks a Ukrainian legal entity's code in the Unified State
// Register (ЄДРПОУ): 8 digits, the last a check digit computed as the
// State Statistics Service defines it: weights 1..7 (7, 1..6 for codes
// from 30000000 to 60000000), the sum modulo 11, and when that is 10 the
// weights plus 2, and 10 again counting as 0.
func CheckEDRPOU(code string) error {
	if len(code) != 8 || strings.Trim(code, "0123456789") != "" {
		return fmt.Errorf("EDRPOU %q: want 8 digits", code)
	}
	if want := edrpouDigit(code[:7]); code[7]-'0' != want {
		return fmt.Errorf("EDRPOU %q: the check digit is wrong (want %d): check for a typo", code, want)
	}
	return nil
}

func edrpouDigit(first7 string) byte {
	n := 0
	for i := range 7 {
		n = n*10 + int(first7[i]-'0')
	}
	weights := []int{1, 2, 3, 4, 5, 6, 7}
	if n >= 3000000 && n <= 6000000 { // the first seven digits of 30000000..60000000
		weights = []int{7, 1, 2, 3, 4, 5, 6}
	}
	sum := func(add int) int {
		s := 0
		for i, w := range weights {
			s += int(first7[i]-'0') * (w + add)
		}
		return s % 11
	}
	d := sum(0)
	if d == 10 {
		d = sum(2)
	}
	if d == 10 {
		d = 0
	}
	return byte(d)
}

// CheckIBAN checks a Ukrainian IBAN: "UA", two check digits, the bank's
// 6-digit code and 19 digits or capital letters of the account, 29
// characters in all (spaces allowed between groups, as it is printed),
// and the ISO 13616 check (mod 97 = 1). It returns the IBAN without
// spaces.
func CheckIBAN(iban string) (string, error) {
	s := strings.ReplaceAll(strings.TrimSpace(iban), " ", "")
	if len(s) != 29 || !strings.HasPrefix(s, "UA") {
		return "", fmt.Errorf("IBAN %q: a Ukrainian IBAN is UA and 27 more characters", iban)
	}
	if strings.Trim(s[2:10], "0123456789") != "" || strings.Trim(s[10:], "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return "", fmt.Errorf("IBAN %q: after UA come 2 check digits, 6 digits of the bank's code and 19 digits or capital letters", iban)
	}
	var digits strings.Builder
	for _, r := range s[4:] + s[:4] {
		if r >= 'A' && r <= 'Z' {
			fmt.Fprintf(&digits, "%d", r-'A'+10)
		} else {
			digits.WriteRune(r)
		}
	}
	n, _ := new(big.Int).SetString(digits.String(), 10)
	if new(big.Int).Mod(n, big.NewInt(97)).Int64() != 1 {
		return "", fmt.Errorf("IBAN %q: the check digits do not match: check for a typo", iban)
	}
	return s, nil
}

// GroupIBAN prints an IBAN in groups of four, as banks print it.
func GroupIBAN(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}
