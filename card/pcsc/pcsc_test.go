//go:build cgo

package pcsc

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/card/apdu"
	"github.com/citycard/transit/simulator/testenv"
	"github.com/citycard/transit/simulator/vpcd"
)

// testCard answers SELECT, an echo command (INS 0xEE) and FF CA; it can be
// told to hang so the bridge's timeout is exercised.
type testCard struct {
	uid  []byte
	hang chan struct{}
}

func (c *testCard) ATR() []byte { return []byte{0x3B, 0x81, 0x80, 0x01, 0x80, 0x80} }
func (c *testCard) Reset()      {}
func (c *testCard) Respond(cmd []byte) []byte {
	if c.hang != nil {
		<-c.hang
	}
	switch {
	case len(cmd) >= 4 && cmd[0] == 0xFF && cmd[1] == 0xCA:
		return append(slices.Clone(c.uid), 0x90, 0x00)
	case len(cmd) >= 4 && cmd[1] == 0xA4:
		return []byte{0x90, 0x00}
	case len(cmd) >= 5 && cmd[1] == 0xEE:
		return append(slices.Clone(cmd[5:]), 0x90, 0x00)
	}
	return []byte{0x6D, 0x00}
}

func insert(t testing.TB, addr string, c vpcd.Card, to vpcd.Timeouts) *vpcd.Slot {
	t.Helper()
	s, err := vpcd.InsertWith(context.Background(), addr, c, to, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Remove)
	return s
}

func testLogger(t testing.TB) *slogLogger { return newTestLogger(t) }

// emptyReader waits until a previous test's card has left name, since pcscd
// notices removal only at its next ~400 ms poll.
func emptyReader(t testing.TB, name string) *Reader {
	t.Helper()
	r := Open(name)
	t.Cleanup(func() { _ = r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitRemoval(ctx, nil); err != nil {
		t.Fatalf("reader %q not empty: %v", name, err)
	}
	return r
}

func waitCard(t testing.TB, r *Reader) *Card {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := r.WaitCard(ctx)
	if err != nil {
		t.Fatalf("WaitCard: %v", err)
	}
	return c
}

func TestTransmitRemoveReinsert(t *testing.T) {
	addr, name := testenv.PCSC(t, 0)
	r := emptyReader(t, name)
	uid := []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	s := insert(t, addr, &testCard{uid: uid}, vpcd.DefaultTimeouts)
	card := waitCard(t, r)

	tests := []struct {
		name string
		cmd  []byte
		want []byte
	}{
		{"select", []byte{0x00, 0xA4, 0x04, 0x00, 0x03, 1, 2, 3}, []byte{0x90, 0x00}},
		{"echo", []byte{0x80, 0xEE, 0, 0, 3, 0xAA, 0xBB, 0xCC}, []byte{0xAA, 0xBB, 0xCC, 0x90, 0x00}},
		{"unknown", []byte{0x80, 0x01, 0, 0}, []byte{0x6D, 0x00}},
	}
	for _, tt := range tests {
		got, err := card.Transmit(tt.cmd)
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("%s: got % X, %v; want % X", tt.name, got, err, tt.want)
		}
	}
	if got, err := card.UID(); err != nil || !bytes.Equal(got, uid) {
		t.Errorf("UID = % X, %v; want % X", got, err, uid)
	}

	s.Remove()
	if _, err := card.Transmit([]byte{0x00, 0xA4, 0x04, 0x00}); !errors.Is(err, apdu.ErrCardRemoved) {
		t.Fatalf("Transmit after removal: %v; want ErrCardRemoved", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitRemoval(ctx, card); err != nil {
		t.Fatalf("WaitRemoval: %v", err)
	}

	uid2 := []byte{0x04, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44}
	insert(t, addr, &testCard{uid: uid2}, vpcd.DefaultTimeouts)
	card2 := waitCard(t, r)
	defer card2.Close()
	if got, err := card2.UID(); err != nil || !bytes.Equal(got, uid2) {
		t.Errorf("second card UID = % X, %v; want % X", got, err, uid2)
	}
}

func TestTwoReaders(t *testing.T) {
	addr0, name0 := testenv.PCSC(t, 0)
	addr1, name1 := testenv.PCSC(t, 1)
	uids := [][]byte{{1, 2, 3, 4}, {5, 6, 7, 8}}
	readers := []*Reader{emptyReader(t, name0), emptyReader(t, name1)}
	insert(t, addr0, &testCard{uid: uids[0]}, vpcd.DefaultTimeouts)
	insert(t, addr1, &testCard{uid: uids[1]}, vpcd.DefaultTimeouts)
	for i, r := range readers {
		c := waitCard(t, r)
		defer c.Close()
		if got, err := c.UID(); err != nil || !bytes.Equal(got, uids[i]) {
			t.Errorf("reader %q UID = % X, %v; want % X", r.name, got, err, uids[i])
		}
	}
}

func TestHangingCardDoesNotBlock(t *testing.T) {
	addr, name := testenv.PCSC(t, 0)
	r := emptyReader(t, name)
	hang := make(chan struct{})
	defer close(hang)
	to := vpcd.DefaultTimeouts
	to.Respond = 500 * time.Millisecond
	insert(t, addr, &testCard{uid: []byte{1}, hang: hang}, to)
	card := waitCard(t, r)
	defer card.Close()
	done := make(chan error, 1)
	go func() { _, err := card.Transmit([]byte{0x00, 0xA4, 0x04, 0x00}); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, apdu.ErrCardRemoved) {
			t.Fatalf("Transmit to hanging card: %v; want ErrCardRemoved", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Transmit to a card that never answers is still blocked after 20 s")
	}
}

func TestUnknownReaderListsReaders(t *testing.T) {
	_, name := testenv.PCSC(t, 0)
	r := Open("No Such Reader 99")
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := r.WaitCard(ctx)
	if !errors.Is(err, ErrUnknownReader) || !strings.Contains(err.Error(), name) {
		t.Fatalf("WaitCard on unknown reader: %v; want ErrUnknownReader listing %q", err, name)
	}
}

func TestWaitCardHonoursContext(t *testing.T) {
	_, name := testenv.PCSC(t, 1)
	r := emptyReader(t, name)
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	_, err := r.WaitCard(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitCard on empty reader: %v; want deadline exceeded", err)
	}
}

func BenchmarkTransmit(b *testing.B) {
	addr, name := testenv.PCSC(b, 0)
	r := emptyReader(b, name)
	insert(b, addr, &testCard{uid: []byte{1, 2, 3, 4}}, vpcd.DefaultTimeouts)
	card := waitCard(b, r)
	defer card.Close()
	cmd := []byte{0x80, 0xEE, 0, 0, 16, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := card.Transmit(cmd); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms/apdu")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms/apdu")
}
