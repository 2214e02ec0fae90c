package password_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/citycard/transit/registry/password"
)

var cheap = password.Params{Time: 1, MemoryKiB: 64, Threads: 1}

func TestHashVerify(t *testing.T) {
	h, err := password.Hash("correct horse battery", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q", h)
	}
	if ok, err := password.Verify(h, "correct horse battery"); !ok || err != nil {
		t.Errorf("the right password: %v, %v", ok, err)
	}
	if ok, _ := password.Verify(h, "correct horse batterY"); ok {
		t.Error("a wrong password verified")
	}
	h2, _ := password.Hash("correct horse battery", cheap)
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	if !password.NeedsRehash(h, password.Default) || password.NeedsRehash(h, cheap) {
		t.Error("NeedsRehash")
	}
	if _, err := password.Verify("$2a$10$bcrypt", "x"); !errors.Is(err, password.ErrFormat) {
		t.Errorf("a bcrypt hash: %v", err)
	}
	if _, err := password.Verify("$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "x"); !errors.Is(err, password.ErrFormat) {
		t.Errorf("a hash asking for 95 GiB: %v", err)
	}
}

func TestCheck(t *testing.T) {
	for pw, ok := range map[string]bool{"short": false, "aaaaaaaaaaaaaaaa": false, "три слова разом": true, "correct horse battery": true,
		strings.Repeat("ab", 600): false, "bad \xff bytes here": false} {
		if err := password.Check(pw); (err == nil) != ok {
			t.Errorf("Check(%q) = %v", pw, err)
		}
	}
}

// FuzzVerify: a stored hash read from the database, however damaged,
// gives an error or an answer, never a panic or an unbounded cost.
func FuzzVerify(f *testing.F) {
	h, _ := password.Hash("correct horse battery", cheap)
	f.Add(h)
	f.Add("$argon2id$v=19$m=64,t=1,p=1$$")
	f.Add("$argon2id$")
	f.Fuzz(func(t *testing.T, encoded string) {
		password.Verify(encoded, "correct horse battery") //nolint:errcheck // only must not panic
	})
}

// BenchmarkHashDefault is the cost of one staff sign-in with the
// production parameters.
func BenchmarkHashDefault(b *testing.B) {
	for range b.N {
		if _, err := password.Hash("correct horse battery", password.Default); err != nil {
			b.Fatal(err)
		}
	}
}
