package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestBarsOnlyOnATerminal(t *testing.T) {
	var plain bytes.Buffer
	m := New(&plain, false)
	m.Update("issuing cards", 5, 10)
	m.Clear()
	if plain.Len() != 0 {
		t.Fatalf("a file or pipe got %q; want nothing", plain.String())
	}

	var tty bytes.Buffer
	m = New(&tty, true)
	m.Update("issuing cards", 5, 10)
	if s := tty.String(); !strings.Contains(s, "issuing cards [###############...............]  50% 5/10") {
		t.Fatalf("bar %q", s)
	}
	n := tty.Len()
	m.Update("issuing cards", 6, 10) // within 100 ms of the last draw
	if tty.Len() != n {
		t.Fatalf("redrew at once: %q", tty.String()[n:])
	}
	m.Update("issuing cards", 10, 10)
	if s := tty.String()[n:]; s != "\r\x1b[K" {
		t.Fatalf("a finished step should erase its bar, wrote %q", s)
	}
	m.Clear()
	if tty.String()[n:] != "\r\x1b[K" {
		t.Fatal("Clear with no bar on the line wrote something")
	}
	var nilMeter *Meter
	nilMeter.Update("x", 1, 2) // a nil Meter does nothing
	nilMeter.Clear()
}
