package desfire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
)

// blockMAC is CMAC (NIST SP 800-38B) over a 64- or 128-bit block cipher,
// with a caller-supplied starting chaining value: DESFire EV1 keeps the
// last CMAC as the IV of the next one, and ISO-mode sessions run it over
// DES and 3DES. hsm/cmac is the AES-only, zero-IV form the HSM needs.
type blockMAC struct {
	b      cipher.Block
	k1, k2 []byte
}

func newBlockMAC(b cipher.Block) *blockMAC {
	bs := b.BlockSize()
	l := make([]byte, bs)
	b.Encrypt(l, l)
	k1 := dbl(l)
	return &blockMAC{b: b, k1: k1, k2: dbl(k1)}
}

// dbl doubles in GF(2^n): Rb is 0x87 for 128-bit blocks, 0x1B for 64-bit.
func dbl(in []byte) []byte {
	out := make([]byte, len(in))
	var carry byte
	for i := len(in) - 1; i >= 0; i-- {
		out[i] = in[i]<<1 | carry
		carry = in[i] >> 7
	}
	rb := byte(0x87)
	if len(in) == 8 {
		rb = 0x1B
	}
	out[len(out)-1] ^= rb & byte(-int8(carry))
	return out
}

// sumIV returns the CMAC of msg chained on iv (zero iv: plain CMAC).
func (m *blockMAC) sumIV(iv, msg []byte) []byte {
	bs := m.b.BlockSize()
	x := append([]byte(nil), iv...)
	for len(msg) > bs {
		subtle.XORBytes(x, x, msg[:bs])
		m.b.Encrypt(x, x)
		msg = msg[bs:]
	}
	last := make([]byte, bs)
	if len(msg) == bs {
		subtle.XORBytes(last, msg, m.k1)
	} else {
		copy(last, msg)
		last[len(msg)] = 0x80
		subtle.XORBytes(last, last, m.k2)
	}
	subtle.XORBytes(x, x, last)
	m.b.Encrypt(x, x)
	return x
}

func newAES(key []byte) (cipher.Block, error) { return aes.NewCipher(key) }
