// Package throttle slows down guessing: it counts failures (wrong
// tokens, passwords, codes) per key (a client address, an account) and,
// past a free allowance within a window, makes the key wait before it is
// heard again, twice as long after each further failure.
//
// A Limiter lives in memory: a restart forgives everyone, which costs an
// attacker a restart of a service they cannot cause. It holds at most
// MaxKeys keys; when full it forgets the keys whose wait is over first,
// and then refuses new keys until some expire, so that a flood of
// addresses cannot grow it without bound.
package throttle

import (
	"sync"
	"time"
)

// Policy is how forgiving a Limiter is.
type Policy struct {
	// Free is how many failures within Window cost nothing.
	Free int
	// Window is how long a failure is remembered.
	Window time.Duration
	// Base is the first wait after the free failures; each further
	// failure doubles it, up to Max.
	Base, Max time.Duration
}

// Policies the registry and clearing use.
var (
	// PerAddress: one client address, for anything it gets wrong.
	PerAddress = Policy{Free: 20, Window: 10 * time.Minute, Base: time.Second, Max: 15 * time.Minute}
	// PerAccount: one staff account or resident, however many
	// addresses the guesses come from.
	PerAccount = Policy{Free: 5, Window: 15 * time.Minute, Base: 30 * time.Second, Max: time.Hour}
)

// MaxKeys bounds a Limiter's memory.
const MaxKeys = 100_000

type entry struct {
	failures []time.Time // within Window, oldest first
	until    time.Time   // no hearing before this
}

// Limiter counts failures per key. The zero value is not usable; use New.
type Limiter struct {
	p         Policy
	mu        sync.Mutex
	m         map[string]*entry
	now       func() time.Time
	lastPrune time.Time
}

// New returns a limiter with policy p; now nil means time.Now.
func New(p Policy, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{p: p, m: map[string]*entry{}, now: now}
}

// Wait returns how long key must wait before it is heard, 0 when it may
// go on now.
func (l *Limiter) Wait(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) >= MaxKeys {
		if _, ok := l.m[key]; !ok {
			// Full of others' failures: a key it cannot count waits, so
			// that the table's size is no way around it.
			return l.p.Base
		}
	}
	e, ok := l.m[key]
	if !ok {
		return 0
	}
	if d := e.until.Sub(l.now()); d > 0 {
		return d
	}
	return 0
}

// Fail records a failure of key and returns how long it must now wait
// (0 while within the free allowance).
func (l *Limiter) Fail(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e, ok := l.m[key]
	if !ok {
		if len(l.m) >= MaxKeys {
			if now.Sub(l.lastPrune) >= time.Second {
				// At most once a second: a flood of new keys must not
				// make every failure walk the whole table.
				l.lastPrune = now
				l.prune(now)
			}
			if len(l.m) >= MaxKeys {
				return l.p.Base
			}
		}
		e = &entry{}
		l.m[key] = e
	}
	keep := e.failures[:0]
	for _, t := range e.failures {
		if now.Sub(t) < l.p.Window {
			keep = append(keep, t)
		}
	}
	e.failures = append(keep, now)
	over := len(e.failures) - l.p.Free
	if over <= 0 {
		return 0
	}
	wait := l.p.Base
	for i := 1; i < over && wait < l.p.Max; i++ {
		wait *= 2
	}
	wait = min(wait, l.p.Max)
	if until := now.Add(wait); until.After(e.until) {
		e.until = until
	}
	return e.until.Sub(now)
}

// Succeed forgets key's failures: the person got it right.
func (l *Limiter) Succeed(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.m, key)
}

// prune drops keys with no failure in the window and no wait.
func (l *Limiter) prune(now time.Time) {
	for k, e := range l.m {
		if now.After(e.until) && (len(e.failures) == 0 || now.Sub(e.failures[len(e.failures)-1]) >= l.p.Window) {
			delete(l.m, k)
		}
	}
}

// Len returns how many keys the limiter holds.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
