// Package cmac implements AES-CMAC (NIST SP 800-38B, RFC 4493).
//
// The standard library and golang.org/x/crypto have no CMAC; DESFire secure
// messaging, NXP AN10922 key diversification and batch authentication all
// need it, so it lives here as one small leaf package.
package cmac

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
)

// Size is the length in bytes of a full AES-CMAC.
const Size = aes.BlockSize

// MAC computes AES-CMAC over messages with a fixed key. It keeps no state
// between calls and is safe for concurrent use.
type MAC struct {
	block  cipher.Block
	k1, k2 [aes.BlockSize]byte
}

// New returns a MAC for an AES-128, -192 or -256 key.
func New(key []byte) (*MAC, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cmac: %w", err)
	}
	return NewWithCipher(b), nil
}

// NewWithCipher returns a MAC over an existing AES block cipher.
func NewWithCipher(b cipher.Block) *MAC {
	m := &MAC{block: b}
	var l [aes.BlockSize]byte
	b.Encrypt(l[:], l[:])
	m.k1 = shift(l)
	m.k2 = shift(m.k1)
	return m
}

// Subkeys returns K1 and K2 (RFC 4493 section 2.3). DESFire secure
// messaging needs them to pad its running-IV CMAC.
func (m *MAC) Subkeys() (k1, k2 [aes.BlockSize]byte) { return m.k1, m.k2 }

// shift doubles a value in GF(2^128): left shift by one bit, and XOR with
// Rb (0x87) when the top bit was set.
func shift(in [aes.BlockSize]byte) [aes.BlockSize]byte {
	var out [aes.BlockSize]byte
	var carry byte
	for i := aes.BlockSize - 1; i >= 0; i-- {
		out[i] = in[i]<<1 | carry
		carry = in[i] >> 7
	}
	// Constant time: mask is 0xff when the top bit was set.
	out[aes.BlockSize-1] ^= 0x87 & byte(-int8(carry))
	return out
}

// Sum returns the 16-byte CMAC of msg.
func (m *MAC) Sum(msg []byte) [Size]byte {
	var iv [aes.BlockSize]byte
	return m.SumIV(iv, msg)
}

// SumIV returns the CMAC of msg computed with a starting chaining value iv
// instead of zero. DESFire EV1 keeps the last CMAC as the IV of the next
// command; with a zero iv this is plain CMAC.
func (m *MAC) SumIV(iv [aes.BlockSize]byte, msg []byte) [Size]byte {
	x := iv
	n := len(msg)
	// Process every full block but the last.
	for n > aes.BlockSize {
		subtle.XORBytes(x[:], x[:], msg[:aes.BlockSize])
		m.block.Encrypt(x[:], x[:])
		msg = msg[aes.BlockSize:]
		n -= aes.BlockSize
	}
	var last [aes.BlockSize]byte
	if n == aes.BlockSize {
		subtle.XORBytes(last[:], msg, m.k1[:])
	} else {
		copy(last[:], msg)
		last[n] = 0x80
		subtle.XORBytes(last[:], last[:], m.k2[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	m.block.Encrypt(x[:], x[:])
	return x
}

// Verify reports whether tag is a valid CMAC of msg, comparing in constant
// time. Only full 16-byte tags are accepted.
func (m *MAC) Verify(msg, tag []byte) bool {
	sum := m.Sum(msg)
	return len(tag) == Size && subtle.ConstantTimeCompare(sum[:], tag) == 1
}
