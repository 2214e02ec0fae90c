package vpcd

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

type fixedCard struct {
	atr    []byte
	resets int
}

func (c *fixedCard) ATR() []byte               { return c.atr }
func (c *fixedCard) Reset()                    { c.resets++ }
func (c *fixedCard) Respond(cmd []byte) []byte { return append(bytes.Clone(cmd), 0x90, 0x00) }

// fakePCSCD accepts one card connection, playing pcscd's side.
func fakePCSCD(t *testing.T) (addr string, conn <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			ch <- c
		}
	}()
	return ln.Addr().String(), ch
}

func exchange(t *testing.T, c net.Conn, msg []byte) []byte {
	t.Helper()
	f, _ := appendFrame(nil, msg)
	if _, err := c.Write(f); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	got, err := readFrame(c, nil)
	if err != nil {
		t.Fatalf("reply to % X: %v", msg, err)
	}
	return got
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSlotProtocol(t *testing.T) {
	addr, conns := fakePCSCD(t)
	a := &fixedCard{atr: []byte{0x3B, 0x01}}
	s, err := InsertWith(context.Background(), addr, a, DefaultTimeouts, quiet())
	if err != nil {
		t.Fatal(err)
	}
	c := <-conns
	// Control messages without a reply, then an ATR query, must keep order.
	for _, ctl := range []byte{ctrlPowerOff, ctrlPowerOn, ctrlReset} {
		f, _ := appendFrame(nil, []byte{ctl})
		c.Write(f)
	}
	if got := exchange(t, c, []byte{ctrlGetATR}); !bytes.Equal(got, a.atr) {
		t.Fatalf("ATR = % X", got)
	}
	if a.resets != 2 {
		t.Errorf("resets = %d; want 2 (power off and reset)", a.resets)
	}
	if got := exchange(t, c, []byte{0x00, 0xA4}); !bytes.Equal(got, []byte{0x00, 0xA4, 0x90, 0x00}) {
		t.Errorf("APDU reply = % X", got)
	}
	b := &fixedCard{atr: []byte{0x3B, 0x02}}
	s.Swap(b)
	if got := exchange(t, c, []byte{ctrlGetATR}); !bytes.Equal(got, b.atr) {
		t.Errorf("ATR after Swap = % X", got)
	}
	s.Remove()
	if s.Err() != nil {
		t.Errorf("Err after Remove = %v", s.Err())
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("pcscd side after Remove: %v; want EOF", err)
	}
}

func TestSlotStopsWhenPCSCDIsSilent(t *testing.T) {
	addr, conns := fakePCSCD(t)
	to := Timeouts{Idle: 200 * time.Millisecond, Write: time.Second, Respond: time.Second}
	s, err := InsertWith(context.Background(), addr, &fixedCard{}, to, quiet())
	if err != nil {
		t.Fatal(err)
	}
	<-conns
	select {
	case <-s.Done():
		if s.Err() == nil {
			t.Error("silent pcscd: Err is nil; want a timeout")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("slot still serving a silent pcscd after 5 s")
	}
}

// TestSlotBadInput: a message that cannot be an APDU (a 1-byte APDU from a
// PC/SC client arrives as an unknown control byte) gets "wrong length",
// and the card stays in the slot.
func TestSlotBadInput(t *testing.T) {
	tests := []struct {
		name string
		msg  []byte
	}{
		{"unknown control byte", []byte{0x09}},
		{"another unknown control byte", []byte{0xFF}},
		{"empty frame", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, conns := fakePCSCD(t)
			card := &fixedCard{atr: []byte{0x3B, 0x01}}
			s, err := InsertWith(context.Background(), addr, card, DefaultTimeouts, quiet())
			if err != nil {
				t.Fatal(err)
			}
			defer s.Remove()
			c := <-conns
			f, _ := appendFrame(nil, tt.msg)
			if tt.msg == nil {
				f = []byte{0, 0}
			}
			if _, err := c.Write(f); err != nil {
				t.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			got, err := readFrame(c, nil)
			if err != nil || !bytes.Equal(got, []byte{0x67, 0x00}) {
				t.Fatalf("answer to % X: % X, %v; want 67 00", tt.msg, got, err)
			}
			select {
			case <-s.Done():
				t.Fatalf("slot stopped after bad input: %v", s.Err())
			default:
			}
			if got := exchange(t, c, []byte{0x90, 0x60, 0, 0, 0}); !bytes.Equal(got, []byte{0x90, 0x60, 0, 0, 0, 0x90, 0x00}) {
				t.Fatalf("APDU after bad input = % X", got)
			}
			if got := exchange(t, c, []byte{ctrlGetATR}); !bytes.Equal(got, card.atr) {
				t.Fatalf("ATR after bad input = % X", got)
			}
		})
	}
}

func TestInsertErrors(t *testing.T) {
	if _, err := Insert(context.Background(), "127.0.0.1:1", nil); err == nil {
		t.Error("nil card accepted")
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	if _, err := InsertWith(context.Background(), addr, &fixedCard{}, DefaultTimeouts, quiet()); err == nil {
		t.Error("insert into closed port succeeded")
	}
}

func TestContextEndRemoves(t *testing.T) {
	addr, conns := fakePCSCD(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := InsertWith(ctx, addr, &fixedCard{}, DefaultTimeouts, quiet())
	if err != nil {
		t.Fatal(err)
	}
	<-conns
	cancel()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("slot still serving after ctx ended")
	}
}
