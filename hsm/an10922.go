package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"fmt"

	"github.com/citycard/transit/hsm/cmac"
)

// MaxDiversifyInput is the longest diversification input AN10922 allows
// for AES-128 (0x01 || input fills at most two blocks).
const MaxDiversifyInput = 31

// an10922 derives an AES-128 key per NXP AN10922 section 2.2: the message
// 0x01 || input is padded to 32 bytes when shorter and CMAC'd with the
// subkey K2 when padded, K1 when not. From 17 bytes on this equals plain
// CMAC; below, AN10922 pads to two blocks where CMAC pads to one.
func an10922(b cipher.Block, m *cmac.MAC, input []byte) ([16]byte, error) {
	if len(input) == 0 || len(input) > MaxDiversifyInput {
		return [16]byte{}, fmt.Errorf("diversification input is %d bytes; AN10922 needs 1 to %d", len(input), MaxDiversifyInput)
	}
	var msg [32]byte
	msg[0] = 0x01
	n := 1 + copy(msg[1:], input)
	if n >= 17 {
		return m.Sum(msg[:n]), nil
	}
	msg[n] = 0x80
	_, k2 := m.Subkeys()
	// Two-block CMAC with the second block padded and masked by K2.
	var x [aes.BlockSize]byte
	b.Encrypt(x[:], msg[:16])
	subtle.XORBytes(x[:], x[:], msg[16:])
	subtle.XORBytes(x[:], x[:], k2[:])
	b.Encrypt(x[:], x[:])
	return x, nil
}
