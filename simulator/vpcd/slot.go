package vpcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Card is what the bridge needs from a virtual card.
type Card interface {
	// ATR returns the answer-to-reset the reader reports.
	ATR() []byte
	// Reset power-cycles the card, discarding uncommitted state.
	Reset()
	// Respond answers one command APDU with a response APDU.
	Respond(cmd []byte) []byte
}

// Timeouts bound how long the card side waits, so a dead pcscd or a card
// that never answers cannot hang a slot forever.
type Timeouts struct {
	// Idle is how long to wait for the next message from pcscd; pcscd polls
	// the ATR every ~400 ms, so silence well beyond that means it is gone.
	Idle time.Duration
	// Write bounds sending one reply.
	Write time.Duration
	// Respond bounds Card.Respond; when exceeded the card is removed, which
	// is what a real card that stops answering looks like to the reader.
	Respond time.Duration
}

// DefaultTimeouts suit pcscd's ~400 ms poll.
var DefaultTimeouts = Timeouts{Idle: 5 * time.Second, Write: 2 * time.Second, Respond: 5 * time.Second}

// Slot is a virtual card inserted into one vpcd reader.
type Slot struct {
	conn *net.TCPConn
	to   Timeouts
	log  *slog.Logger

	mu   sync.Mutex
	card Card

	done chan struct{}
	err  error // set before done closes
	once sync.Once
}

// Insert connects card to the vpcd reader listening at addr (host:port) and
// serves pcscd until Remove is called, ctx ends, or the connection fails.
func Insert(ctx context.Context, addr string, card Card) (*Slot, error) {
	return InsertWith(ctx, addr, card, DefaultTimeouts, slog.Default())
}

// InsertWith is Insert with explicit timeouts and logger.
func InsertWith(ctx context.Context, addr string, card Card, to Timeouts, log *slog.Logger) (*Slot, error) {
	if card == nil {
		return nil, errors.New("vpcd: insert: card is nil")
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("vpcd: connect to reader at %s (is pcscd with vpcd running?): %w", addr, err)
	}
	s := &Slot{conn: c.(*net.TCPConn), to: to, log: log.With("vpcd", addr), card: card, done: make(chan struct{})}
	_ = s.conn.SetNoDelay(true)
	go func() {
		select {
		case <-ctx.Done():
			s.Remove()
		case <-s.done:
		}
	}()
	go s.serve()
	return s, nil
}

// Swap makes the slot present another card without reconnecting, avoiding
// the wait for pcscd's next poll that a re-insertion costs.
func (s *Slot) Swap(card Card) {
	s.mu.Lock()
	s.card = card
	s.mu.Unlock()
}

func (s *Slot) current() Card {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.card
}

// Remove takes the card away (closes the socket) and waits for the server
// loop to stop. It is safe to call more than once.
func (s *Slot) Remove() {
	s.once.Do(func() { _ = s.conn.Close() })
	<-s.done
}

// Done is closed when the slot stops serving.
func (s *Slot) Done() <-chan struct{} { return s.done }

// Err reports why serving stopped; valid after Done is closed. It is nil
// after Remove.
func (s *Slot) Err() error {
	<-s.done
	return s.err
}

func (s *Slot) serve() {
	err := s.loop()
	s.once.Do(func() { _ = s.conn.Close() })
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	if err != nil {
		s.log.Warn("virtual card stopped", "err", err)
	}
	s.err = err
	close(s.done)
}

func (s *Slot) loop() error {
	var out []byte
	for {
		if s.to.Idle > 0 {
			_ = s.conn.SetReadDeadline(time.Now().Add(s.to.Idle))
		}
		msg, err := readFrame(s.conn, func() { quickAck(s.conn) })
		if errors.Is(err, errEmptyFrame) {
			// Not a command pcscd sends; answer it like any message that
			// is no APDU rather than take the card away.
			msg = nil
		} else if err != nil {
			return err
		}
		reply, ok, err := s.handle(msg)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if out, err = appendFrame(out[:0], reply); err != nil {
			return err
		}
		if s.to.Write > 0 {
			_ = s.conn.SetWriteDeadline(time.Now().Add(s.to.Write))
		}
		if _, err := s.conn.Write(out); err != nil {
			return fmt.Errorf("vpcd: write %d-byte reply: %w", len(reply), err)
		}
		quickAck(s.conn)
	}
}

// swWrongLength is ISO/IEC 7816-4's "wrong length", the answer to a
// message that cannot be a command APDU.
var swWrongLength = []byte{0x67, 0x00}

// handle returns the reply for one message and whether one is due.
func (s *Slot) handle(msg []byte) ([]byte, bool, error) {
	card := s.current()
	if len(msg) == 0 {
		return swWrongLength, true, nil
	}
	if len(msg) == 1 {
		switch msg[0] {
		case ctrlPowerOff, ctrlPowerOn, ctrlReset:
			if msg[0] != ctrlPowerOn {
				card.Reset()
			}
			return nil, false, nil
		case ctrlGetATR:
			return card.ATR(), true, nil
		default:
			// vpcd passes on whatever a PC/SC client transmits, so a
			// 1-byte APDU arrives looking like a control byte, and its
			// sender waits for an answer. A card answers a command too
			// short to be an APDU with "wrong length"; it stays in the slot.
			s.log.Debug("1-byte message that is no vpcd control code; answering wrong length", "byte", msg[0])
			return swWrongLength, true, nil
		}
	}
	return s.respond(card, msg)
}

func (s *Slot) respond(card Card, cmd []byte) ([]byte, bool, error) {
	if s.to.Respond <= 0 {
		return card.Respond(cmd), true, nil
	}
	ch := make(chan []byte, 1)
	go func() { ch <- card.Respond(cmd) }()
	t := time.NewTimer(s.to.Respond)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, true, nil
	case <-t.C:
		return nil, false, fmt.Errorf("vpcd: card did not answer % X within %v; removing it", cmd, s.to.Respond)
	}
}
