// Package password hashes staff passwords with Argon2id (RFC 9106,
// golang.org/x/crypto/argon2), a memory-hard function: guessing a
// password from a stolen hash costs the attacker the same memory per
// guess as it costs the registry per sign-in.
//
// Hashes are kept in the PHC string format,
// "$argon2id$v=19$m=65536,t=3,p=1$<salt>$<hash>", so that the
// parameters travel with each hash and can be raised later: [Verify]
// reads them from the hash, and [NeedsRehash] tells when a hash was made
// with weaker ones than today's.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are Argon2id's costs.
type Params struct {
	Time      uint32 // passes over the memory
	MemoryKiB uint32
	Threads   uint8
}

// Default is RFC 9106's second recommendation with one lane: 64 MiB and
// three passes, about 0.25 s on one core of a shared 2-core machine
// (BenchmarkHashDefault).
var Default = Params{Time: 3, MemoryKiB: 64 * 1024, Threads: 1}

// Limits on a password.
const (
	MinLen = 12   // characters: a passphrase of three words passes
	MaxLen = 1024 // bytes: more only costs hashing time
)

const (
	saltLen = 16
	keyLen  = 32
)

// ErrFormat is wrapped when a stored hash cannot be read.
var ErrFormat = errors.New("not an Argon2id password hash")

// Check refuses a password too short or too long to use, or one that is
// not text.
func Check(pw string) error {
	switch n := utf8.RuneCountInString(pw); {
	case !utf8.ValidString(pw):
		return errors.New("the password is not valid UTF-8 text")
	case n < MinLen:
		return fmt.Errorf("the password has %d characters; use at least %d (a few words make a good one)", n, MinLen)
	case len(pw) > MaxLen:
		return fmt.Errorf("the password is longer than %d bytes", MaxLen)
	case strings.Count(pw, string([]rune(pw)[:1])) == n:
		return errors.New("the password repeats one character; choose another")
	}
	return nil
}

// Hash returns the encoded Argon2id hash of pw with a fresh salt.
func Hash(pw string, p Params) (string, error) {
	if p.Time == 0 || p.MemoryKiB < 8*uint32(max(p.Threads, 1)) || p.Threads == 0 {
		return "", fmt.Errorf("password hash parameters %+v: want time, memory and threads above zero", p)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password hash: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var b64 = base64.RawStdEncoding

// decode reads an encoded hash.
func decode(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, ErrFormat
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, fmt.Errorf("%w: version %q", ErrFormat, parts[2])
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, fmt.Errorf("%w: parameters %q", ErrFormat, parts[3])
	}
	// Bound what a damaged or planted hash could make Verify spend:
	// 256 MiB and 10 passes are far above what Hash is given.
	if p.Time == 0 || p.Time > 10 || p.MemoryKiB < 8 || p.MemoryKiB > 256<<10 || p.Threads == 0 || p.Threads > 16 {
		return p, nil, nil, fmt.Errorf("%w: parameters %q out of range", ErrFormat, parts[3])
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, fmt.Errorf("%w: salt", ErrFormat)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 {
		return p, nil, nil, fmt.Errorf("%w: hash", ErrFormat)
	}
	return p, salt, key, nil
}

// Verify reports whether pw matches the encoded hash. An error means the
// hash itself cannot be read.
func Verify(encoded, pw string) (bool, error) {
	p, salt, key, err := decode(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) > MaxLen {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

// NeedsRehash reports whether encoded was made with weaker parameters
// than p, so that a sign-in that proved the password can store a new
// hash.
func NeedsRehash(encoded string, p Params) bool {
	have, _, _, err := decode(encoded)
	return err != nil || have.Time < p.Time || have.MemoryKiB < p.MemoryKiB
}
