package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/citycard/transit/simulator/testenv"
)

// ptyPair opens a pseudo-terminal and returns its two ends: ptmx, the
// side a terminal emulator holds (what is written to it is typed), and
// tty, which term.IsTerminal reports as a terminal. Both close when the
// test ends.
func ptyPair(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		// Every Linux with /dev/pts has them; the harness's machines do.
		if testenv.Required() {
			t.Fatalf("no pseudo-terminals (/dev/ptmx): %v; CI must not skip this test", err)
		}
		t.Skipf("no pseudo-terminals here (/dev/ptmx): %v", err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatalf("unlock the pseudo-terminal: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, ptmx.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Fatalf("number of the pseudo-terminal: %v", e)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open the terminal end: %v", err)
	}
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
	})
	return ptmx, tty
}

// openPTY opens a pseudo-terminal pair and returns its terminal end,
// which term.IsTerminal reports as a terminal, as a person's shell is,
// and a function that returns how many bytes reached the screen. What is
// written is read away at once, so that a writer never blocks on a full
// terminal.
func openPTY(t *testing.T) (tty *os.File, written func() int64) {
	t.Helper()
	ptmx, tty := ptyPair(t)
	var screen atomic.Int64
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			screen.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		tty.Close()
		ptmx.Close()
		<-drained
	})
	// Give the reader a moment to take what the command wrote last.
	return tty, func() int64 { time.Sleep(100 * time.Millisecond); return screen.Load() }
}

// TestBinaryReportRefusesTerminal: XLSX and PDF without --out on a
// terminal stop with one line saying to give --out, and write nothing.
func TestBinaryReportRefusesTerminal(t *testing.T) {
	db, _, _ := pdfStore(t)
	for _, format := range []string{"xlsx", "pdf"} {
		tty, written := openPTY(t)
		var errb syncBuffer
		code := run(context.Background(), []string{"report", "compensation", "--period", "2026-11", "--format", format, "--db", db}, tty, &errb)
		if msg := errb.String(); code != 2 || !strings.Contains(msg, "--out FILE") || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
			t.Errorf("%s on a terminal: exit %d, %q; want exit 2 and one line asking for --out", format, code, msg)
		}
		if n := written(); n != 0 {
			t.Errorf("%s on a terminal: %d bytes reached the screen", format, n)
		}
	}
}
