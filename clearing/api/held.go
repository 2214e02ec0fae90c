package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/registry"
)

// decidedBy names a staff member as decisions record them, with the
// role the registry vouched for: "finance:olena".
func decidedBy(a registry.Actor) string { return string(a.Role) + ":" + a.User }

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

// held lists held rides (GET /v1/held); the route's policy lets in
// finance and auditors.
func (s *Server) held(w http.ResponseWriter, r *http.Request) {
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

// decide releases or rejects held rides (POST /v1/held/decide); the
// route's policy lets in finance only, and the decision records who.
func (s *Server) decide(w http.ResponseWriter, r *http.Request) {
	a := actor(r)
	if a.User == "" {
		s.fail(w, r, http.StatusForbidden, errors.New("deciding held rides needs a signed-in staff identity, which is recorded with the decision"))
		return
	}
	var req decideRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.fail(w, r, http.StatusBadRequest, fmt.Errorf("the body must be JSON {\"rides\": [\"DEVICE/SEQ\"...], \"decision\": \"release\" or \"reject\", \"reason\": \"...\"}: %w", err))
		return
	}
	d := store.HeldDecision{By: decidedBy(a), Note: strings.TrimSpace(req.Reason), At: s.now()}
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
	s.log().Info("held rides decided", "by", d.By, "release", d.Release, "rides", len(rides), "addr", clientAddr(r))
	out := []heldDoc{}
	for _, h := range rides {
		out = append(out, heldJSON(h))
	}
	writeJSON(w, http.StatusOK, out)
}

// proof is the card's proof per carrier (GET /v1/proof).
func (s *Server) proof(w http.ResponseWriter, r *http.Request) {
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
