// Package ingest turns sealed tap batches from the bus into stored taps.
// Each batch is decoded, its MAC checked with the device's batch key, its
// taps checked, and then stored idempotently on (device, sequence); a
// batch that fails any check is quarantined with the reason and never
// applied. The bus offset is committed only after the store said the batch
// is durable, so a crash re-delivers and the store ignores the repeat.
//
// Nothing a producer sends stops ingest: whatever cannot be decoded,
// authenticated, checked or stored for its content is quarantined
// (bounded, and once per bus position) and committed. Failures of the
// store, the key token or the bus are the infrastructure's: Runner retries
// them with backoff for as long as it runs. See clearing/OPERATIONS.md.
package ingest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/validator/tap"
)

// Verifier checks a batch MAC with the device's batch key.
type Verifier interface {
	// VerifyBatch returns nil when mac is the MAC of body under device's
	// batch key of keyVersion; ErrUnknownDevice or ErrBadMAC (wrapped)
	// when the batch is at fault. Any other error is the verifier's own
	// (a key token that does not answer): the batch is tried again.
	VerifyBatch(ctx context.Context, device string, keyVersion uint32, body, mac []byte) error
}

// Errors a Verifier returns.
var (
	ErrUnknownDevice = errors.New("unknown device")
	ErrBadMAC        = errors.New("batch MAC does not verify")
)

// ErrUnstorable is wrapped by a Store's AddBatch when the store refuses a
// batch for what it holds (a value its columns cannot take), so that
// storing it again can never succeed. The Processor quarantines such a
// batch; any other store error is taken for the store's own and the
// batch is tried again.
var ErrUnstorable = errors.New("the store cannot hold this batch")

// Store is where batches and rejected batches go.
type Store interface {
	// AddBatch stores the taps of an authenticated batch in one
	// transaction, ignoring any (device, seq) already stored, brings the
	// device's fleet state up to date in the same transaction, and
	// reports how many taps were new and how many repeats. It is
	// idempotent: the same batch again adds nothing.
	AddBatch(ctx context.Context, b Batch) (added, duplicates int, err error)
	// Quarantine keeps a rejected batch with the reason; it is never
	// applied. Quarantining the same bytes from the same bus position
	// again keeps one (Rejected.Key).
	Quarantine(ctx context.Context, q Rejected) error
	// AddAnomalies records anomalies; recording one again keeps one.
	AddAnomalies(ctx context.Context, as []recon.Anomaly) error
}

// Batch is an authenticated, checked batch as ingest hands it to a Store.
type Batch struct {
	Device string
	// Created is the validator's clock when it sealed the batch, Received
	// clearing's clock when ingest took it from the bus.
	Created, Received time.Time
	Taps              []tap.Tap
}

// Rejected is a batch that failed a check. Whatever a producer sent, it
// is bounded and storable once Bounded has been applied: stores keep at
// most MaxRawKept bytes of it and the hash of all of it.
type Rejected struct {
	Device string // "" when the batch could not be decoded
	Reason string // the check that failed, e.g. "bad-mac"
	Detail string // the error text
	// Raw is the start of the batch as received (at most MaxRawKept
	// bytes), Size its whole length and SHA256 the hash of all of it.
	Raw    []byte
	Size   int
	SHA256 []byte
	// Partition and Offset are where the bus delivered the batch; -1 and
	// -1 when it came from no bus.
	Partition int
	Offset    int64
	Received  time.Time
}

// Bounds of what a Rejected keeps.
const (
	// MaxRawKept bytes of a rejected batch are kept: its header, device,
	// key version and first taps, enough to see what it was.
	MaxRawKept = 4096
	// MaxDetailKept bytes of the error text are kept.
	MaxDetailKept = 1024
)

// NewRejected returns the rejection of wire, delivered at partition and
// offset, bounded.
func NewRejected(wire []byte, partition int, offset int64, device, reason, detail string, received time.Time) Rejected {
	sum := sha256.Sum256(wire)
	return Rejected{Device: device, Reason: reason, Detail: detail, Raw: wire, Size: len(wire), SHA256: sum[:],
		Partition: partition, Offset: offset, Received: received}.Bounded()
}

// Bounded returns q as stores keep it: Raw cut to MaxRawKept bytes (its
// hash and size taken first when q has none), Detail to MaxDetailKept,
// and every text valid UTF-8 without NUL or other control characters, so
// that no column of any store refuses it.
func (q Rejected) Bounded() Rejected {
	if q.SHA256 == nil {
		sum := sha256.Sum256(q.Raw)
		q.SHA256, q.Size = sum[:], len(q.Raw)
	}
	if len(q.Raw) > MaxRawKept {
		q.Raw = q.Raw[:MaxRawKept]
	}
	q.Raw = append([]byte{}, q.Raw...)
	q.Device = printable(q.Device, 4*64)
	q.Reason = printable(q.Reason, 64)
	q.Detail = printable(q.Detail, MaxDetailKept)
	return q
}

// Key is what makes two quarantined batches the same: the same bytes
// delivered at the same bus position. The bus re-delivers a message at its
// position, so a topic consumed again quarantines nothing twice; the same
// bytes published twice are two deliveries, kept twice.
func (q Rejected) Key() string {
	return fmt.Sprintf("%x/%d/%d", q.SHA256, q.Partition, q.Offset)
}

// printable returns s as valid UTF-8 without control characters, at most
// max bytes: a string from a producer is quoted when it is anything else.
func printable(s string, max int) string {
	ok := utf8.ValidString(s)
	for _, r := range s {
		if !ok {
			break
		}
		ok = !unicode.IsControl(r) || r == '\n' || r == '\t'
	}
	if !ok {
		s = strconv.QuoteToGraphic(s)
	}
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Reasons for quarantine.
const (
	ReasonMalformed     = "malformed"
	ReasonUnknownDevice = "unknown-device"
	ReasonBadMAC        = "bad-mac"
	ReasonInvalidTap    = "invalid-tap"
	ReasonFutureTap     = "tap-in-future"
	// ReasonUnstorable is a batch that passed every check but that the
	// store refused for its content (ErrUnstorable).
	ReasonUnstorable = "unstorable"
)

var unixEpoch = time.Unix(0, 0)

// Outcome says what happened to one batch.
type Outcome struct {
	Device      string
	Added       int
	Duplicates  int
	Quarantined string // the reason, "" when the batch was applied
	Anomalies   int    // clock anomalies found in an applied batch
}

// Processor checks and stores batches.
type Processor struct {
	Verifier Verifier
	Store    Store
	Log      *slog.Logger
	// MaxFuture is how far ahead of the clearing clock a tap may be
	// (validator clocks drift); a batch with a tap beyond it is
	// quarantined. Default 24 h.
	MaxFuture time.Duration
	// Now is clearing's clock (default time.Now).
	Now func() time.Time
	// Limits are the thresholds of the clock checks of a stored batch
	// (recon.BatchClock); Location is the city's time zone (default
	// UTC), which decides the month an anomaly is reported in.
	Limits   recon.Limits
	Location *time.Location
	// Metrics, when set, counts what the Processor does.
	Metrics *Metrics
}

// Process handles one batch that came from no bus (Partition and Offset
// -1); see ProcessMessage.
func (p *Processor) Process(ctx context.Context, wire []byte) (Outcome, error) {
	return p.ProcessMessage(ctx, bus.Message{Value: wire, Partition: -1, Offset: -1})
}

// ProcessMessage handles one batch as received from the bus. Nothing a
// producer can put in a message makes it fail: a batch that cannot be
// decoded, authenticated, checked or stored for its content is
// quarantined and reported in Outcome. It returns an error only when the
// store or the verifier failed on its own (the database is down, the key
// token does not answer): the caller must not commit the bus offset then,
// and handing the same message again is right, since storing is
// idempotent.
func (p *Processor) ProcessMessage(ctx context.Context, m bus.Message) (Outcome, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	maxFuture := p.MaxFuture
	if maxFuture <= 0 {
		maxFuture = 24 * time.Hour
	}
	log := p.Log
	if log == nil {
		log = slog.Default()
	}
	wire := m.Value
	received := now().UTC()
	reject := func(device, reason string, err error) (Outcome, error) {
		q := NewRejected(wire, m.Partition, m.Offset, device, reason, err.Error(), received)
		if serr := p.Store.Quarantine(ctx, q); serr != nil {
			return Outcome{}, fmt.Errorf("quarantine batch from %q (%s): %w", q.Device, reason, serr)
		}
		log.Warn("batch quarantined", "device", q.Device, "reason", reason, "partition", m.Partition, "offset", m.Offset,
			"bytes", len(wire), "err", printable(err.Error(), MaxDetailKept))
		p.Metrics.quarantined(reason)
		return Outcome{Device: q.Device, Quarantined: reason}, nil
	}

	b, err := tap.Unmarshal(wire)
	if err != nil {
		return reject("", ReasonMalformed, err)
	}
	// No key can be derived for an empty device name; asking the key
	// token anyway would fail as if the token were broken.
	if b.Device == "" {
		return reject("", ReasonMalformed, errors.New("batch without a device id"))
	}
	if err := p.Verifier.VerifyBatch(ctx, b.Device, b.KeyVersion, b.Body(), b.MAC); err != nil {
		switch {
		case errors.Is(err, ErrUnknownDevice):
			return reject(b.Device, ReasonUnknownDevice, err)
		case errors.Is(err, ErrBadMAC):
			return reject(b.Device, ReasonBadMAC, err)
		default:
			return Outcome{}, fmt.Errorf("verify batch from %s: %w", printable(b.Device, 4*64), err)
		}
	}
	if err := b.Validate(); err != nil {
		return reject(b.Device, ReasonInvalidTap, err)
	}
	limit := now().Add(maxFuture)
	for i := range b.Taps {
		t := &b.Taps[i]
		// A Unix clock cannot show a time before 1970; such a tap comes
		// from a broken encoder, and no month could hold it.
		if t.Time.Before(unixEpoch) {
			return reject(b.Device, ReasonInvalidTap, fmt.Errorf("tap %d at %s is before 1970: the validator's clock or encoder is broken",
				t.Seq, t.Time.Format(time.RFC3339)))
		}
		if t.Time.After(limit) {
			return reject(b.Device, ReasonFutureTap, fmt.Errorf("tap %d at %s is more than %s ahead of clearing's clock",
				t.Seq, t.Time.Format(time.RFC3339), maxFuture))
		}
		if err := checkText(t); err != nil {
			return reject(b.Device, ReasonInvalidTap, err)
		}
	}
	added, dup, err := p.Store.AddBatch(ctx, Batch{Device: b.Device, Created: b.Created, Received: received, Taps: b.Taps})
	if errors.Is(err, ErrUnstorable) {
		return reject(b.Device, ReasonUnstorable, err)
	}
	if err != nil {
		return Outcome{}, fmt.Errorf("store batch from %s: %w", b.Device, err)
	}
	// The clock checks need the batch's creation and receipt, which the
	// store never sees. They run on repeats too, so a crash between the
	// two calls loses nothing: the re-delivered batch records them then.
	anomalies := recon.BatchClock(b, received, p.Limits, p.Location)
	if len(anomalies) > 0 {
		if err := p.Store.AddAnomalies(ctx, anomalies); err != nil {
			return Outcome{}, fmt.Errorf("record %d clock anomalies of the batch from %s: %w", len(anomalies), b.Device, err)
		}
		log.Info("batch clock anomalies", "device", b.Device, "count", len(anomalies), "first", anomalies[0].Detail)
	}
	p.Metrics.stored(added, dup)
	return Outcome{Device: b.Device, Added: added, Duplicates: dup, Anomalies: len(anomalies)}, nil
}

// checkText refuses a tap whose texts are not valid UTF-8 or hold a NUL:
// the validators write codes from the tariff, and a database text column
// takes neither. Both stores then keep the same taps.
func checkText(t *tap.Tap) error {
	for _, f := range [...]struct{ name, v string }{{"device", t.Device}, {"carrier", t.Carrier}, {"route", t.Route},
		{"vehicle", t.Vehicle}, {"reason", t.Reason}, {"product", t.Product}, {"category", t.Category}, {"funding", t.Funding}} {
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return fmt.Errorf("tap %d: the %s %q is not text (invalid UTF-8 or a NUL byte)", t.Seq, f.name, f.v)
		}
	}
	return nil
}
