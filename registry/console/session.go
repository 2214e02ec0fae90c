package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"sync"
	"time"

	"github.com/citycard/transit/registry"
)

// Cookie names.
const (
	sessionCookie = "console_session"
	// loginCookie carries the login form's CSRF secret before there is a
	// session, so that nobody can sign a victim in as themselves.
	loginCookie = "console_login"
)

// Session lifetimes, unless Options say otherwise. A desk is a shared
// counter: a session left open must not outlive the operator's shift,
// and an idle one ends soon.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxLifetime = 12 * time.Hour
)

// session is one signed-in browser. It lives only in the server's
// memory: a restart signs everyone out, which is the safe failure.
type session struct {
	actor registry.Actor
	// tokenHash is the hash of the session token the sign-in stored in
	// the registry; every request checks it against the registry again,
	// so a token revoked there (or the account disabled) ends the
	// session at once. tokenID names it for the sign-out's revocation.
	tokenHash [sha256.Size]byte
	tokenID   string
	// csrf is the secret every POST form of this session carries.
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// sessions holds the live sessions by id.
type sessions struct {
	mu          sync.Mutex
	byID        map[string]*session
	idle, limit time.Duration
}

func newSessions(idle, limit time.Duration) *sessions {
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	if limit <= 0 {
		limit = DefaultMaxLifetime
	}
	return &sessions{byID: map[string]*session{}, idle: idle, limit: limit}
}

// randomToken returns 256 random bits, URL-safe: unguessable, so a
// session id or CSRF secret needs no further protection than secrecy.
func randomToken() string {
	var b [32]byte
	// crypto/rand.Read never fails (it crashes the program instead).
	rand.Read(b[:]) //nolint:errcheck
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for actor and returns its id. It also drops
// expired sessions, so that the map does not grow with abandoned ones.
func (s *sessions) create(actor registry.Actor, tokenHash [sha256.Size]byte, tokenID string, now time.Time) (string, *session) {
	id := randomToken()
	ses := &session{actor: actor, tokenHash: tokenHash, tokenID: tokenID, csrf: randomToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.byID {
		if s.expired(v, now) {
			delete(s.byID, k)
		}
	}
	s.byID[id] = ses
	return id, ses
}

// get returns the live session with id and marks it used, or nil.
func (s *sessions) get(id string, now time.Time) *session {
	s.mu.Lock()
	defer s.mu.Unlock()
	ses, ok := s.byID[id]
	if !ok {
		return nil
	}
	if s.expired(ses, now) {
		delete(s.byID, id)
		return nil
	}
	ses.lastSeen = now
	// A copy: handlers read it without the lock.
	c := *ses
	return &c
}

func (s *sessions) expired(ses *session, now time.Time) bool {
	return now.Sub(ses.lastSeen) > s.idle || now.Sub(ses.created) > s.limit
}

// end removes a session.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

// sameSecret compares two secrets in constant time.
func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
