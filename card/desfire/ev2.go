package desfire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
)

// EV2 secure messaging (DESFire EV2/EV3, and the same scheme in NTAG 424
// DNA and DESFire Light: NXP AN12196 and AN12343). After
// AuthenticateEV2First or AuthenticateEV2NonFirst both sides hold two
// session keys, a 4-byte transaction identifier (TI) chosen by the card
// and a 16-bit command counter (CmdCtr) that starts at 0 and advances with
// every command of the session, so a command cannot be replayed or
// reordered within it:
//
//	command MAC   MACt(KSesAuthMAC, Cmd || CmdCtr || TI || header || data)
//	response MAC  MACt(KSesAuthMAC, RC || CmdCtr+1 || TI || data)
//	command IV    E(KSesAuthENC, A5 5A || TI || CmdCtr || 0^8)
//	response IV   E(KSesAuthENC, 5A A5 || TI || CmdCtr+1 || 0^8)
//
// MACt keeps the odd-indexed bytes of the 16-byte CMAC; enciphered data is
// padded with 80 00.. (ISO/IEC 9797-1 method 2) and AES-CBC encrypted.

// EV2Session is the EV2 secure-messaging state of one side.
type EV2Session struct {
	KeyNo byte
	// TI is the transaction identifier the card chose.
	TI [4]byte
	// CmdCtr is the command counter of the next command.
	CmdCtr uint16
	enc    cipher.Block
	mac    *blockMAC
}

// EV2SessionKeys derives KSesAuthENC and KSesAuthMAC from the
// authentication key and the two challenges (SV1 and SV2 of AN12196
// section 5.6, NIST SP 800-108 counter mode with CMAC).
func EV2SessionKeys(key, rndA, rndB []byte) (enc, mac [16]byte, err error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return enc, mac, fmt.Errorf("desfire: EV2 session keys: %w", err)
	}
	m := newBlockMAC(b)
	zero := make([]byte, 16)
	copy(enc[:], m.sumIV(zero, EV2SessionVector(0xA5, 0x5A, rndA, rndB)))
	copy(mac[:], m.sumIV(zero, EV2SessionVector(0x5A, 0xA5, rndA, rndB)))
	return enc, mac, nil
}

// EV2SessionVector is SV1 (a, b = A5 5A) or SV2 (5A A5):
// a b 00 01 00 80 RndA[15..14] (RndA[13..8] XOR RndB[15..10]) RndB[9..0]
// RndA[7..0], bytes numbered most significant first as NXP does.
func EV2SessionVector(a, b byte, rndA, rndB []byte) []byte {
	sv := []byte{a, b, 0x00, 0x01, 0x00, 0x80}
	sv = append(sv, rndA[0:2]...)
	x := make([]byte, 6)
	subtle.XORBytes(x, rndA[2:8], rndB[0:6])
	sv = append(sv, x...)
	sv = append(sv, rndB[6:16]...)
	return append(sv, rndA[8:16]...)
}

// NewEV2Session starts a session at CmdCtr 0 from the session keys and TI.
func NewEV2Session(keyNo byte, encKey, macKey []byte, ti []byte) (*EV2Session, error) {
	if len(ti) != 4 {
		return nil, fmt.Errorf("desfire: EV2 session: TI of %d bytes, want 4", len(ti))
	}
	e, err := aes.NewCipher(encKey)
	if err != nil {
		return nil, fmt.Errorf("desfire: EV2 session ENC key: %w", err)
	}
	m, err := aes.NewCipher(macKey)
	if err != nil {
		return nil, fmt.Errorf("desfire: EV2 session MAC key: %w", err)
	}
	s := &EV2Session{KeyNo: keyNo, enc: e, mac: newBlockMAC(m)}
	copy(s.TI[:], ti)
	return s, nil
}

// MACt truncates a 16-byte CMAC to the 8 bytes EV2 sends: bytes 1, 3, ..
// 15.
func MACt(full []byte) []byte {
	out := make([]byte, 8)
	for i := range out {
		out[i] = full[2*i+1]
	}
	return out
}

func (s *EV2Session) macOver(first byte, ctr uint16, parts ...[]byte) []byte {
	msg := []byte{first, byte(ctr), byte(ctr >> 8)}
	msg = append(msg, s.TI[:]...)
	for _, p := range parts {
		msg = append(msg, p...)
	}
	return MACt(s.mac.sumIV(make([]byte, 16), msg))
}

// CommandMAC is the MAC of a command at the current CmdCtr.
func (s *EV2Session) CommandMAC(ins byte, header, data []byte) []byte {
	return s.macOver(ins, s.CmdCtr, header, data)
}

// ResponseMAC is the MAC of a response with return code rc, computed
// with CmdCtr+1: call it before Advance.
func (s *EV2Session) ResponseMAC(rc byte, data []byte) []byte {
	return s.macOver(rc, s.CmdCtr+1, data)
}

// Advance moves CmdCtr on after a command and its response.
func (s *EV2Session) Advance() { s.CmdCtr++ }

func (s *EV2Session) iv(a, b byte, ctr uint16) []byte {
	in := make([]byte, 16)
	in[0], in[1] = a, b
	copy(in[2:6], s.TI[:])
	binary.LittleEndian.PutUint16(in[6:8], ctr)
	s.enc.Encrypt(in, in)
	return in
}

// CommandIV is the IV of a command's enciphered data at the current CmdCtr.
func (s *EV2Session) CommandIV() []byte { return s.iv(0xA5, 0x5A, s.CmdCtr) }

// ResponseIV is the IV of a response's enciphered data (CmdCtr+1).
func (s *EV2Session) ResponseIV() []byte { return s.iv(0x5A, 0xA5, s.CmdCtr+1) }

func pad80(data []byte) []byte {
	p := append(append(make([]byte, 0, len(data)+16), data...), 0x80)
	return append(p, make([]byte, padTo(len(p), 16))...)
}

func unpad80(p []byte) ([]byte, bool) {
	i := bytes.LastIndexByte(p, 0x80)
	if i < 0 || len(p)-i > 16 {
		return nil, false
	}
	for _, b := range p[i+1:] {
		if b != 0 {
			return nil, false
		}
	}
	return p[:i:i], true
}

func cbc(b cipher.Block, iv, in []byte, encrypt bool) []byte {
	out := make([]byte, len(in))
	if encrypt {
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, in)
	} else {
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, in)
	}
	return out
}

// EncryptCommand pads and encrypts a command's data (CommandIV).
func (s *EV2Session) EncryptCommand(data []byte) []byte {
	return cbc(s.enc, s.CommandIV(), pad80(data), true)
}

// DecryptCommand reverses EncryptCommand on the card.
func (s *EV2Session) DecryptCommand(ct []byte) ([]byte, bool) {
	if len(ct) == 0 || len(ct)%16 != 0 {
		return nil, false
	}
	return unpad80(cbc(s.enc, s.CommandIV(), ct, false))
}

// EncryptResponse pads and encrypts a response's data (ResponseIV): call
// it before Advance.
func (s *EV2Session) EncryptResponse(data []byte) []byte {
	return cbc(s.enc, s.ResponseIV(), pad80(data), true)
}

// DecryptResponse reverses EncryptResponse on the reader, before Advance.
func (s *EV2Session) DecryptResponse(ct []byte) ([]byte, bool) {
	if len(ct) == 0 || len(ct)%16 != 0 {
		return nil, false
	}
	return unpad80(cbc(s.enc, s.ResponseIV(), ct, false))
}

// EV2AuthPart2 is the card's answer in AuthenticateEV2First, encrypted
// with the key, IV zero: TI || RndA' || PDcap2 (6) || PCDcap2 (6).
func EV2AuthAnswer(block cipher.Block, ti, rndA []byte, pdCap, pcdCap [6]byte) []byte {
	plain := append(append(append(append([]byte(nil), ti...), RotateLeft(rndA)...), pdCap[:]...), pcdCap[:]...)
	return cbc(block, make([]byte, 16), plain, true)
}

// AuthenticateEV2First runs the EV2 three-pass authentication (0x71) with
// AES key keyNo of the selected application: it opens an EV2 session
// with a new TI and CmdCtr 0. An EV1 card answers ErrIllegalCommand.
func (c *Card) AuthenticateEV2First(keyNo byte, key []byte) error {
	return c.authenticateEV2(InsAuthenticateEV2First, keyNo, key)
}

// AuthenticateEV2NonFirst (0x77) changes the key of an open EV2 session:
// new session keys, the same TI and CmdCtr.
func (c *Card) AuthenticateEV2NonFirst(keyNo byte, key []byte) error {
	if c.e == nil {
		return fmt.Errorf("desfire: AuthenticateEV2NonFirst: %w (AuthenticateEV2First first)", ErrNotAuthenticated)
	}
	return c.authenticateEV2(InsAuthenticateEV2NonFirst, keyNo, key)
}

func (c *Card) authenticateEV2(ins, keyNo byte, key []byte) error {
	prev := c.e
	c.forgetSession()
	block, err := aes.NewCipher(key)
	if err != nil || len(key) != 16 {
		return fmt.Errorf("desfire: %s key %d: need a 16-byte AES key, got %d bytes", commandName(ins), keyNo, len(key))
	}
	first := []byte{keyNo}
	if ins == InsAuthenticateEV2First {
		first = append(first, 0x00) // no PCD capabilities
	}
	encB, st, err := c.transmit(ins, first)
	if err != nil {
		return err
	}
	if st != StatusAdditionalFrame {
		return &StatusError{Command: ins, Status: st}
	}
	if len(encB) != 16 {
		return fmt.Errorf("%w: %s: challenge of %d bytes, want 16", ErrMalformedResponse, commandName(ins), len(encB))
	}
	zero := make([]byte, 16)
	rndB := cbc(block, zero, encB, false)
	rndA := make([]byte, 16)
	if _, err := c.rand.Read(rndA); err != nil {
		return fmt.Errorf("desfire: %s: random RndA: %w", commandName(ins), err)
	}
	part2 := cbc(block, zero, append(append([]byte(nil), rndA...), RotateLeft(rndB)...), true)
	resp, st, err := c.transmit(InsAdditionalFrame, part2)
	if err != nil {
		return err
	}
	if st != StatusOK {
		return &StatusError{Command: ins, Status: st}
	}
	want := 32
	if ins == InsAuthenticateEV2NonFirst {
		want = 16
	}
	if len(resp) != want {
		return fmt.Errorf("%w: %s: answer of %d bytes, want %d", ErrMalformedResponse, commandName(ins), len(resp), want)
	}
	plain := cbc(block, zero, resp, false)
	var ti, rotA []byte
	if ins == InsAuthenticateEV2First {
		ti, rotA = plain[0:4], plain[4:20]
	} else {
		ti, rotA = prev.TI[:], plain[0:16]
	}
	if subtle.ConstantTimeCompare(rotA, RotateLeft(rndA)) != 1 {
		return fmt.Errorf("desfire: %s key %d: %w", commandName(ins), keyNo, ErrCardNotAuthentic)
	}
	enc, mac, err := EV2SessionKeys(key, rndA, rndB)
	if err != nil {
		return err
	}
	e, err := NewEV2Session(keyNo, enc[:], mac[:], ti)
	if err != nil {
		return err
	}
	if ins == InsAuthenticateEV2NonFirst {
		e.CmdCtr = prev.CmdCtr
	}
	c.e = e
	return nil
}

// EV2 reports the open EV2 session, nil when none is open (tests and the
// vector replays look at its TI and counter).
func (c *Card) EV2() *EV2Session { return c.e }
