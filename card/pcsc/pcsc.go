//go:build cgo

package pcsc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/citycard/transit/card/apdu"
	"github.com/ebfe/scard"
)

// pollStep bounds each GetStatusChange so ctx cancellation is seen promptly.
const pollStep = 250 * time.Millisecond

// ErrUnknownReader is wrapped when the named reader does not exist.
var ErrUnknownReader = errors.New("pcsc: unknown reader")

// Reader is one named PC/SC reader. Its methods are meant for one goroutine
// (the validator loop); Close may be called from another.
type Reader struct {
	name string
	log  *slog.Logger

	mu  sync.Mutex
	ctx *scard.Context
}

// Open returns the reader called name. The PC/SC context is established on
// first use and re-established when pcscd restarts.
func Open(name string) *Reader {
	return &Reader{name: name, log: slog.Default().With("reader", name)}
}

// Name is the reader's name, as Open was given it.
func (r *Reader) Name() string { return r.name }

func (r *Reader) context() (*scard.Context, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx != nil {
		return r.ctx, nil
	}
	c, err := scard.EstablishContext()
	if err != nil {
		return nil, fmt.Errorf("pcsc: establish context (is pcscd running?): %w", err)
	}
	r.ctx = c
	return c, nil
}

// drop releases the context after pcscd went away so the next call
// re-establishes it.
func (r *Reader) drop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx != nil {
		_ = r.ctx.Release()
		r.ctx = nil
	}
}

// Close releases the PC/SC context.
func (r *Reader) Close() error {
	r.drop()
	return nil
}

// Readers lists the readers pcscd knows.
func (r *Reader) Readers() ([]string, error) {
	c, err := r.context()
	if err != nil {
		return nil, err
	}
	names, err := c.ListReaders()
	if errors.Is(err, scard.ErrNoReadersAvailable) {
		return nil, nil
	}
	if err != nil {
		if serviceGone(err) {
			r.drop()
		}
		return nil, fmt.Errorf("pcsc: list readers: %w", err)
	}
	return names, nil
}

func serviceGone(err error) bool {
	return errors.Is(err, scard.ErrNoService) || errors.Is(err, scard.ErrServiceStopped) ||
		errors.Is(err, scard.ErrInvalidHandle)
}

// checkReader returns an error listing the known readers when r's name is
// not among them.
func (r *Reader) checkReader() error {
	names, err := r.Readers()
	if err != nil {
		return err
	}
	if !slices.Contains(names, r.name) {
		return fmt.Errorf("%w %q; readers present: %q (check the reader name in the configuration)", ErrUnknownReader, r.name, names)
	}
	return nil
}

// waitState waits until the reader's state has want set, honouring ctx.
// Transient failures (pcscd restart, reader unplugged) are retried with
// backoff; an unknown reader name is reported at once.
func (r *Reader) waitState(ctx context.Context, want scard.StateFlag) error {
	// Other failures here (pcscd down) are retried in the loop below.
	if err := r.checkReader(); errors.Is(err, ErrUnknownReader) {
		return err
	}
	backoff := 100 * time.Millisecond
	cur := scard.StateUnaware
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("pcsc: wait on reader %q: %w", r.name, err)
		}
		c, err := r.context()
		if err == nil {
			rs := []scard.ReaderState{{Reader: r.name, CurrentState: cur}}
			err = c.GetStatusChange(rs, pollStep)
			switch {
			case err == nil:
				backoff = 100 * time.Millisecond
				cur = rs[0].EventState &^ scard.StateChanged
				if rs[0].EventState&want != 0 {
					return nil
				}
				continue
			case errors.Is(err, scard.ErrTimeout):
				continue
			case errors.Is(err, scard.ErrUnknownReader):
				return r.checkReader()
			}
			if serviceGone(err) || errors.Is(err, scard.ErrReaderUnavailable) {
				r.drop()
			}
		}
		r.log.Warn("pcsc: reader unavailable, retrying", "err", err, "backoff", backoff)
		cur = scard.StateUnaware
		select {
		case <-ctx.Done():
			return fmt.Errorf("pcsc: wait on reader %q: %w (last error: %v)", r.name, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// WaitCard waits for a card in the reader and connects to it (shared mode,
// any protocol).
func (r *Reader) WaitCard(ctx context.Context) (*Card, error) {
	for {
		if err := r.waitState(ctx, scard.StatePresent); err != nil {
			return nil, err
		}
		c, err := r.context()
		if err != nil {
			return nil, err
		}
		sc, err := c.Connect(r.name, scard.ShareShared, scard.ProtocolAny)
		if err == nil {
			return &Card{sc: sc, reader: r.name}, nil
		}
		// The card may have left between the status change and the connect.
		if errors.Is(err, scard.ErrNoSmartcard) || errors.Is(err, scard.ErrRemovedCard) || errors.Is(err, scard.ErrUnresponsiveCard) {
			r.log.Debug("pcsc: card gone before connect", "err", err)
			continue
		}
		if serviceGone(err) {
			r.drop()
			continue
		}
		return nil, fmt.Errorf("pcsc: connect to card in %q: %w", r.name, err)
	}
}

// WaitRemoval waits until the reader is empty, then releases card (which
// may be nil).
func (r *Reader) WaitRemoval(ctx context.Context, card *Card) error {
	err := r.waitState(ctx, scard.StateEmpty)
	if card != nil {
		_ = card.Close()
	}
	return err
}

// Card is a connected card; it implements apdu.Transport.
type Card struct {
	sc     *scard.Card
	reader string
}

var _ apdu.Transport = (*Card)(nil)

// Transmit sends one command APDU. A card that left or was reset yields an
// error wrapping apdu.ErrCardRemoved.
func (c *Card) Transmit(cmd []byte) ([]byte, error) {
	resp, err := c.sc.Transmit(cmd)
	if err != nil {
		if errors.Is(err, scard.ErrRemovedCard) || errors.Is(err, scard.ErrNotTransacted) ||
			errors.Is(err, scard.ErrResetCard) || errors.Is(err, scard.ErrNoSmartcard) ||
			errors.Is(err, scard.ErrReaderUnavailable) || serviceGone(err) {
			return nil, fmt.Errorf("pcsc: transmit % X on %q: %w (%w)", cmd, c.reader, apdu.ErrCardRemoved, err)
		}
		return nil, fmt.Errorf("pcsc: transmit % X on %q: %w", cmd, c.reader, err)
	}
	if len(resp) < 2 {
		// No status word: the reader lost the card mid-command (vpcd answers
		// this way when the card's socket closes during an APDU).
		return nil, fmt.Errorf("pcsc: transmit % X on %q: %d-byte response without status word: %w", cmd, c.reader, len(resp), apdu.ErrCardRemoved)
	}
	return resp, nil
}

// UID asks the reader for the card's UID with the PC/SC pseudo-APDU
// FF CA 00 00 00.
func (c *Card) UID() ([]byte, error) {
	raw, err := c.Transmit([]byte{0xFF, 0xCA, 0x00, 0x00, 0x00})
	if err != nil {
		return nil, fmt.Errorf("pcsc: get UID: %w", err)
	}
	resp, err := apdu.ParseResponse(raw)
	if err != nil {
		return nil, fmt.Errorf("pcsc: get UID: %w", err)
	}
	if resp.SW() != 0x9000 {
		return nil, fmt.Errorf("pcsc: get UID: reader answered SW %04X", resp.SW())
	}
	return resp.Data, nil
}

// Close disconnects, leaving the card powered.
func (c *Card) Close() error {
	if err := c.sc.Disconnect(scard.LeaveCard); err != nil && !errors.Is(err, scard.ErrInvalidHandle) {
		return fmt.Errorf("pcsc: disconnect from %q: %w", c.reader, err)
	}
	return nil
}
