// Package progress draws progress bars for the long steps of the
// simulator's commands. A bar is drawn only on a terminal: written to a
// file or a pipe, a step prints nothing until it ends, so logs and test
// output keep plain lines.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// width is the bar's length in characters.
const width = 30

// Meter draws one bar at a time on a terminal. It is safe for concurrent
// use.
type Meter struct {
	w   io.Writer
	tty bool
	// every is the least time between two redraws, so that a step of a
	// million units does not write a million lines of escapes.
	every time.Duration

	mu      sync.Mutex
	step    string
	drawn   time.Time
	visible bool
}

// New returns a Meter writing to w, drawing bars only when tty is true.
func New(w io.Writer, tty bool) *Meter {
	return &Meter{w: w, tty: tty, every: 100 * time.Millisecond}
}

// For returns a Meter for w that draws bars when w is a terminal.
func For(w io.Writer) *Meter {
	f, ok := w.(*os.File)
	return New(w, ok && term.IsTerminal(int(f.Fd())))
}

// Terminal reports whether the Meter draws bars.
func (m *Meter) Terminal() bool { return m != nil && m.tty }

// Update shows that step has done units of total. The bar is redrawn at
// most every 100 ms, and always when a step starts or completes; a
// completed step's bar is erased so that the caller's line about the step
// takes its place. A nil Meter does nothing.
func (m *Meter) Update(step string, done, total int) {
	if m == nil || !m.tty {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	finished := total > 0 && done >= total
	if step == m.step && !finished && now.Sub(m.drawn) < m.every {
		return
	}
	m.step, m.drawn = step, now
	if finished {
		m.clearLocked()
		m.step = ""
		return
	}
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	full := int(frac * width)
	bar := strings.Repeat("#", full) + strings.Repeat(".", width-full)
	fmt.Fprintf(m.w, "\r\x1b[K  %s [%s] %3.0f%% %d/%d", step, bar, 100*frac, done, total)
	m.visible = true
}

// Clear erases a bar left on the line, before the caller prints.
func (m *Meter) Clear() {
	if m == nil || !m.tty {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clearLocked()
}

func (m *Meter) clearLocked() {
	if m.visible {
		fmt.Fprint(m.w, "\r\x1b[K")
		m.visible = false
	}
}
