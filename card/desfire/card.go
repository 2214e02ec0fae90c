package desfire

import (
	"crypto/aes"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"

	"github.com/citycard/transit/card/apdu"
)

// Card is a conversation with one DESFire card over a transport. It tracks
// the selected application and the secure-messaging session.
type Card struct {
	t    apdu.Transport
	rand io.Reader
	aid  AID
	// app: an application is selected, not the PICC level. It differs
	// from aid != AID{} after an ISO SELECT, which names no AID.
	app bool
	s   *Session    // EV1 (AES) or ISO (DES/3DES) secure messaging
	e   *EV2Session // EV2 secure messaging; s and e are never both set
	// apdus counts exchanges, for budgets and benchmarks.
	apdus int
}

// forgetSession drops the secure-messaging session, as the card does on
// an error, a selection or a new authentication.
func (c *Card) forgetSession() { c.s, c.e = nil, nil }

// SecureMessaging names the open session's scheme: "EV2", "EV1" (AES),
// "ISO" (DES/3DES), or "" when no session is open.
func (c *Card) SecureMessaging() string {
	switch {
	case c.e != nil:
		return "EV2"
	case c.s != nil && c.s.Type == KeyAES:
		return "EV1"
	case c.s != nil:
		return "ISO"
	}
	return ""
}

// Option configures a Card.
type Option func(*Card)

// WithRand sets the source of RndA (crypto/rand by default); tests use it
// to replay published authentication exchanges.
func WithRand(r io.Reader) Option { return func(c *Card) { c.rand = r } }

// New starts a conversation over t. The card is assumed to be at PICC
// level, unauthenticated, as after it enters the field.
func New(t apdu.Transport, opts ...Option) *Card {
	c := &Card{t: t, rand: rand.Reader}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Authenticated reports whether a session is open, and with which key.
func (c *Card) Authenticated() (keyNo byte, ok bool) {
	switch {
	case c.e != nil:
		return c.e.KeyNo, true
	case c.s != nil:
		return c.s.KeyNo, true
	}
	return 0, false
}

// Selected returns the AID of the selected application: zero at PICC
// level, and zero too after an ISO SELECT of an application, which names
// no AID (AppSelected tells the two apart).
func (c *Card) Selected() AID { return c.aid }

// AppSelected reports whether an application, not the PICC level, is
// selected, however it was selected.
func (c *Card) AppSelected() bool { return c.app }

// APDUs returns how many APDUs have been exchanged so far.
func (c *Card) APDUs() int { return c.apdus }

// Forget drops the session and selection, e.g. after the card left the
// field, so that the next conversation starts clean.
func (c *Card) Forget() { c.forgetSession(); c.aid, c.app = AID{}, false }

// transmit sends one native frame and returns its data and status.
func (c *Card) transmit(ins byte, data []byte) ([]byte, Status, error) {
	cmd := make([]byte, 0, 6+len(data))
	cmd = append(cmd, 0x90, ins, 0, 0)
	if len(data) > 0 {
		cmd = append(cmd, byte(len(data)))
		cmd = append(cmd, data...)
	}
	cmd = append(cmd, 0)
	c.apdus++
	raw, err := c.t.Transmit(cmd)
	if err != nil {
		c.forgetSession()
		return nil, 0, fmt.Errorf("desfire: %s: %w", commandName(ins), err)
	}
	r, err := apdu.ParseResponse(raw)
	if err != nil {
		c.forgetSession()
		return nil, 0, fmt.Errorf("desfire: %s: %w", commandName(ins), err)
	}
	if r.SW1 != 0x91 {
		c.forgetSession()
		return nil, 0, &ISOError{Command: ins, SW: r.SW()}
	}
	return r.Data, Status(r.SW2), nil
}

// exchange sends a whole command, splitting data over continuation frames,
// and gathers all response frames. Any status but OK is returned as a
// *StatusError and closes the session, as it does on the card.
func (c *Card) exchange(ins byte, data []byte) ([]byte, error) {
	out, _, err := c.exchangeFrames(ins, data)
	return out, err
}

// exchangeFrames is exchange that also returns the data length of each
// non-empty response frame: GetDFNames answers one application per frame,
// with nothing else to tell where one ends. The lengths are nil when the
// answer came in one frame, which spares the tap's exchanges a slice.
func (c *Card) exchangeFrames(ins byte, data []byte) ([]byte, []int, error) {
	limit := MaxFrameData
	if c.e != nil {
		limit = MaxFrameDataEV2
	}
	first := data
	if len(first) > limit {
		first = first[:limit]
	}
	data = data[len(first):]
	resp, st, err := c.transmit(ins, first)
	for err == nil && st == StatusAdditionalFrame && len(data) > 0 {
		next := data
		if len(next) > limit {
			next = next[:limit]
		}
		data = data[len(next):]
		resp, st, err = c.transmit(InsAdditionalFrame, next)
	}
	if err != nil {
		return nil, nil, err
	}
	if len(data) > 0 && st == StatusOK {
		c.forgetSession()
		return nil, nil, fmt.Errorf("%w: card answered %s before all %d command bytes were sent", ErrMalformedResponse, commandName(ins), len(data))
	}
	out := append([]byte(nil), resp...)
	var sizes []int
	for st == StatusAdditionalFrame {
		resp, st, err = c.transmit(InsAdditionalFrame, nil)
		if err != nil {
			return nil, nil, err
		}
		if sizes == nil && len(out) > 0 {
			sizes = append(sizes, len(out))
		}
		out = append(out, resp...)
		if len(resp) > 0 {
			sizes = append(sizes, len(resp))
		}
	}
	if st != StatusOK {
		c.forgetSession()
		return nil, nil, &StatusError{Command: ins, Status: st}
	}
	return out, sizes, nil
}

// trimFrames cuts frame sizes to the first n bytes of their data, which
// drops a MAC that ends the last frame (nil, one frame, stays nil).
func trimFrames(sizes []int, n int) []int {
	if sizes == nil {
		return nil
	}
	out := make([]int, 0, len(sizes))
	for _, s := range sizes {
		if n <= 0 {
			break
		}
		s = min(s, n)
		out = append(out, s)
		n -= s
	}
	return out
}

// call runs a command with EV1 secure messaging. header travels in plain;
// data is sent per send mode; the response data is checked per recv mode
// and returned. respLen is the expected plain response length for an
// enciphered response or, when negative, unknown and a multiple of
// -respLen (see Session.DecipherData).
func (c *Card) call(ins byte, header, data []byte, send, recv CommMode, respLen int) ([]byte, error) {
	out, _, err := c.callFrames(ins, header, data, send, recv, respLen)
	return out, err
}

// callFrames is call that also returns the response frames' data sizes
// (see exchangeFrames) when the response is not enciphered.
func (c *Card) callFrames(ins byte, header, data []byte, send, recv CommMode, respLen int) ([]byte, []int, error) {
	if c.e != nil {
		return c.callEV2(ins, header, data, send, recv)
	}
	if send == commandMode {
		send = CommPlain
	}
	if recv == commandMode {
		recv = CommPlain
	}
	s := c.s
	if s == nil {
		body := append(append([]byte(nil), header...), data...)
		return c.exchangeFrames(ins, body)
	}
	body := append(append(make([]byte, 0, len(header)+len(data)+24), header...), data...)
	switch send {
	case CommEnciphered:
		prefix := append([]byte{ins}, header...)
		body = append(body[:len(header)], s.EncipherData(prefix, data)...)
	default:
		msg := append([]byte{ins}, body...)
		mac := s.CMAC(msg)
		if send == CommMAC {
			body = append(body, mac[:8]...)
		}
	}
	resp, sizes, err := c.exchangeFrames(ins, body)
	if err != nil {
		return nil, nil, err
	}
	if c.s != s {
		// exchange closed the session (it cannot while returning OK, but
		// keep the invariant obvious).
		return nil, nil, ErrNotAuthenticated
	}
	if recv == CommEnciphered {
		out, ok, err := s.DecipherData(resp, nil, respLen, byte(StatusOK))
		if err != nil || !ok {
			c.forgetSession()
			if err != nil {
				return nil, nil, fmt.Errorf("desfire: %s: %w", commandName(ins), err)
			}
			return nil, nil, fmt.Errorf("desfire: %s: %w", commandName(ins), ErrResponseCRC)
		}
		return out, nil, nil
	}
	if len(resp) < 8 {
		c.forgetSession()
		return nil, nil, fmt.Errorf("desfire: %s: response of %d bytes has no MAC: %w", commandName(ins), len(resp), ErrResponseMAC)
	}
	n := len(resp) - 8
	msg := append(resp[:n:n], byte(StatusOK))
	if !s.VerifyMAC(msg, resp[n:]) {
		c.forgetSession()
		return nil, nil, fmt.Errorf("desfire: %s: %w", commandName(ins), ErrResponseMAC)
	}
	return resp[:n:n], trimFrames(sizes, n), nil
}

// commandMode is the protection of a command's own (not a file's) data:
// plain with a CMAC on the response in an EV1 session, MACed both ways in
// an EV2 session.
const commandMode CommMode = 0xFF

// callEV2 is call in an EV2 session (see ev2.go).
func (c *Card) callEV2(ins byte, header, data []byte, send, recv CommMode) ([]byte, []int, error) {
	e := c.e
	if send == commandMode {
		send = CommMAC
	}
	if recv == commandMode {
		recv = CommMAC
	}
	// A file's data is protected both ways or neither: MAC or Full mode
	// MACs the command of a read and the response of a write too.
	if send == CommPlain && recv != CommPlain {
		send = CommMAC
	}
	if recv == CommPlain && send != CommPlain {
		recv = CommMAC
	}
	body := append(make([]byte, 0, len(header)+len(data)+32), header...)
	switch send {
	case CommEnciphered:
		var ct []byte
		if len(data) > 0 {
			ct = e.EncryptCommand(data)
		}
		body = append(append(body, ct...), e.CommandMAC(ins, header, ct)...)
	case CommMAC:
		body = append(append(body, data...), e.CommandMAC(ins, header, data)...)
	default:
		body = append(body, data...)
	}
	resp, sizes, err := c.exchangeFrames(ins, body)
	if err != nil {
		return nil, nil, err
	}
	if c.e != e {
		return nil, nil, ErrNotAuthenticated
	}
	if recv == CommPlain {
		e.Advance()
		return resp, sizes, nil
	}
	if len(resp) < 8 {
		c.forgetSession()
		return nil, nil, fmt.Errorf("desfire: %s: response of %d bytes has no MAC: %w", commandName(ins), len(resp), ErrResponseMAC)
	}
	n := len(resp) - 8
	if subtle.ConstantTimeCompare(e.ResponseMAC(byte(StatusOK), resp[:n]), resp[n:]) != 1 {
		c.forgetSession()
		return nil, nil, fmt.Errorf("desfire: %s: %w", commandName(ins), ErrResponseMAC)
	}
	out := resp[:n:n]
	if recv == CommEnciphered && n > 0 {
		plain, ok := e.DecryptResponse(out)
		if !ok {
			c.forgetSession()
			return nil, nil, fmt.Errorf("desfire: %s: enciphered response does not unpad: %w", commandName(ins), ErrMalformedResponse)
		}
		e.Advance()
		return plain, nil, nil
	}
	e.Advance()
	return out, trimFrames(sizes, n), nil
}

// AuthenticateAES runs the EV1 three-pass AES authentication (0xAA) with
// key number keyNo of the selected application and opens a session.
func (c *Card) AuthenticateAES(keyNo byte, key []byte) error {
	c.forgetSession()
	block, err := aes.NewCipher(key)
	if err != nil || len(key) != 16 {
		return fmt.Errorf("desfire: AuthenticateAES key %d: need a 16-byte AES key, got %d bytes", keyNo, len(key))
	}
	encB, st, err := c.transmit(InsAuthenticateAES, []byte{keyNo})
	if err != nil {
		return err
	}
	if st != StatusAdditionalFrame {
		return &StatusError{Command: InsAuthenticateAES, Status: st}
	}
	if len(encB) != 16 {
		return fmt.Errorf("%w: AuthenticateAES: challenge of %d bytes, want 16", ErrMalformedResponse, len(encB))
	}
	rndB, iv := AuthStep(block, make([]byte, 16), encB, false)
	rndA := make([]byte, 16)
	if _, err := io.ReadFull(c.rand, rndA); err != nil {
		return fmt.Errorf("desfire: AuthenticateAES: random RndA: %w", err)
	}
	token := append(append(make([]byte, 0, 32), rndA...), RotateLeft(rndB)...)
	encAB, iv := AuthStep(block, iv, token, true)
	encA, st, err := c.transmit(InsAdditionalFrame, encAB)
	if err != nil {
		return err
	}
	if st != StatusOK {
		return &StatusError{Command: InsAuthenticateAES, Status: st}
	}
	if len(encA) != 16 {
		return fmt.Errorf("%w: AuthenticateAES: answer of %d bytes, want 16", ErrMalformedResponse, len(encA))
	}
	rndA2, _ := AuthStep(block, iv, encA, false)
	if subtle.ConstantTimeCompare(rndA2, RotateLeft(rndA)) != 1 {
		return fmt.Errorf("desfire: AuthenticateAES key %d: %w", keyNo, ErrCardNotAuthentic)
	}
	s, err := NewSession(keyNo, SessionKey(rndA, rndB))
	if err != nil {
		return err
	}
	c.s = s
	return nil
}

// requireSession returns the open EV1/ISO session (nil in an EV2
// session) or ErrNotAuthenticated.
func (c *Card) requireSession(ins byte) (*Session, error) {
	if c.s == nil && c.e == nil {
		return nil, fmt.Errorf("desfire: %s: %w", commandName(ins), ErrNotAuthenticated)
	}
	return c.s, nil
}

var errKeyLength = errors.New("desfire: AES keys are 16 bytes")
