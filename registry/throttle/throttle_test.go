package throttle_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/citycard/transit/registry/throttle"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestLimiter(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := throttle.New(throttle.Policy{Free: 3, Window: time.Minute, Base: time.Second, Max: 8 * time.Second}, c.now)
	for i := range 3 {
		if d := l.Fail("a"); d != 0 {
			t.Fatalf("free failure %d: wait %s", i, d)
		}
	}
	if l.Wait("a") != 0 {
		t.Fatal("waiting within the allowance")
	}
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second} {
		if d := l.Fail("a"); d != want {
			t.Fatalf("failure %d past the allowance: wait %s, want %s", i+1, d, want)
		}
	}
	if d := l.Wait("a"); d != 8*time.Second {
		t.Errorf("Wait = %s", d)
	}
	if l.Wait("b") != 0 {
		t.Error("another key waits")
	}
	c.t = c.t.Add(9 * time.Second)
	if l.Wait("a") != 0 {
		t.Error("still waiting after the wait")
	}
	// The window forgets old failures.
	c.t = c.t.Add(2 * time.Minute)
	if d := l.Fail("a"); d != 0 {
		t.Errorf("a failure after the window: wait %s", d)
	}
	l.Succeed("a")
	if l.Len() != 0 {
		t.Errorf("%d keys after Succeed", l.Len())
	}
}

// TestLimiterBounded: a flood of addresses cannot grow it past MaxKeys,
// and keys it cannot count wait.
func TestLimiterBounded(t *testing.T) {
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := throttle.New(throttle.Policy{Free: 1, Window: time.Hour, Base: time.Second, Max: time.Minute}, c.now)
	for i := range throttle.MaxKeys + 10 {
		l.Fail(fmt.Sprint(i))
	}
	if l.Len() > throttle.MaxKeys {
		t.Fatalf("%d keys, bound %d", l.Len(), throttle.MaxKeys)
	}
	if l.Wait("new one") == 0 {
		t.Error("a new key in a full table does not wait")
	}
}
