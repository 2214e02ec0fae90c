// Package signin is how people and machines prove who they are to the
// registry's HTTP services (the API and the console), in one place so
// that both refuse, throttle and log the same way:
//
//   - machines and scripts send an API token (registry.TokenMachine,
//     made by `transit registry token create`, ending after a set time);
//   - staff sign in with their named account's password (Argon2id,
//     registry/password) and get a session token for a shift;
//   - residents sign in with a one-time code that the registry sends to
//     the contact it holds for them (registry/notify), and get a session
//     token for an hour. Nobody at a desk issues it, and the answer to
//     "send a code to registry number N" is the same whether N is
//     registered or not.
//
// Every failure counts against the client's address and, where there is
// one, the account (registry/throttle): past a free allowance the caller
// waits, longer after each further failure ([ThrottledError], which the
// services answer with 429 and Retry-After). Every refusal is logged
// with the client's address and counted (signin_refused_total); no log
// line holds a token, a password or a code.
package signin

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/password"
	"github.com/citycard/transit/registry/rnokpp"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/throttle"
)

// Options configures a Service.
type Options struct {
	Store store.Store
	// Sender delivers residents' one-time codes; nil turns resident
	// sign-in off.
	Sender notify.Sender
	// Password is the cost of new password hashes; zero means
	// password.Default. Tests lower it.
	Password password.Params
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Log receives every refusal; nil means slog.Default().
	Log *slog.Logger
	// Metrics, if set, gets the refusal counter.
	Metrics prometheus.Registerer
	// PerAddress and PerAccount are how forgiving the throttles are;
	// zero means throttle.PerAddress and throttle.PerAccount. A city
	// hall whose residents all come from one address may want a larger
	// allowance per address.
	PerAddress, PerAccount throttle.Policy
	// CodesPerHour bounds the codes one resident is sent in an hour;
	// zero means MaxCodesPerHour.
	CodesPerHour int
}

// Limits of resident sign-in.
const (
	// CodeTTL is how long a one-time code works.
	CodeTTL = 10 * time.Minute
	// CodeDigits is a code's length: 10^8 codes, of which an attacker
	// gets MaxCodeAttempts guesses per code sent.
	CodeDigits = 8
	// MaxCodeAttempts is how often one code may be tried.
	MaxCodeAttempts = 5
	// MaxCodesPerHour bounds the codes one resident is sent, so that
	// nobody can flood a person's phone.
	MaxCodesPerHour = 5
)

// concurrentHashes bounds the password hashes computed at once: each
// takes password.Default's 64 MiB, and a burst of sign-ins must not take
// the machine's memory.
const concurrentHashes = 2

// Service checks tokens, passwords and one-time codes.
type Service struct {
	st      store.Store
	sender  notify.Sender
	params  password.Params
	now     func() time.Time
	log     *slog.Logger
	addr    *throttle.Limiter // per client address
	account *throttle.Limiter // per staff account or registry number
	hashing chan struct{}
	perHour int
	// dummy is verified against when a user is unknown, so that the
	// answer takes as long as for a known one; made at the first need.
	dummyOnce sync.Once
	dummy     string
	refused   *prometheus.CounterVec
}

// New returns a Service.
func New(opt Options) (*Service, error) {
	if opt.Store == nil {
		return nil, errors.New("signin: no store")
	}
	s := &Service{st: opt.Store, sender: opt.Sender, params: opt.Password, now: opt.Now, log: opt.Log,
		hashing: make(chan struct{}, concurrentHashes)}
	if s.params == (password.Params{}) {
		s.params = password.Default
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.addr = throttle.New(cmp.Or(opt.PerAddress, throttle.PerAddress), s.now)
	s.account = throttle.New(cmp.Or(opt.PerAccount, throttle.PerAccount), s.now)
	s.perHour = cmp.Or(opt.CodesPerHour, MaxCodesPerHour)
	s.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "signin_refused_total",
		Help: "Sign-ins and requests refused: unknown, ended or revoked tokens, wrong passwords and codes, throttled callers.",
	}, []string{"kind", "reason"})
	if opt.Metrics != nil {
		if err := opt.Metrics.Register(s.refused); err != nil {
			return nil, fmt.Errorf("signin: metrics: %w", err)
		}
	}
	return s, nil
}

// ErrThrottled is wrapped by ThrottledError.
var ErrThrottled = errors.New("too many failed attempts")

// ThrottledError is a refusal to listen for a while.
type ThrottledError struct {
	Wait time.Duration
}

// Error says how long to wait.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v from this address or for this account; wait %s and try again", ErrThrottled, e.RetryAfter())
}

// Unwrap returns ErrThrottled.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// RetryAfter is the wait in whole seconds, as a Retry-After header
// gives it.
func (e *ThrottledError) RetryAfter() time.Duration {
	return (e.Wait + time.Second - 1).Truncate(time.Second)
}

// ErrResidentSignInOff is returned when no sender is configured.
var ErrResidentSignInOff = errors.New("resident sign-in is not set up here: the registry has no way to send codes (see transit registry serve --help, --notify-file)")

// refuse counts and logs a refusal.
func (s *Service) refuse(kind, reason, addr string, args ...any) {
	s.refused.WithLabelValues(kind, reason).Inc()
	s.log.Warn("sign-in refused", append([]any{"kind", kind, "reason", reason, "addr", addr}, args...)...)
}

// wait refuses a throttled key.
func (s *Service) wait(kind, addr string, keys ...string) error {
	d := s.addr.Wait(addr)
	for _, k := range keys {
		d = max(d, s.account.Wait(k))
	}
	if d > 0 {
		s.refuse(kind, "throttled", addr)
		return &ThrottledError{Wait: d}
	}
	return nil
}

// Bearer authenticates an API token sent by the client at addr.
func (s *Service) Bearer(ctx context.Context, addr, token string) (registry.TokenInfo, error) {
	if err := s.wait("token", addr); err != nil {
		return registry.TokenInfo{}, err
	}
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 200 {
		s.addr.Fail(addr)
		s.refuse("token", "malformed", addr)
		return registry.TokenInfo{}, fmt.Errorf("%w: the token is empty or not one of the registry's", registry.ErrUnauthenticated)
	}
	ti, err := s.st.Authenticate(ctx, registry.HashToken(token))
	if errors.Is(err, registry.ErrUnauthenticated) {
		s.addr.Fail(addr)
		s.refuse("token", "unknown, ended or revoked", addr)
	}
	return ti, err
}

// Session checks a session token the service holds for a signed-in
// browser; it counts no failure (the browser did not choose it).
func (s *Service) Session(ctx context.Context, hash [32]byte) (registry.TokenInfo, error) {
	return s.st.Authenticate(ctx, hash)
}

// Staff checks a staff member's password, from addr.
func (s *Service) Staff(ctx context.Context, addr, user, pw string) (registry.StaffAccount, error) {
	user = strings.TrimSpace(user)
	key := "staff:" + user
	if err := s.wait("password", addr, key); err != nil {
		return registry.StaffAccount{}, err
	}
	fail := func(reason string) (registry.StaffAccount, error) {
		s.addr.Fail(addr)
		s.account.Fail(key)
		s.refuse("password", reason, addr, "user", clip(user))
		return registry.StaffAccount{}, fmt.Errorf("%w: wrong user name or password", registry.ErrUnauthenticated)
	}
	if user == "" || pw == "" || len(user) > registry.MaxUserLen*4 {
		return fail("empty or malformed")
	}
	select {
	case s.hashing <- struct{}{}:
		defer func() { <-s.hashing }()
	case <-ctx.Done():
		return registry.StaffAccount{}, ctx.Err()
	}
	acc, err := s.st.Staff(ctx, user)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		s.dummyOnce.Do(func() { s.dummy, _ = password.Hash("not anybody's password", s.params) })
		password.Verify(s.dummy, pw) //nolint:errcheck // only to take the same time
		return fail("unknown user")
	case err != nil:
		return registry.StaffAccount{}, err
	}
	ok, err := password.Verify(acc.PasswordHash, pw)
	if err != nil {
		return registry.StaffAccount{}, fmt.Errorf("staff account %s: %w; set its password again (transit registry staff passwd)", user, err)
	}
	switch {
	case !ok:
		return fail("wrong password")
	case !acc.Disabled.IsZero():
		return fail("account disabled")
	}
	s.account.Succeed(key)
	if password.NeedsRehash(acc.PasswordHash, s.params) {
		if h, err := password.Hash(pw, s.params); err == nil {
			if err := s.st.SetStaffPassword(ctx, user, h); err != nil {
				s.log.Warn("could not store a stronger password hash", "user", user, "error", err)
			}
		}
	}
	acc.PasswordHash = ""
	return acc, nil
}

// Issue makes a session token for actor, signed in now: the secret to
// hand to the client once, and what is stored.
func (s *Service) Issue(ctx context.Context, actor registry.Actor, how string) (string, registry.TokenInfo, error) {
	secret, tok, err := registry.NewToken(actor, s.now().UTC())
	if err != nil {
		return "", registry.TokenInfo{}, err
	}
	tok.Kind, tok.CreatedBy, tok.Note = registry.TokenSession, actor.User, how
	ttl := registry.StaffSessionTTL
	if actor.Role == registry.RoleResident {
		ttl = registry.ResidentSessionTTL
	}
	tok.Expires = tok.Created.Add(ttl)
	if err := s.st.AddToken(ctx, tok); err != nil {
		return "", registry.TokenInfo{}, err
	}
	return secret, registry.TokenInfo{ID: registry.TokenID(tok.Hash), Actor: tok.Actor, Kind: tok.Kind, Created: tok.Created,
		Expires: tok.Expires, CreatedBy: tok.CreatedBy, Note: tok.Note}, nil
}

// ResidentSignInOn reports whether residents can sign in here.
func (s *Service) ResidentSignInOn() bool { return s.sender != nil }

// SendCode starts a resident's sign-in: it sends a one-time code to the
// contact registered for registryNumber and returns the sign-in's id,
// which the client sends back with the code. The answer is the same
// whether or not the number is registered (and has a contact that can
// receive a code): the registry does not tell strangers who is in it.
func (s *Service) SendCode(ctx context.Context, addr, registryNumber string) (string, error) {
	if s.sender == nil {
		return "", ErrResidentSignInOff
	}
	registryNumber = strings.TrimSpace(registryNumber)
	if _, err := rnokpp.Parse(registryNumber); err != nil {
		return "", &registry.FieldError{Field: "registry_number", Problem: err.Error()}
	}
	key := "resident:" + registryNumber
	if err := s.wait("code", addr, key); err != nil {
		return "", err
	}
	// Each request counts: a code sent costs the city and reaches a
	// person, so a caller asking for many is slowed like one guessing.
	s.addr.Fail(addr)
	s.account.Fail(key)
	id, err := randomID()
	if err != nil {
		return "", err
	}
	code, err := randomCode()
	if err != nil {
		return "", err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	resident, contact, err := s.st.StartResidentSignIn(ctx, registryNumber, store.ResidentCode{ID: id, CodeHash: codeHash(id, code),
		Created: now, Expires: now.Add(CodeTTL)})
	switch {
	case errors.Is(err, registry.ErrNotFound):
		s.refuse("code", "unknown registry number", addr)
		return id, nil
	case err != nil:
		return "", err
	}
	if n, err := s.st.ResidentCodesSince(ctx, resident, now.Add(-time.Hour)); err == nil && n > s.perHour {
		s.refuse("code", "too many codes for one resident", addr, "resident", resident)
		return id, nil
	}
	msg := notify.Message{To: contact, Subject: "Код входу / sign-in code",
		Text: fmt.Sprintf("Ваш код входу до міської картки: %s. Він діє %d хвилин. Нікому його не повідомляйте.\n"+
			"Your city card sign-in code: %s. It works for %d minutes. Tell it to nobody.", code, int(CodeTTL.Minutes()), code, int(CodeTTL.Minutes()))}
	if err := s.sender.Send(ctx, msg); err != nil {
		// The same answer as for anyone else: an error here would tell
		// a stranger that the number is registered.
		s.log.Error("could not send a resident's sign-in code", "resident", resident, "error", err)
	}
	return id, nil
}

// CheckCode finishes a resident's sign-in with the code they received.
func (s *Service) CheckCode(ctx context.Context, addr, id, code string) (registry.Actor, error) {
	if s.sender == nil {
		return registry.Actor{}, ErrResidentSignInOff
	}
	if err := s.wait("code", addr); err != nil {
		return registry.Actor{}, err
	}
	code = strings.Join(strings.Fields(code), "")
	if len(id) > 100 || len(code) != CodeDigits {
		s.addr.Fail(addr)
		s.refuse("code", "malformed", addr)
		return registry.Actor{}, fmt.Errorf("%w: a code has %d digits; type the one you received", registry.ErrUnauthenticated, CodeDigits)
	}
	resident, err := s.st.FinishResidentSignIn(ctx, id, codeHash(id, code), MaxCodeAttempts)
	if errors.Is(err, registry.ErrUnauthenticated) {
		s.addr.Fail(addr)
		s.refuse("code", "wrong, used or expired code", addr)
		return registry.Actor{}, err
	}
	if err != nil {
		return registry.Actor{}, err
	}
	return registry.Actor{User: registry.ResidentUser(resident), Role: registry.RoleResident, Resident: resident}, nil
}

// codeHash binds a code to its sign-in, so that equal codes of two
// sign-ins hash apart.
func codeHash(id, code string) [32]byte { return sha256.Sum256([]byte(id + "\x00" + code)) }

func randomID() (string, error) {
	var b [18]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("sign-in id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

func randomCode() (string, error) {
	limit := big.NewInt(1)
	for range CodeDigits {
		limit.Mul(limit, big.NewInt(10))
	}
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("sign-in code: %w", err)
	}
	return fmt.Sprintf("%0*d", CodeDigits, n), nil
}

// clip bounds what a refused user name puts in the log.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
