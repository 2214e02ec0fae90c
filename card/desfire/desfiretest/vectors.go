// Package desfiretest loads the published DESFire examples of
// testdata/desfire/vectors.txt, which card/desfire replays on the reader
// side and simulator/vcard on the card side, and offers a scripted
// transport that checks each command byte for byte.
package desfiretest

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Vector is one published example: hex fields by name.
type Vector map[string][]byte

// Has reports whether the vector has field name.
func (v Vector) Has(name string) bool { _, ok := v[name]; return ok }

// Get returns field name, failing t when it is missing.
func (v Vector) Get(t testing.TB, name string) []byte {
	t.Helper()
	b, ok := v[name]
	if !ok {
		t.Fatalf("vector has no field %q", name)
	}
	return append([]byte(nil), b...)
}

// Vectors loads every vector, by name.
func Vectors(t testing.TB) map[string]Vector {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	path := filepath.Join(filepath.Dir(here), "..", "..", "..", "testdata", "desfire", "vectors.txt")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]Vector{}
	var cur Vector
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			cur = Vector{}
			out[strings.Trim(line, "[]")] = cur
		default:
			name, val, _ := strings.Cut(line, " ")
			b, err := hex.DecodeString(strings.ReplaceAll(val, " ", ""))
			if err != nil || cur == nil {
				t.Fatalf("vectors.txt line %d: %q: %v", n, line, err)
			}
			cur[name] = b
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Vector returns the vector called name.
func Get(t testing.TB, name string) Vector {
	t.Helper()
	v, ok := Vectors(t)[name]
	if !ok {
		t.Fatalf("no vector %q in testdata/desfire/vectors.txt", name)
	}
	return v
}

// Script is a transport that answers the vector's respN to its cmdN,
// failing when the command differs from the published one.
type Script struct {
	T testing.TB
	V Vector
	n int
}

// Transmit implements apdu.Transport.
func (s *Script) Transmit(cmd []byte) ([]byte, error) {
	s.T.Helper()
	s.n++
	want, ok := s.V[cmdName(s.n)]
	if ok && !bytes.Equal(cmd, want) {
		s.T.Fatalf("APDU %d = %X, published %X", s.n, cmd, want)
	}
	resp, ok := s.V[respName(s.n)]
	if !ok {
		s.T.Fatalf("APDU %d (%X): the example has no answer", s.n, cmd)
	}
	return resp, nil
}

// Done reports whether every published response was used.
func (s *Script) Done() bool { _, more := s.V[respName(s.n+1)]; return !more }

func cmdName(n int) string  { return "cmd" + string(rune('0'+n)) }
func respName(n int) string { return "resp" + string(rune('0'+n)) }

// FixedRand reads b, then zeros: the random numbers of a published run.
type FixedRand struct{ B []byte }

func (r *FixedRand) Read(p []byte) (int, error) {
	n := copy(p, r.B)
	r.B = r.B[n:]
	clear(p[n:])
	return len(p), nil
}
