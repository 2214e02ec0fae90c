package registry

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"time"
)

// TokenKind says how a token came to be.
type TokenKind string

// Token kinds.
const (
	// TokenMachine is made by an administrator for a machine or a script
	// (transit registry token create): clearing, a desk's command line,
	// Prometheus.
	TokenMachine TokenKind = "machine"
	// TokenSession is made by a sign-in (a staff member's password, a
	// resident's one-time code) and lives for hours.
	TokenSession TokenKind = "session"
)

// Token lifetimes.
const (
	// DefaultTokenTTL is how long a machine token lives unless told.
	DefaultTokenTTL = 90 * 24 * time.Hour
	// MaxTokenTTL is the longest any token may live: a token is a
	// password nobody types, and one that never ends is found years
	// later in a script.
	MaxTokenTTL = 366 * 24 * time.Hour
	// StaffSessionTTL and ResidentSessionTTL bound a sign-in's token:
	// a desk shift, and a resident's visit.
	StaffSessionTTL    = 12 * time.Hour
	ResidentSessionTTL = time.Hour
)

// Token is an API token as the registry stores it: only the SHA-256 of
// the secret, bound to a user and a role, with an end.
type Token struct {
	Hash    [sha256.Size]byte
	Actor   Actor
	Kind    TokenKind
	Created time.Time
	// Expires is when the token stops working.
	Expires time.Time
	// CreatedBy says who made it ("transit registry token create" or the
	// user who signed in); Note is free text ("clearing on host X").
	CreatedBy string
	Note      string
}

// Validate checks a token before it is stored, and puts its texts into
// NFC.
func (t *Token) Validate() error {
	if err := t.Actor.Validate(); err != nil {
		return err
	}
	switch {
	case t.Kind != TokenMachine && t.Kind != TokenSession:
		return fieldErr("kind", "%q; want machine or session", t.Kind)
	case t.Created.IsZero():
		return fieldErr("created", "missing")
	case !t.Expires.After(t.Created):
		return fieldErr("expires", "%s is not after the token's creation; give a lifetime above zero", t.Expires.Format(time.RFC3339))
	case t.Expires.Sub(t.Created) > MaxTokenTTL:
		return fieldErr("expires", "a token lives at most %d days; make a new one when it ends", int(MaxTokenTTL.Hours()/24))
	}
	if err := cleanField("created_by", &t.CreatedBy, MaxUserLen, false); err != nil {
		return err
	}
	return cleanField("note", &t.Note, MaxTextLen, false)
}

// TokenInfo is what the registry shows of a stored token: never its
// secret or hash, only its public id.
type TokenInfo struct {
	// ID names the token in lists and revocations: the first 8 bytes of
	// its hash, in hex. It does not let anyone use the token.
	ID        string    `json:"id"`
	Actor     Actor     `json:"actor"`
	Kind      TokenKind `json:"kind"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	CreatedBy string    `json:"created_by,omitempty"`
	Note      string    `json:"note,omitempty"`
	// LastUsed is when it last authenticated a request (to the minute);
	// zero if never.
	LastUsed time.Time `json:"last_used,omitzero"`
	// Revoked is when it was revoked, by RevokedBy; zero while it is not.
	Revoked   time.Time `json:"revoked,omitzero"`
	RevokedBy string    `json:"revoked_by,omitempty"`
}

// Live reports whether the token still works at now.
func (t *TokenInfo) Live(now time.Time) bool { return t.Revoked.IsZero() && !now.After(t.Expires) }

// TokenQuery selects tokens to list.
type TokenQuery struct {
	// All includes revoked and expired tokens; otherwise only live ones.
	All bool
	// User, if set, lists only this user's tokens.
	User string
}

// tokenPrefix marks registry tokens so that a leaked one is recognisable
// (secret scanners) and cannot be mistaken for another system's.
const tokenPrefix = "rgt_"

// NewToken makes a fresh random machine token for actor, living
// DefaultTokenTTL from now: the secret to give the user once, and the
// Token to store. Set the Token's Kind, Expires, CreatedBy and Note
// before storing it to make another.
func NewToken(actor Actor, now time.Time) (secret string, t Token, err error) {
	if err := actor.Validate(); err != nil {
		return "", Token{}, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Token{}, fmt.Errorf("new token: %w", err)
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, Token{Hash: HashToken(secret), Actor: actor, Kind: TokenMachine, Created: now, Expires: now.Add(DefaultTokenTTL)}, nil
}

// HashToken returns the SHA-256 under which a token's secret is stored.
// A plain hash suffices: the secret is 256 random bits, so there is
// nothing to guess and no need for a slow password hash.
func HashToken(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// TokenID is the public id of the token with hash h.
func TokenID(h [sha256.Size]byte) string { return hex.EncodeToString(h[:8]) }

// String shows a token without its hash.
func (t Token) String() string {
	return fmt.Sprintf("token(%s, %s %s, until %s)", TokenID(t.Hash), t.Actor.User, t.Actor.Role, t.Expires.Format(time.RFC3339))
}

// GoString hides the hash from %#v as well.
func (t Token) GoString() string { return t.String() }
