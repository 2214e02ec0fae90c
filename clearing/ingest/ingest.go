// Package ingest turns sealed tap batches from the bus into stored taps.
// Each batch is decoded, its MAC checked with the device's batch key, its
// taps checked, and then stored idempotently on (device, sequence); a
// batch that fails any check is quarantined with the reason and never
// applied. The bus offset is committed only after the store said the batch
// is durable, so a crash re-delivers and the store ignores the repeat.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/citycard/transit/clearing/recon"
	"github.com/citycard/transit/validator/tap"
)

// Verifier checks a batch MAC with the device's batch key.
type Verifier interface {
	// VerifyBatch returns nil when mac is the MAC of body under device's
	// batch key of keyVersion; ErrUnknownDevice or ErrBadMAC (wrapped)
	// otherwise.
	VerifyBatch(ctx context.Context, device string, keyVersion uint32, body, mac []byte) error
}

// Errors a Verifier returns.
var (
	ErrUnknownDevice = errors.New("unknown device")
	ErrBadMAC        = errors.New("batch MAC does not verify")
)

// Store is where taps and rejected batches go.
type Store interface {
	// AddTaps stores taps in one transaction, ignoring any (device, seq)
	// already stored, and reports how many were new and how many repeats.
	AddTaps(ctx context.Context, taps []tap.Tap) (added, duplicates int, err error)
	// Quarantine keeps a rejected batch with the reason; it is never
	// applied.
	Quarantine(ctx context.Context, q Rejected) error
	// AddAnomalies records anomalies; recording one again keeps one.
	AddAnomalies(ctx context.Context, as []recon.Anomaly) error
}

// Rejected is a batch that failed a check.
type Rejected struct {
	Device   string // "" when the batch could not be decoded
	Reason   string // the check that failed, e.g. "bad-mac"
	Detail   string // the error text
	Raw      []byte // the batch as received
	Received time.Time
}

// Reasons for quarantine.
const (
	ReasonMalformed     = "malformed"
	ReasonUnknownDevice = "unknown-device"
	ReasonBadMAC        = "bad-mac"
	ReasonInvalidTap    = "invalid-tap"
	ReasonFutureTap     = "tap-in-future"
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

// Process handles one batch as received from the bus. It returns an error
// only when the store failed (the caller must not commit the bus offset
// then); a bad batch is quarantined and reported in Outcome.
func (p *Processor) Process(ctx context.Context, wire []byte) (Outcome, error) {
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
	received := now().UTC()
	reject := func(device, reason string, err error) (Outcome, error) {
		q := Rejected{Device: device, Reason: reason, Detail: err.Error(), Raw: append([]byte(nil), wire...), Received: received}
		if serr := p.Store.Quarantine(ctx, q); serr != nil {
			return Outcome{}, fmt.Errorf("quarantine batch from %q (%s): %w", device, reason, serr)
		}
		log.Warn("batch quarantined", "device", device, "reason", reason, "err", err)
		p.Metrics.quarantined(reason)
		return Outcome{Device: device, Quarantined: reason}, nil
	}

	b, err := tap.Unmarshal(wire)
	if err != nil {
		return reject("", ReasonMalformed, err)
	}
	if err := p.Verifier.VerifyBatch(ctx, b.Device, b.KeyVersion, b.Body(), b.MAC); err != nil {
		switch {
		case errors.Is(err, ErrUnknownDevice):
			return reject(b.Device, ReasonUnknownDevice, err)
		case errors.Is(err, ErrBadMAC):
			return reject(b.Device, ReasonBadMAC, err)
		default:
			return Outcome{}, fmt.Errorf("verify batch from %s: %w", b.Device, err)
		}
	}
	if err := b.Validate(); err != nil {
		return reject(b.Device, ReasonInvalidTap, err)
	}
	limit := now().Add(maxFuture)
	for i := range b.Taps {
		// A Unix clock cannot show a time before 1970; such a tap comes
		// from a broken encoder, and no month could hold it.
		if b.Taps[i].Time.Before(unixEpoch) {
			return reject(b.Device, ReasonInvalidTap, fmt.Errorf("tap %d at %s is before 1970: the validator's clock or encoder is broken",
				b.Taps[i].Seq, b.Taps[i].Time.Format(time.RFC3339)))
		}
		if b.Taps[i].Time.After(limit) {
			return reject(b.Device, ReasonFutureTap, fmt.Errorf("tap %d at %s is more than %s ahead of clearing's clock",
				b.Taps[i].Seq, b.Taps[i].Time.Format(time.RFC3339), maxFuture))
		}
	}
	added, dup, err := p.Store.AddTaps(ctx, b.Taps)
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
