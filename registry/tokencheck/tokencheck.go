// Package tokencheck lets another service of the platform (clearing)
// check its callers with the registry's staff identities: it asks the
// registry whose a bearer token is (POST /v1/auth/introspect, with the
// service's own token) and keeps the answer briefly.
//
// Why ask rather than verify a signed token locally: the registry is the
// one place that knows whether a token was revoked or its account
// disabled, and asking keeps that true everywhere within TTL (30 s by
// default) without a second kind of token to issue, rotate and leak.
// The cost is a round trip per new token per TTL, which a finance
// office's traffic does not notice. When the registry cannot be reached,
// callers are refused (503), never let in on an old answer.
package tokencheck

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/citycard/transit/registry"
)

// DefaultTTL is how long an answer is kept unless told: the longest a
// revoked token keeps working at the asking service.
const DefaultTTL = 30 * time.Second

// negativeTTL keeps "not active" shorter: a token just made works soon.
const negativeTTL = 5 * time.Second

// maxCache bounds the answers kept.
const maxCache = 10_000

// ErrUnavailable is wrapped when the registry could not answer.
var ErrUnavailable = errors.New("the registry could not check the token")

// Client asks the registry about tokens.
type Client struct {
	base    string
	token   string
	hc      *http.Client
	ttl     time.Duration
	now     func() time.Time
	mu      sync.Mutex
	answers map[[32]byte]answer
}

type answer struct {
	actor   registry.Actor
	active  bool
	expires time.Time // of the cache entry
}

// Options configures a Client.
type Options struct {
	// TTL is how long an answer is kept; zero means DefaultTTL.
	TTL time.Duration
	// HTTP is the client for the registry (its TLS roots); nil means
	// one with a 10-second timeout.
	HTTP *http.Client
	Now  func() time.Time
}

// New returns a client of the registry API at base (https://host:8081)
// that authenticates with the service token.
func New(base, serviceToken string, opt Options) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registry URL %q: want http(s)://host:port of the registry API", base)
	}
	if strings.TrimSpace(serviceToken) == "" {
		return nil, errors.New("no service token for the registry: make one with transit registry token create --role service")
	}
	c := &Client{base: strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), "/v1"), token: strings.TrimSpace(serviceToken),
		hc: opt.HTTP, ttl: opt.TTL, now: opt.Now, answers: map[[32]byte]answer{}}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 10 * time.Second}
	}
	if c.ttl <= 0 {
		c.ttl = DefaultTTL
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Authenticate returns the actor of token, ErrUnauthenticated for a
// token the registry does not hold live, or an error wrapping
// ErrUnavailable when it cannot tell.
func (c *Client) Authenticate(ctx context.Context, token string) (registry.Actor, error) {
	token = strings.TrimSpace(token)
	if token == "" || len(token) > 200 {
		return registry.Actor{}, fmt.Errorf("%w: no registry token", registry.ErrUnauthenticated)
	}
	key := sha256.Sum256([]byte(token))
	now := c.now()
	c.mu.Lock()
	a, ok := c.answers[key]
	c.mu.Unlock()
	if !ok || !now.Before(a.expires) {
		var err error
		if a, err = c.ask(ctx, token, now); err != nil {
			return registry.Actor{}, err
		}
		c.mu.Lock()
		if len(c.answers) >= maxCache {
			clear(c.answers)
		}
		c.answers[key] = a
		c.mu.Unlock()
	}
	if !a.active {
		return registry.Actor{}, fmt.Errorf("%w: the registry does not know this token, or it ended or was revoked; sign in again", registry.ErrUnauthenticated)
	}
	return a.actor, nil
}

func (c *Client) ask(ctx context.Context, token string, now time.Time) (answer, error) {
	body, _ := json.Marshal(map[string]string{"token": token})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/auth/introspect", bytes.NewReader(body))
	if err != nil {
		return answer{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		// The service's own token is refused, or the registry failed:
		// either way nobody can be let in.
		return answer{}, fmt.Errorf("%w: the registry answered %s: %.200s", ErrUnavailable, resp.Status, bytes.TrimSpace(data))
	}
	var in struct {
		Active  bool          `json:"active"`
		User    string        `json:"user"`
		Role    registry.Role `json:"role"`
		Expires *time.Time    `json:"expires"`
	}
	if err := json.Unmarshal(data, &in); err != nil {
		return answer{}, fmt.Errorf("%w: the answer is not the registry's: %v", ErrUnavailable, err)
	}
	if !in.Active {
		return answer{expires: now.Add(negativeTTL)}, nil
	}
	a := answer{actor: registry.Actor{User: in.User, Role: in.Role}, active: true, expires: now.Add(c.ttl)}
	if in.Expires != nil && in.Expires.Before(a.expires) {
		a.expires = *in.Expires
	}
	if !a.actor.Role.Valid() || a.actor.User == "" {
		return answer{}, fmt.Errorf("%w: the registry answered an unknown role %q", ErrUnavailable, in.Role)
	}
	return a, nil
}
