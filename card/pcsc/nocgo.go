//go:build !cgo

package pcsc

import (
	"context"
	"errors"
)

// ErrNoCgo is returned by every operation in a build without cgo.
var ErrNoCgo = errors.New("pcsc: built without cgo: PC/SC needs cgo and libpcsclite; rebuild with CGO_ENABLED=1")

// Reader is a named PC/SC reader; without cgo every method fails.
type Reader struct{ name string }

// Open returns a Reader whose methods all fail with ErrNoCgo.
func Open(name string) *Reader { return &Reader{name: name} }

// Name is the reader's name, as Open was given it.
func (r *Reader) Name() string { return r.name }

// Readers fails with ErrNoCgo.
func (r *Reader) Readers() ([]string, error) { return nil, ErrNoCgo }

// WaitCard fails with ErrNoCgo.
func (r *Reader) WaitCard(context.Context) (*Card, error) { return nil, ErrNoCgo }

// WaitRemoval fails with ErrNoCgo.
func (r *Reader) WaitRemoval(context.Context, *Card) error { return ErrNoCgo }

// Close does nothing.
func (r *Reader) Close() error { return nil }

// Card is a connected card; without cgo it cannot exist.
type Card struct{}

// Transmit fails with ErrNoCgo.
func (c *Card) Transmit([]byte) ([]byte, error) { return nil, ErrNoCgo }

// UID fails with ErrNoCgo.
func (c *Card) UID() ([]byte, error) { return nil, ErrNoCgo }

// Close does nothing.
func (c *Card) Close() error { return nil }
