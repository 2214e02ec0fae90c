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
// trust nothing about the transport and verify before anything is used,
// refusing anything older than what is in force. A hotlist delta that
// does not fit is answered by fetching the full list.
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
	// Interval between polls (default 5 min); after a failure the wait
	// doubles up to MaxBackoff (default 30 min).
	Interval   time.Duration
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
		return nil, fmt.Errorf("GET %s: %s: %w: %q", u, resp.Status, ErrStatus, msg)
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

// Run polls until ctx ends and returns ctx's error. Failures are logged
// and retried with backoff: the validator works offline meanwhile.
func (f *Fetcher) Run(ctx context.Context) error {
	return poll(ctx, "hotlist", f.Once, f.Interval, f.MaxBackoff, f.log())
}

// poll calls once every interval (default 5 min) until ctx ends, doubling
// the wait after a failure up to maxWait (default 30 min).
func poll(ctx context.Context, what string, once func(context.Context) (bool, error), interval, maxWait time.Duration, log *slog.Logger) error {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	if maxWait <= 0 {
		maxWait = 30 * time.Minute
	}
	wait := interval
	for {
		if _, err := once(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Warn(what+" update failed, will retry", "err", err, "in", wait)
			wait = min(wait*2, maxWait)
		} else {
			wait = interval
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
