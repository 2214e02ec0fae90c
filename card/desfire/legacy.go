package desfire

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"fmt"
)

// KeyType is a DESFire key type, with the bits it has in CreateApplication's
// key byte and in ChangeKey's key number at PICC level.
type KeyType byte

// Key types.
const (
	// KeyDES is a DES or 2K3DES key (16 bytes; DES when both halves are
	// equal). A factory card's PICC master key is the 2K3DES zero key.
	KeyDES KeyType = 0x00
	// Key3K3DES is a three-key 3DES key (24 bytes).
	Key3K3DES KeyType = 0x40
	// KeyAES is an AES-128 key (16 bytes).
	KeyAES KeyType = 0x80
)

func (t KeyType) String() string {
	switch t {
	case KeyDES:
		return "2K3DES"
	case Key3K3DES:
		return "3K3DES"
	case KeyAES:
		return "AES"
	}
	return fmt.Sprintf("KeyType(0x%02X)", byte(t))
}

// KeySize is the length of a key of type t.
func (t KeyType) KeySize() int {
	if t == Key3K3DES {
		return 24
	}
	return 16
}

// Valid reports whether t is one of the three key types.
func (t KeyType) Valid() bool { return t == KeyDES || t == Key3K3DES || t == KeyAES }

// FactoryPICCKey is the PICC master key a DESFire card leaves the factory
// with: the 2K3DES key of 16 zero bytes, version 0.
func FactoryPICCKey() []byte { return make([]byte, 16) }

// NewKeyCipher returns the block cipher of a key: AES, or 3DES for a
// 2K3DES (K1 K2 K1) or 3K3DES key. A 2K3DES key with equal halves is
// single DES, as on the card.
func NewKeyCipher(t KeyType, key []byte) (cipher.Block, error) {
	if len(key) != t.KeySize() {
		return nil, fmt.Errorf("desfire: a %s key is %d bytes, got %d", t, t.KeySize(), len(key))
	}
	switch t {
	case KeyAES:
		return newAES(key)
	case KeyDES:
		k := append(append(make([]byte, 0, 24), key...), key[:8]...)
		return des.NewTripleDESCipher(k)
	case Key3K3DES:
		return des.NewTripleDESCipher(key)
	}
	return nil, fmt.Errorf("desfire: unknown key type %s", t)
}

// isSingleDES reports whether a 2K3DES key is single DES (K1 == K2,
// ignoring the parity bits, which carry the key version).
func isSingleDES(key []byte) bool {
	if len(key) != 16 {
		return false
	}
	for i := range 8 {
		if key[i]&0xFE != key[8+i]&0xFE {
			return false
		}
	}
	return true
}

// ISOSessionKey derives the session key of AuthenticateISO from RndA and
// RndB (8 bytes each for DES/2K3DES, 16 for 3K3DES) and returns its cipher:
//
//	DES     RndA[0:4] RndB[0:4]
//	2K3DES  RndA[0:4] RndB[0:4] RndA[4:8] RndB[4:8]
//	3K3DES  RndA[0:4] RndB[0:4] RndA[6:10] RndB[6:10] RndA[12:16] RndB[12:16]
func ISOSessionKey(t KeyType, key, rndA, rndB []byte) ([]byte, cipher.Block, error) {
	var k []byte
	switch {
	case t == Key3K3DES:
		k = bytes.Join([][]byte{rndA[0:4], rndB[0:4], rndA[6:10], rndB[6:10], rndA[12:16], rndB[12:16]}, nil)
		b, err := des.NewTripleDESCipher(k)
		return k, b, err
	case t == KeyDES && isSingleDES(key):
		k = bytes.Join([][]byte{rndA[0:4], rndB[0:4]}, nil)
		b, err := des.NewCipher(k)
		return k, b, err
	case t == KeyDES:
		k = bytes.Join([][]byte{rndA[0:4], rndB[0:4], rndA[4:8], rndB[4:8]}, nil)
		b, err := NewKeyCipher(KeyDES, k)
		return k, b, err
	}
	return nil, nil, fmt.Errorf("desfire: AuthenticateISO with a %s key", t)
}

// randomSize is the challenge length of AuthenticateISO with a key of type t.
func randomSize(t KeyType) int {
	if t == KeyDES {
		return 8
	}
	return 16
}

// AuthenticateISO runs the ISO three-pass authentication (0x1A) with a
// DES, 2K3DES or 3K3DES key, as a factory card's PICC master key needs,
// and opens a session in ISO mode: CBC over the exchange, CRC32 and CMAC
// like an AES session, on 8-byte blocks.
func (c *Card) AuthenticateISO(keyNo byte, t KeyType, key []byte) error {
	c.forgetSession()
	if t != KeyDES && t != Key3K3DES {
		return fmt.Errorf("desfire: AuthenticateISO key %d: a %s key authenticates with AuthenticateAES", keyNo, t)
	}
	block, err := NewKeyCipher(t, key)
	if err != nil {
		return fmt.Errorf("desfire: AuthenticateISO key %d: %w", keyNo, err)
	}
	n := randomSize(t)
	encB, st, err := c.transmit(InsAuthenticateISO, []byte{keyNo})
	if err != nil {
		return err
	}
	if st != StatusAdditionalFrame {
		return &StatusError{Command: InsAuthenticateISO, Status: st}
	}
	if len(encB) != n {
		return fmt.Errorf("%w: AuthenticateISO: challenge of %d bytes, want %d for a %s key", ErrMalformedResponse, len(encB), n, t)
	}
	rndB, iv := AuthStep(block, make([]byte, 8), encB, false)
	rndA := make([]byte, n)
	if _, err := c.rand.Read(rndA); err != nil {
		return fmt.Errorf("desfire: AuthenticateISO: random RndA: %w", err)
	}
	token := append(append(make([]byte, 0, 2*n), rndA...), RotateLeft(rndB)...)
	encAB, iv := AuthStep(block, iv, token, true)
	encA, st, err := c.transmit(InsAdditionalFrame, encAB)
	if err != nil {
		return err
	}
	if st != StatusOK {
		return &StatusError{Command: InsAuthenticateISO, Status: st}
	}
	if len(encA) != n {
		return fmt.Errorf("%w: AuthenticateISO: answer of %d bytes, want %d", ErrMalformedResponse, len(encA), n)
	}
	rndA2, _ := AuthStep(block, iv, encA, false)
	if subtle.ConstantTimeCompare(rndA2, RotateLeft(rndA)) != 1 {
		return fmt.Errorf("desfire: AuthenticateISO key %d: %w", keyNo, ErrCardNotAuthentic)
	}
	_, sb, err := ISOSessionKey(t, key, rndA, rndB)
	if err != nil {
		return err
	}
	c.s = NewSessionCipher(keyNo, t, sb)
	return nil
}
