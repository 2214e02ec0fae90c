// Package cardfeed keeps clearing's copy of the registry's card records:
// for each card, every entitlement of its holder (ended ones too, with the
// dates the registry holds now) and the spans in which its benefits were
// revoked. Re-rating (clearing/rerate) judges each benefit ride against
// them: a category the registry says the card did not hold that day is
// held. The records hold no personal data.
//
// A Syncer pages through the registry's export,
//
//	GET {registry}/v1/cards/records?since=N&limit=L
//
// in card event order, with a bearer token of the registry's service
// role, and stores each page with how far it read, in one transaction
// (store.SetCardRecords): a restart continues where it stopped, a page is
// never half applied, and the page that reaches the registry's newest
// event says as of when clearing's copy is complete. A ride later than
// that, whose benefit the copy does not show, waits rather than being
// held. The token comes from a file or the environment, never the
// command line; the registry's authentication (and whatever replaces its
// tokens) is the registry's: this client only sends the header.
package cardfeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/citycard/transit/clearing/store"
)

// Store is the part of a clearing store the feed writes.
type Store interface {
	SetCardRecords(ctx context.Context, recs []store.CardRecord, feed store.Feed) (changed int, err error)
	Feed(ctx context.Context) (store.Feed, error)
}

// DefaultLimit is the card events per page asked for, the registry's most.
const DefaultLimit = 1000

// maxPage bounds the body of one page: a thousand cards with dozens of
// entitlements each is well under it.
const maxPage = 32 << 20

// ErrRegistry is wrapped when the registry answers with an error.
var ErrRegistry = errors.New("the registry refused the card records request")

// Syncer copies the registry's card records into a clearing store.
type Syncer struct {
	// Store keeps the copy. Required.
	Store Store
	// URL is the registry's API base, e.g. https://registry.example.
	URL string
	// Token is the bearer token sent with every request (a registry
	// token of the service role).
	Token string
	// Client makes the requests; nil is a client with a 60 s timeout.
	Client *http.Client
	// Limit is the card events per page; 0 is DefaultLimit.
	Limit int
	// Metrics, if set, counts what the syncer does.
	Metrics *Metrics
	// Log gets failures and a line per catch-up; nil is slog.Default().
	Log *slog.Logger
}

// Page is one page of the registry's export.
type Page struct {
	Records []store.CardRecord
	Next    uint64
	// AsOf is set on the page that reached the registry's newest event.
	AsOf time.Time
}

// wire is the JSON of registry.CardRecords.
type wire struct {
	Records []struct {
		Card         string                    `json:"card"`
		Entitlements []store.RecordEntitlement `json:"entitlements"`
		Revoked      []struct {
			From time.Time  `json:"from"`
			To   *time.Time `json:"to"`
		} `json:"revoked"`
	} `json:"records"`
	Next uint64     `json:"next"`
	AsOf *time.Time `json:"as_of"`
}

// Fetch reads the page of records after event since.
func (s *Syncer) Fetch(ctx context.Context, since uint64) (Page, error) {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Page{}, fmt.Errorf("registry URL %q: want http(s)://host", s.URL)
	}
	limit := s.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	u = u.JoinPath("v1", "cards", "records")
	u.RawQuery = url.Values{"since": {strconv.FormatUint(since, 10)}, "limit": {strconv.Itoa(limit)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return Page{}, err
	}
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return Page{}, fmt.Errorf("read card records from %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = "; give clearing a registry token of the service role (transit registry token create --role service)"
		}
		return Page{}, fmt.Errorf("%w: %s answered %s: %s%s", ErrRegistry, u.Redacted(), resp.Status, msg, hint)
	}
	p, err := DecodePage(resp.Body, since)
	if err != nil {
		return Page{}, fmt.Errorf("card records from %s: %w", u.Redacted(), err)
	}
	return p, nil
}

// DecodePage reads one page of the registry's export (the JSON of
// registry.CardRecords) asked for after event since, refusing a record
// that cannot be right.
func DecodePage(r io.Reader, since uint64) (Page, error) {
	var w wire
	if err := json.NewDecoder(io.LimitReader(r, maxPage)).Decode(&w); err != nil {
		return Page{}, err
	}
	if w.Next < since {
		return Page{}, fmt.Errorf("the page ends at event %d, before %d asked for", w.Next, since)
	}
	p := Page{Next: w.Next}
	if w.AsOf != nil {
		p.AsOf = w.AsOf.UTC()
	}
	for i, r := range w.Records {
		n, err := strconv.ParseUint(r.Card, 10, 64)
		if err != nil || len(r.Card) != 16 {
			return Page{}, fmt.Errorf("record %d: card %q is not a 16-digit card number", i+1, r.Card)
		}
		rec := store.CardRecord{Card: n, Entitlements: r.Entitlements}
		for _, sp := range r.Revoked {
			s := store.RecordSpan{From: sp.From.UTC()}
			if sp.To != nil {
				s.To = sp.To.UTC()
			}
			rec.Revoked = append(rec.Revoked, s)
		}
		if err := rec.Validate(); err != nil {
			return Page{}, fmt.Errorf("record %d: %w", i+1, err)
		}
		p.Records = append(p.Records, rec)
	}
	return p, nil
}

// Sync reads pages from where the store's copy stopped until it reaches
// the registry's newest event, storing each, and returns how many cards'
// records changed.
func (s *Syncer) Sync(ctx context.Context) (changed int, err error) {
	feed, err := s.Store.Feed(ctx)
	if err != nil {
		return 0, err
	}
	for {
		p, err := s.Fetch(ctx, feed.Next)
		if err != nil {
			s.Metrics.failed()
			return changed, err
		}
		feed = store.Feed{Next: p.Next, AsOf: p.AsOf}
		n, err := s.Store.SetCardRecords(ctx, p.Records, feed)
		if err != nil {
			s.Metrics.failed()
			return changed, err
		}
		changed += n
		s.Metrics.read(len(p.Records), n, p.AsOf)
		if !p.AsOf.IsZero() {
			if changed > 0 {
				s.log().Info("registry card records read", "changed", changed, "event", p.Next, "as_of", p.AsOf)
			}
			return changed, nil
		}
		if len(p.Records) == 0 {
			// A page without records that is not the last cannot be:
			// stop rather than ask for it forever.
			return changed, fmt.Errorf("card records: the registry returned an empty page at event %d that is not its newest", p.Next)
		}
	}
}

// Run syncs every interval until ctx ends, logging failures; it returns
// ctx's error.
func (s *Syncer) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := s.Sync(ctx); err != nil && ctx.Err() == nil {
			s.log().Error("reading the registry's card records failed; trying again", "err", err, "in", every)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Syncer) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Metrics are the syncer's Prometheus metrics.
type Metrics struct {
	records, changed, errors prometheus.Counter
	asOf                     prometheus.Gauge
}

// NewMetrics creates the metrics and registers them on reg:
//
//	transit_clearing_registry_records_total
//	transit_clearing_registry_records_changed_total
//	transit_clearing_registry_sync_errors_total
//	transit_clearing_registry_records_as_of_seconds
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_registry_records_total",
			Help: "Card records read from the registry."}),
		changed: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_registry_records_changed_total",
			Help: "Card records read from the registry that changed clearing's copy."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "transit_clearing_registry_sync_errors_total",
			Help: "Failed reads of the registry's card records."}),
		asOf: prometheus.NewGauge(prometheus.GaugeOpts{Name: "transit_clearing_registry_records_as_of_seconds",
			Help: "Unix time as of which clearing's copy of the registry's card records is complete; rides after it may wait."}),
	}
	for _, c := range []prometheus.Collector{m.records, m.changed, m.errors, m.asOf} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register registry feed metrics: %w", err)
		}
	}
	return m, nil
}

func (m *Metrics) failed() {
	if m != nil {
		m.errors.Inc()
	}
}

func (m *Metrics) read(records, changed int, asOf time.Time) {
	if m == nil {
		return
	}
	m.records.Add(float64(records))
	m.changed.Add(float64(changed))
	if !asOf.IsZero() {
		m.asOf.Set(float64(asOf.Unix()))
	}
}
