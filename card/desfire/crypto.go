package desfire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// CRC32 is DESFire's CRC: the IEEE polynomial, reflected, initial value
// 0xFFFFFFFF and, unlike zlib's, no final XOR.
func CRC32(data []byte) uint32 { return ^crc32.ChecksumIEEE(data) }

// appendCRC32 appends CRC32(data) least significant byte first, as the
// card sends it.
func appendCRC32(b []byte, crc uint32) []byte { return binary.LittleEndian.AppendUint32(b, crc) }

// SessionKey derives the EV1 AES session key from the two 16-byte
// challenges: RndA[0:4] RndB[0:4] RndA[12:16] RndB[12:16].
func SessionKey(rndA, rndB []byte) []byte {
	k := make([]byte, 0, 16)
	k = append(k, rndA[0:4]...)
	k = append(k, rndB[0:4]...)
	k = append(k, rndA[12:16]...)
	return append(k, rndB[12:16]...)
}

// RotateLeft returns b rotated left by one byte (RndB → RndB').
func RotateLeft(b []byte) []byte {
	out := make([]byte, 0, len(b))
	if len(b) == 0 {
		return out
	}
	return append(append(out, b[1:]...), b[0])
}

// Session is the EV1 secure-messaging state shared by reader and card
// after authentication: the session key and the running IV. Both sides
// make the same calls in the same order, so their IVs stay equal; any
// difference shows up as a MAC or CRC failure on the next exchange.
//
// An AES session (AuthenticateAES) works on 16-byte blocks; a DES, 2K3DES
// or 3K3DES session (AuthenticateISO) on 8-byte blocks, with the same CRC32
// and CMAC chaining ("ISO mode"). Either way a MAC on the wire is 8 bytes.
type Session struct {
	// KeyNo is the key number the session was authenticated with.
	KeyNo byte
	// Type is the type of the key the session was authenticated with.
	Type  KeyType
	block cipher.Block
	mac   *blockMAC
	iv    []byte
}

// NewSession starts an AES session with a zero IV.
func NewSession(keyNo byte, sessionKey []byte) (*Session, error) {
	b, err := aes.NewCipher(sessionKey)
	if err != nil {
		return nil, fmt.Errorf("desfire: session key: %w", err)
	}
	return NewSessionCipher(keyNo, KeyAES, b), nil
}

// NewSessionCipher starts a session over the session key's block cipher
// (AES, or DES/3DES for an ISO-authenticated legacy key) with a zero IV.
func NewSessionCipher(keyNo byte, t KeyType, b cipher.Block) *Session {
	return &Session{KeyNo: keyNo, Type: t, block: b, mac: newBlockMAC(b), iv: make([]byte, b.BlockSize())}
}

// BlockSize is the cipher's block size: 16 for AES, 8 for DES and 3DES.
func (s *Session) BlockSize() int { return s.block.BlockSize() }

// IV returns a copy of the current running IV.
func (s *Session) IV() []byte { return append([]byte(nil), s.iv...) }

// CMAC computes the CMAC of msg chained on the running IV, makes it the new
// IV and returns it. EV1 transmits the first 8 bytes.
func (s *Session) CMAC(msg []byte) []byte {
	s.iv = s.mac.sumIV(s.iv, msg)
	return append([]byte(nil), s.iv...)
}

// VerifyMAC computes CMAC(msg) like CMAC and reports, in constant time,
// whether its first 8 bytes equal mac8.
func (s *Session) VerifyMAC(msg, mac8 []byte) bool {
	sum := s.CMAC(msg)
	return len(mac8) == 8 && subtle.ConstantTimeCompare(sum[:8], mac8) == 1
}

// Encrypt CBC-encrypts plain (whole blocks) with the running IV; the last
// ciphertext block becomes the IV.
func (s *Session) Encrypt(plain []byte) []byte {
	out := make([]byte, len(plain))
	if len(plain) == 0 {
		return out
	}
	cipher.NewCBCEncrypter(s.block, s.iv).CryptBlocks(out, plain)
	copy(s.iv, out[len(out)-len(s.iv):])
	return out
}

// Decrypt CBC-decrypts ct with the running IV; the last ciphertext block
// becomes the IV.
func (s *Session) Decrypt(ct []byte) ([]byte, error) {
	bs := s.block.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 {
		return nil, fmt.Errorf("%w: enciphered data of %d bytes is not whole %d-byte blocks", ErrMalformedResponse, len(ct), bs)
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(s.block, s.iv).CryptBlocks(out, ct)
	copy(s.iv, ct[len(ct)-bs:])
	return out, nil
}

// EncipherData builds the enciphered form of data: data ‖ CRC32(crcPrefix ‖
// data) ‖ zero padding to whole blocks, encrypted with Encrypt. crcPrefix
// is the command byte and header for a command, empty for a response.
func (s *Session) EncipherData(crcPrefix, data []byte, crcSuffix ...byte) []byte {
	crcIn := make([]byte, 0, len(crcPrefix)+len(data)+len(crcSuffix))
	crcIn = append(append(append(crcIn, crcPrefix...), data...), crcSuffix...)
	plain := appendCRC32(append(make([]byte, 0, len(data)+20), data...), CRC32(crcIn))
	plain = append(plain, make([]byte, padTo(len(plain), s.BlockSize()))...)
	return s.Encrypt(plain)
}

// DecipherData reverses EncipherData for data of length n, or of unknown
// length, a multiple of -n, when n < 0 (it then looks for the CRC, as
// readers must for a whole-file read; -1 allows any length, -recordSize
// a whole number of records). crcSuffix is appended to the data for the
// CRC (the status byte 00 of a response). ok is false when no CRC
// verifies.
//
// The unit matters: data ending in a zero byte whose CRC's last byte is
// zero also verifies one byte shorter (the zero moves from the data into
// the CRC), about once in 256 such reads, so a record read must not take
// a length that is no whole number of records.
func (s *Session) DecipherData(ct, crcPrefix []byte, n int, crcSuffix ...byte) (data []byte, ok bool, err error) {
	plain, err := s.Decrypt(ct)
	if err != nil {
		return nil, false, err
	}
	check := func(n int) bool {
		if n < 0 || n+4 > len(plain) || len(plain)-(n+4) >= s.BlockSize() {
			return false
		}
		for _, b := range plain[n+4:] {
			if b != 0 {
				return false
			}
		}
		crcIn := make([]byte, 0, len(crcPrefix)+n+len(crcSuffix))
		crcIn = append(append(append(crcIn, crcPrefix...), plain[:n]...), crcSuffix...)
		return binary.LittleEndian.Uint32(plain[n:]) == CRC32(crcIn)
	}
	if n >= 0 {
		if !check(n) {
			return nil, false, nil
		}
		return plain[:n:n], true, nil
	}
	// Shortest first: data ‖ CRC ‖ zeros has a CRC residue of zero, so a
	// longer candidate that swallows the real CRC can verify too.
	unit := -n
	for n := max(0, len(plain)-4-(s.BlockSize()-1)); n <= len(plain)-4; n++ {
		if n%unit == 0 && check(n) {
			return plain[:n:n], true, nil
		}
	}
	return nil, false, nil
}

// EncipheredLen is the length on the wire of n enciphered data bytes in
// an AES session.
func EncipheredLen(n int) int { return n + 4 + padLen(n+4) }

// EncipheredLen is the length on the wire of n enciphered data bytes in
// this session.
func (s *Session) EncipheredLen(n int) int { return n + 4 + padTo(n+4, s.BlockSize()) }

func padLen(n int) int { return padTo(n, aes.BlockSize) }

func padTo(n, bs int) int { return (bs - n%bs) % bs }

// AuthStep is one CBC operation of AuthenticateAES and AuthenticateISO,
// which chain their IV before a session exists: IV zero for the card's
// challenge, then the previous message's last ciphertext block. It returns
// the output and the next IV. The virtual card uses it for its side of the
// exchange.
func AuthStep(block cipher.Block, iv, in []byte, encrypt bool) (out, nextIV []byte) {
	bs := block.BlockSize()
	out = make([]byte, len(in))
	if encrypt {
		cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, in)
		return out, out[len(out)-bs:]
	}
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, in)
	return out, in[len(in)-bs:]
}

// Clone returns an independent copy of the session (same key and IV).
func (s *Session) Clone() *Session {
	c := *s
	c.iv = append([]byte(nil), s.iv...)
	return &c
}
