package api

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
)

// Roles of the held-ride endpoints: finance staff decide held rides,
// auditors read them.
const (
	RoleFinance = "finance"
	RoleAuditor = "auditor"
)

// Caller is who makes a request, as an Authenticator found.
type Caller struct {
	Name, Role string
}

// String names the caller as decisions record it: "finance:olena".
func (c Caller) String() string { return c.Role + ":" + c.Name }

// Authenticator says who makes a request. The held-ride endpoints need
// one; a Server without it answers them with 503. It is an interface so
// that another scheme (the platform's single sign-on, say) replaces
// Tokens without touching the handlers.
type Authenticator interface {
	Authenticate(r *http.Request) (Caller, error)
}

// ErrUnauthenticated is wrapped when a request carries no known token.
var ErrUnauthenticated = errors.New("unauthenticated")

// Tokens authenticates bearer tokens against a list of their SHA-256
// hashes, each with a name and a role: the list clearing's API token file
// holds (TokenLine). Only hashes are kept, so a leaked file lets no one
// in.
type Tokens struct {
	byHash map[[32]byte]Caller
}

// tokenPrefix marks clearing API tokens, so that a leaked one is
// recognisable and not mistaken for another system's.
const tokenPrefix = "clt_"

// NewToken returns a fresh token's secret, for the caller to give the
// person once, and the line of the token file that lets it in.
func NewToken(role, name string) (secret, line string, err error) {
	if role != RoleFinance && role != RoleAuditor {
		return "", "", fmt.Errorf("role %q: want %s or %s", role, RoleFinance, RoleAuditor)
	}
	if name == "" || len(name) > 64 || strings.ContainsAny(name, " \t\r\n:") {
		return "", "", fmt.Errorf("name %q: 1 to 64 bytes, no spaces or colons", name)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	secret = tokenPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(secret))
	return secret, role + " " + name + " " + hex.EncodeToString(h[:]), nil
}

// ParseTokens reads a token file: one "role name sha256-hex" per line;
// blank lines and lines starting with # are skipped.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{byHash: map[[32]byte]Caller{}}
	sc := bufio.NewScanner(io.LimitReader(r, 1<<20))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		var h [32]byte
		b, err := hex.DecodeString(f[len(f)-1])
		if len(f) != 3 || err != nil || len(b) != 32 || (f[0] != RoleFinance && f[0] != RoleAuditor) {
			return nil, fmt.Errorf("token file line %d: want \"role name sha256\" with role finance or auditor (transit clearing token create makes one)", n)
		}
		copy(h[:], b)
		t.byHash[h] = Caller{Name: f[1], Role: f[0]}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	return t, nil
}

// LoadTokens reads the token file at path, which must not be readable
// by others than its owner.
func LoadTokens(path string) (*Tokens, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("API token file: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("API token file %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("API token file: %w", err)
	}
	defer f.Close()
	return ParseTokens(f)
}

// Authenticate implements Authenticator.
func (t *Tokens) Authenticate(r *http.Request) (Caller, error) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Caller{}, fmt.Errorf("%w: send `Authorization: Bearer <token>` (transit clearing token create makes one)", ErrUnauthenticated)
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(token)))
	for k, c := range t.byHash {
		if subtle.ConstantTimeCompare(k[:], h[:]) == 1 {
			return c, nil
		}
	}
	return Caller{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
}

// authorize answers the request itself and returns false unless an
// Authenticator lets the caller in with one of roles.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, roles ...string) (Caller, bool) {
	if s.Auth == nil {
		s.fail(w, r, http.StatusServiceUnavailable, errors.New("this clearing service checks no API tokens: start it with --api-tokens FILE to serve held rides"))
		return Caller{}, false
	}
	c, err := s.Auth.Authenticate(r)
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="clearing"`)
		s.fail(w, r, http.StatusUnauthorized, err)
		return Caller{}, false
	}
	for _, role := range roles {
		if c.Role == role {
			return c, true
		}
	}
	s.fail(w, r, http.StatusForbidden, fmt.Errorf("%s may not do this; it takes the role %s", c, strings.Join(roles, " or ")))
	return Caller{}, false
}

// heldDoc is one held ride in JSON.
type heldDoc struct {
	Device    string     `json:"device"`
	Seq       uint64     `json:"seq"`
	Time      time.Time  `json:"time"`
	Card      string     `json:"card"`
	Carrier   string     `json:"carrier"`
	Route     string     `json:"route"`
	Vehicle   string     `json:"vehicle"`
	Product   string     `json:"product"`
	Category  string     `json:"category"`
	Funding   string     `json:"funding"`
	Claimed   amounts    `json:"claimed"`
	Tariff    uint32     `json:"tariff_version"`
	State     string     `json:"state"`
	Reason    string     `json:"reason"`
	Detail    string     `json:"detail"`
	Confirmed bool       `json:"confirmed_by_card"`
	Release   *amounts   `json:"release,omitempty"`
	Paid      string     `json:"paid_in,omitempty"`
	DecidedBy string     `json:"decided_by,omitempty"`
	DecidedAt *time.Time `json:"decided_at,omitempty"`
	Note      string     `json:"note,omitempty"`
}

type amounts struct {
	Category        string `json:"category,omitempty"`
	Funding         string `json:"funding,omitempty"`
	FareKop         int64  `json:"fare_kop"`
	ChargedKop      int64  `json:"charged_kop"`
	CompensationKop int64  `json:"compensation_kop"`
}

func heldJSON(h store.HeldRide) heldDoc {
	t := h.Tap
	d := heldDoc{Device: t.Device, Seq: t.Seq, Time: t.Time, Card: strconv.FormatUint(t.Card, 10), Carrier: t.Carrier, Route: t.Route,
		Vehicle: t.Vehicle, Product: t.Product, Category: t.Category, Funding: t.Funding,
		Claimed: amounts{FareKop: t.FareKop, ChargedKop: t.ChargedKop, CompensationKop: t.CompensationKop},
		Tariff:  t.TariffVersion, State: h.State, Reason: h.Reason, Detail: h.Detail, Confirmed: h.Confirmed,
		DecidedBy: h.DecidedBy, Note: h.Note}
	if h.Priced {
		d.Release = &amounts{h.Release.Category, h.Release.Funding, h.Release.FareKop, h.Release.ChargedKop, h.Release.CompensationKop}
	}
	if h.Into != "" {
		d.Paid = h.Into
		if h.Adjusts != "" {
			d.Paid += " (adjusting " + h.Adjusts + ")"
		}
	}
	if !h.DecidedAt.IsZero() {
		at := h.DecidedAt
		d.DecidedAt = &at
	}
	return d
}

// parseRide reads "DEVICE/SEQ".
func parseRide(s string) (store.Ride, error) {
	i := strings.LastIndexByte(s, '/')
	if i <= 0 {
		return store.Ride{}, fmt.Errorf("ride %q: want DEVICE/SEQ, e.g. BUS-0417-front/1234", s)
	}
	n, err := strconv.ParseUint(s[i+1:], 10, 63)
	if err != nil || n == 0 {
		return store.Ride{}, fmt.Errorf("ride %q: the sequence number after / is a whole number from 1", s)
	}
	return store.Ride{Device: s[:i], Seq: n}, nil
}

func (s *Server) held(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, RoleFinance, RoleAuditor); !ok {
		return
	}
	q := r.URL.Query()
	period, ok := s.period(w, r, q.Get("period"))
	if !ok {
		return
	}
	decided, ok := s.flag(w, r, "decided")
	if !ok {
		return
	}
	hq := store.HeldQuery{Period: period, Carrier: q.Get("carrier"), Reason: q.Get("reason"), Decided: decided, Limit: 100}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.MaxHeldPage {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("limit=%.20q: want 1 to %d", v, store.MaxHeldPage))
			return
		}
		hq.Limit = n
	}
	if v := q.Get("after"); v != "" {
		after, err := parseRide(v)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, fmt.Errorf("after: %w", err))
			return
		}
		hq.After = after
	}
	if len(hq.Carrier) > 64 || len(hq.Reason) > 64 {
		s.fail(w, r, http.StatusBadRequest, errors.New("carrier and reason are at most 64 bytes"))
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	rides, err := s.Store.Held(ctx, hq)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	out := struct {
		Period string    `json:"period"`
		Rides  []heldDoc `json:"rides"`
		Next   string    `json:"next,omitempty"`
	}{Period: period, Rides: []heldDoc{}}
	for _, h := range rides {
		out.Rides = append(out.Rides, heldJSON(h))
	}
	if len(rides) == hq.Limit {
		last := rides[len(rides)-1].Tap
		out.Next = last.Device + "/" + strconv.FormatUint(last.Seq, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// decideRequest is the body of POST /v1/held/decide.
type decideRequest struct {
	// Rides are "DEVICE/SEQ".
	Rides []string `json:"rides"`
	// Decision is "release" or "reject".
	Decision string `json:"decision"`
	// Reason is the written reason, recorded with the decision.
	Reason string `json:"reason"`
}

func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	c, ok := s.authorize(w, r, RoleFinance)
	if !ok {
		return
	}
	var req decideRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("the body must be JSON {\"rides\": [\"DEVICE/SEQ\"...], \"decision\": \"release\" or \"reject\", \"reason\": \"...\"}: %w", err))
		return
	}
	d := store.HeldDecision{By: c.String(), Note: strings.TrimSpace(req.Reason), At: s.now()}
	switch req.Decision {
	case "release":
		d.Release = true
	case "reject":
	default:
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("decision %.20q: want release or reject", req.Decision))
		return
	}
	for _, v := range req.Rides {
		ride, err := parseRide(v)
		if err != nil {
			s.fail(w, r, http.StatusBadRequest, err)
			return
		}
		d.Rides = append(d.Rides, ride)
	}
	if err := d.Validate(); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	rides, err := s.Store.Decide(ctx, d)
	switch {
	case errors.Is(err, store.ErrNotHeld), errors.Is(err, store.ErrNotPriced):
		s.fail(w, r, http.StatusConflict, fmt.Errorf("%w; nothing was decided", err))
		return
	case err != nil:
		s.storeError(w, r, err)
		return
	}
	s.log().Info("held rides decided", "by", d.By, "release", d.Release, "rides", len(rides))
	out := []heldDoc{}
	for _, h := range rides {
		out = append(out, heldJSON(h))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authorize(w, r, RoleFinance, RoleAuditor); !ok {
		return
	}
	period, ok := s.period(w, r, r.URL.Query().Get("period"))
	if !ok {
		return
	}
	ctx, cancel := s.ctx(r)
	defer cancel()
	p, err := report.BuildProof(ctx, s.Store, period)
	if err != nil {
		s.storeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, report.ProofJSON(p))
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}
