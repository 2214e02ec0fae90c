package hsm

import (
	"crypto/aes"
	"testing"
)

// referenceAN10922 is a deliberately naive AN10922 written from the
// application note, independent of the cmac package, for cross-checks.
func referenceAN10922(t testing.TB, key, input []byte) [16]byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	dbl := func(in [16]byte) (out [16]byte) {
		for i := 0; i < 16; i++ {
			out[i] = in[i] << 1
			if i < 15 {
				out[i] |= in[i+1] >> 7
			}
		}
		if in[0]&0x80 != 0 {
			out[15] ^= 0x87
		}
		return out
	}
	var l [16]byte
	b.Encrypt(l[:], l[:])
	k1 := dbl(l)
	k2 := dbl(k1)
	m := append([]byte{0x01}, input...)
	sub := k1
	if len(m) < 32 {
		m = append(m, 0x80)
		for len(m) < 32 {
			m = append(m, 0)
		}
		sub = k2
	}
	var x [16]byte
	for i := 0; i < 16; i++ {
		x[i] = m[i]
	}
	b.Encrypt(x[:], x[:])
	for i := 0; i < 16; i++ {
		x[i] ^= m[16+i] ^ sub[i]
	}
	b.Encrypt(x[:], x[:])
	return x
}
