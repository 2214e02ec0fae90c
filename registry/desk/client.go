package desk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/registry"
)

// Client is the registry's HTTP API (registry/api) as a desk uses it,
// with a staff member's token. It implements Registry.
type Client struct {
	base  string // API root, without /v1
	token string
	hc    *http.Client
}

var _ Registry = (*Client)(nil)

// maxResponse bounds what the client reads of one answer; the largest,
// a personalisation, is a few kilobytes.
const maxResponse = 1 << 20

// NewClient returns a client of the registry API at base
// (http://host:8081, with or without /v1) using a desk or supervisor API
// token. A nil hc uses a client with a one-minute timeout.
func NewClient(base, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(base))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registry URL %q: want http(s)://host:port of the registry API (transit registry serve)", base)
	}
	if strings.TrimSpace(token) == "" {
		return nil, errors.New("no registry API token: give the desk staff member's token (transit registry token create --role desk)")
	}
	if hc == nil {
		hc = &http.Client{Timeout: time.Minute}
	}
	root := strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), "/v1")
	return &Client{base: root, token: strings.TrimSpace(token), hc: hc}, nil
}

// APIError is an error answer of the registry. It wraps the registry
// sentinel its status stands for (registry.ErrNotFound for 404, ...), so
// callers test it with errors.Is.
type APIError struct {
	Status  int
	Message string // the registry's own words: what went wrong and what to do
	kind    error
}

// Error returns the registry's message.
func (e *APIError) Error() string { return "registry: " + e.Message }

// Unwrap returns the registry sentinel of the status, nil for a status
// that has none (500).
func (e *APIError) Unwrap() error { return e.kind }

// apiError reads an error answer.
func apiError(resp *http.Response, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	} else if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = resp.Status
	}
	var kind error
	switch resp.StatusCode {
	case http.StatusBadRequest:
		kind = registry.ErrInvalid
		if strings.HasPrefix(msg, registry.ErrNoPurpose.Error()) {
			kind = registry.ErrNoPurpose
		}
	case http.StatusUnauthorized:
		kind = registry.ErrUnauthenticated
	case http.StatusForbidden:
		kind = registry.ErrForbidden
	case http.StatusNotFound:
		kind = registry.ErrNotFound
	case http.StatusConflict:
		// The registry answers 409 for duplicates, conflicts and refused
		// status changes alike; the message tells them apart.
		kind = registry.ErrConflict
	}
	return &APIError{Status: resp.StatusCode, Message: msg, kind: kind}
}

// do sends a request and decodes a JSON answer of status want into out.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any, want int) error {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		js, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("registry request %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("registry request %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("registry at %s: %w; check --registry and that the registry runs", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("registry %s %s: read the answer: %w", method, path, err)
	}
	if resp.StatusCode != want {
		return apiError(resp, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("registry %s %s: the answer is not what this desk expects (%w); is --registry the registry API?", method, path, err)
	}
	return nil
}

func cardPath(n card.Number, rest string) string { return "/v1/cards/" + n.String() + rest }

// Personalisation implements Registry: GET /v1/cards/{number}/personalisation.
func (c *Client) Personalisation(ctx context.Context, n card.Number, purpose string) (registry.Personalisation, error) {
	var p registry.Personalisation
	// The purpose goes in the query, URL-encoded: it is often Ukrainian
	// text, which a header cannot carry safely.
	err := c.do(ctx, http.MethodGet, cardPath(n, "/personalisation"), url.Values{"purpose": {purpose}}, nil, &p, http.StatusOK)
	return p, err
}

// Card implements Registry: GET /v1/cards/{number}.
func (c *Client) Card(ctx context.Context, n card.Number) (registry.CardState, error) {
	var d registry.CardState
	err := c.do(ctx, http.MethodGet, cardPath(n, ""), nil, nil, &d, http.StatusOK)
	return d, err
}

// SetStatus implements Registry: POST /v1/cards/{number}/status.
func (c *Client) SetStatus(ctx context.Context, n card.Number, to registry.Status, note string) (registry.Card, error) {
	var out registry.Card
	in := struct {
		Status registry.Status `json:"status"`
		Note   string          `json:"note,omitempty"`
	}{to, note}
	err := c.do(ctx, http.MethodPost, cardPath(n, "/status"), nil, in, &out, http.StatusOK)
	return out, err
}

// Block implements Registry: POST /v1/cards/{number}/block.
func (c *Client) Block(ctx context.Context, n card.Number, reason registry.Reason, note string) (registry.Card, error) {
	var out registry.Card
	in := struct {
		Reason registry.Reason `json:"reason"`
		Note   string          `json:"note,omitempty"`
	}{reason, note}
	err := c.do(ctx, http.MethodPost, cardPath(n, "/block"), nil, in, &out, http.StatusOK)
	return out, err
}

// Replace implements Registry: POST /v1/cards/{number}/replace.
func (c *Client) Replace(ctx context.Context, n card.Number, b registry.Balance) (old, replacement registry.Card, err error) {
	in := struct {
		ClearingKop int64  `json:"clearing_balance_kop"`
		CardKop     *int64 `json:"card_balance_kop,omitempty"`
	}{b.ClearingKop, b.CardKop}
	var out struct {
		Replaced    registry.Card `json:"replaced"`
		Replacement registry.Card `json:"replacement"`
	}
	if err := c.do(ctx, http.MethodPost, cardPath(n, "/replace"), nil, in, &out, http.StatusCreated); err != nil {
		return registry.Card{}, registry.Card{}, err
	}
	return out.Replaced, out.Replacement, nil
}
