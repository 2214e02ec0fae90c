// Package update keeps a validator's hotlist and tariff current when it
// is online.
//
// The publisher (the registry) serves, under one base URL:
//
//	GET {base}/hotlist?since=V   the delta from version V to the newest, or
//	                             the full list when it has no such delta;
//	                             304 Not Modified when V is the newest
//	GET {base}/hotlist           the newest full list
//	GET {base}/tariff?since=V    the newest signed tariff directory as a
//	                             zip archive; 304 when V is the newest
//
// Every file is signed (validator/hotlist, validator/tariff); the fetchers
// trust nothing about the transport and verify before anything is used, refusing
// anything older than what is in force. A hotlist delta that does not fit
// is answered by fetching the full list.
//
// Both fetchers poll every few minutes while the publisher answers and
// retry a failure after seconds, backing off to minutes (DefaultMinBackoff
// to DefaultMaxBackoff, jittered): a validator that starts beside a
// registry that is not up yet, or that leaves a tunnel, is current soon
// after, and a whole fleet does not hammer a registry that is down.
//
// The publisher wants to know who asks: each request is signed with the
// validator's own batch key (Auth, validator/devauth). Over the network
// the base URL is https://; a city that runs its own certificate
// authority gives the validator its certificate (NewClient, the
// configuration's "updates_ca_file").
package update

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/citycard/transit/validator/hotlist"
)

// MaxFile bounds a downloaded hotlist: 10 million cards take about 20 MB.
const MaxFile = 256 << 20

// RequestSigner authenticates a request to the publisher
// (*devauth.Signer).
type RequestSigner interface {
	Sign(ctx context.Context, req *http.Request) error
}

// Defaults of the polling schedule (Fetcher and TariffFetcher).
const (
	// DefaultInterval is the wait between polls while the publisher
	// answers.
	DefaultInterval = 5 * time.Minute
	// DefaultMinBackoff is the wait before the first retry after a
	// failure: a registry restarting or a vehicle leaving a tunnel is
	// back within seconds.
	DefaultMinBackoff = 2 * time.Second
	// DefaultMaxBackoff caps the wait between retries, so a validator
	// that was offline for hours catches up within minutes of the link
	// coming back.
	DefaultMaxBackoff = 5 * time.Minute
)

// Fetcher polls the publisher for newer hotlists.
type Fetcher struct {
	// Base is the publisher's base URL, e.g. https://registry.city/v1/validator.
	Base   string
	Client *http.Client
	// Auth signs each request; nil sends them unsigned, which the
	// registry refuses.
	Auth    RequestSigner
	Hotlist *hotlist.Holder
	Keys    hotlist.KeyLookup
	// Interval between polls while they succeed (DefaultInterval if 0).
	// After a failure the next try comes after MinBackoff
	// (DefaultMinBackoff), each further one twice as late, up to
	// MaxBackoff (DefaultMaxBackoff); waits are jittered by up to 20% so
	// that a fleet that lost the publisher together does not return
	// together, and a Retry-After from the publisher is honoured within
	// MaxBackoff.
	Interval   time.Duration
	MinBackoff time.Duration
	MaxBackoff time.Duration
	Log        *slog.Logger
}

// ErrStatus is wrapped when the publisher answers with an unexpected
// HTTP status.
var ErrStatus = errors.New("unexpected answer from the publisher")

// Once fetches and applies what is newer than the loaded list. It returns
// whether a new list was applied.
func (f *Fetcher) Once(ctx context.Context) (bool, error) {
	since := f.Hotlist.Version()
	q := url.Values{}
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	data, err := f.get(ctx, "hotlist", q)
	if err != nil || data == nil {
		return false, err
	}
	m, err := f.Hotlist.Apply(ctx, data, f.Keys)
	if errors.Is(err, hotlist.ErrWrongBase) {
		// Our list is too old (or damaged) for any delta the publisher
		// keeps: start again from the full list.
		if data, err = f.get(ctx, "hotlist", nil); err != nil {
			return false, err
		}
		m, err = f.Hotlist.Apply(ctx, data, f.Keys)
	}
	if errors.Is(err, hotlist.ErrRollback) && m.Version == since {
		return false, nil // the same list again: nothing new
	}
	if err != nil {
		return false, fmt.Errorf("apply hotlist from %s: %w", f.Base, err)
	}
	f.log().Info("hotlist updated", "version", m.Version, "kind", m.Kind, "issued", m.Issued)
	return true, nil
}

func (f *Fetcher) get(ctx context.Context, path string, q url.Values) ([]byte, error) {
	return get(ctx, f.Client, f.Auth, f.Base, path, q)
}

// get returns the body of GET base/path?q, or nil for 304 Not Modified.
func get(ctx context.Context, client *http.Client, auth RequestSigner, base, path string, q url.Values) ([]byte, error) {
	u, err := url.JoinPath(base, path)
	if err != nil {
		return nil, fmt.Errorf("publisher URL %q: %w", base, err)
	}
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		if err := auth.Sign(ctx, req); err != nil {
			return nil, fmt.Errorf("fetch %s: %w", path, err)
		}
	}
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Minute}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", path, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, nil
	case http.StatusOK:
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &statusError{url: u, status: resp.Status, msg: msg, retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"))}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	if len(data) > MaxFile {
		return nil, fmt.Errorf("GET %s: more than %d bytes: %w", u, MaxFile, ErrStatus)
	}
	return data, nil
}

// statusError is an unexpected HTTP answer; it matches ErrStatus.
type statusError struct {
	url, status string
	msg         []byte
	retryAfter  time.Duration // 0: the publisher did not say
}

func (e *statusError) Error() string {
	return fmt.Sprintf("GET %s: %s: %v: %q", e.url, e.status, ErrStatus, e.msg)
}

func (e *statusError) Is(target error) bool { return target == ErrStatus }

// maxRetryAfter bounds what a publisher can ask for, whatever it sends.
const maxRetryAfter = time.Hour

// parseRetryAfter reads a Retry-After header in seconds (the form the
// registry sends; an HTTP date is ignored).
func parseRetryAfter(v string) time.Duration {
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 {
		return 0
	}
	return min(time.Duration(n)*time.Second, maxRetryAfter)
}

// Run polls until ctx ends and returns ctx's error. Failures are logged
// and retried with backoff: the validator works offline meanwhile.
func (f *Fetcher) Run(ctx context.Context) error {
	return poll(ctx, "hotlist", f.Once, newSchedule(f.Interval, f.MinBackoff, f.MaxBackoff), f.log())
}

// schedule says how long to wait before the next poll.
type schedule struct {
	interval, min, max time.Duration
	failures           int
	// jitter returns a number in [0, 1); rand.Float64 outside tests.
	jitter func() float64
}

func newSchedule(interval, minWait, maxWait time.Duration) *schedule {
	s := &schedule{interval: interval, min: minWait, max: maxWait, jitter: rand.Float64}
	if s.interval <= 0 {
		s.interval = DefaultInterval
	}
	if s.min <= 0 {
		s.min = DefaultMinBackoff
	}
	if s.max <= 0 {
		s.max = DefaultMaxBackoff
	}
	s.max = max(s.max, s.min)
	return s
}

// next returns the wait after a poll that ended with err.
func (s *schedule) next(err error) time.Duration {
	if err == nil {
		s.failures = 0
		return s.spread(s.interval)
	}
	wait := s.min
	for i := 0; i < s.failures && wait < s.max; i++ {
		wait *= 2
	}
	s.failures++
	wait = s.spread(min(wait, s.max))
	var se *statusError
	if errors.As(err, &se) && se.retryAfter > wait {
		wait = min(se.retryAfter, s.max)
	}
	return wait
}

// spread moves d by up to 20% either way.
func (s *schedule) spread(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*s.jitter()))
}

// poll calls once until ctx ends, waiting as s says between calls.
func poll(ctx context.Context, what string, once func(context.Context) (bool, error), s *schedule, log *slog.Logger) error {
	for {
		_, err := once(ctx)
		if err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		wait := s.next(err)
		if err != nil {
			log.Warn(what+" update failed, will retry", "err", err, "in", wait.Round(time.Millisecond), "failures", s.failures)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

// NewClient returns the client the fetchers use: TLS certificates are
// checked against the system's roots, or, with caFile, against the
// certificate authority (or authorities) in that PEM file alone, for a
// city that runs its own.
func NewClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("updates CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("updates CA file %s: no PEM certificate in it", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Timeout: 2 * time.Minute, Transport: tr}, nil
}
