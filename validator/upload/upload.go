// Package upload moves journalled taps to clearing: it cuts batches by
// count and age, seals each with the device's batch key, publishes it and
// marks its taps sent only once the bus acknowledged the batch. A batch that
// fails is retried with backoff; clearing is idempotent on (device,
// sequence), so a batch re-sent after a lost acknowledgement changes
// nothing.
//
// # Disk use
//
// Taps not yet acknowledged are never deleted: after days offline the
// journal drains oldest first when the bus is back. Acknowledged taps are
// deleted after each successful upload except the newest KeepSent, which
// stay for an inspector or a dispute on the vehicle. A validator's disk
// therefore holds its unsent backlog (about 100 bytes a tap: a week of a
// busy bus, 20,000 taps, is 2 MB) plus KeepSent taps. If the disk fills
// anyway, the journal refuses the next tap and the validator stops taking
// rides rather than carry riders it cannot account for.
package upload

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/citycard/transit/validator/tap"
)

// Journal is the part of the validator's journal the uploader uses.
type Journal interface {
	Device() string
	Unsent(ctx context.Context, limit int) ([]tap.Tap, error)
	MarkSent(ctx context.Context, seqs []uint64) error
}

// Sealer computes batch MACs with the device's batch key.
type Sealer interface {
	// BatchKeyVersion is the version of the batch key to seal with; it is
	// written into the batch, under the MAC.
	BatchKeyVersion() uint32
	// MACBatch returns the MAC over body with the device's batch key of
	// that version.
	MACBatch(ctx context.Context, device string, keyVersion uint32, body []byte) ([]byte, error)
}

// Publisher hands a sealed batch to the bus and returns once the bus has
// acknowledged it durably.
type Publisher interface {
	Publish(ctx context.Context, key, value []byte) error
}

// Uploader sends a device's journal to clearing.
type Uploader struct {
	Journal   Journal
	Sealer    Sealer
	Publisher Publisher
	Log       *slog.Logger
	// MaxTaps is the most taps in one batch (default 500).
	MaxTaps int
	// Interval is how often the journal is checked for taps to send
	// (default 5 s). A batch leaves when it is full or at the next tick.
	Interval time.Duration
	// MaxBackoff caps the wait between retries after a failure (default 1 min).
	MaxBackoff time.Duration
	// Now is the clock used to stamp batches (default time.Now).
	Now func() time.Time
	// KeepSent is how many acknowledged taps stay in the journal (default
	// 10,000); 0 keeps the default, a negative value keeps everything.
	KeepSent int
	// Metrics, when set, counts batches, taps, errors and pruned taps.
	Metrics *Metrics
}

// Pruner is implemented by a journal that can delete acknowledged taps
// (validator/journal does).
type Pruner interface {
	PruneSent(ctx context.Context, keep int) (int64, error)
}

func (u *Uploader) defaults() {
	if u.MaxTaps <= 0 {
		u.MaxTaps = 500
	}
	if u.Interval <= 0 {
		u.Interval = 5 * time.Second
	}
	if u.MaxBackoff <= 0 {
		u.MaxBackoff = time.Minute
	}
	if u.Now == nil {
		u.Now = time.Now
	}
	if u.Log == nil {
		u.Log = slog.Default()
	}
	if u.KeepSent == 0 {
		u.KeepSent = 10_000
	}
}

// Flush sends batches until the journal has nothing unsent left, and
// returns the number of taps sent. It stops at the first error.
func (u *Uploader) Flush(ctx context.Context) (int, error) {
	u.defaults()
	sent := 0
	for {
		taps, err := u.Journal.Unsent(ctx, u.MaxTaps)
		if err != nil {
			return sent, err
		}
		if len(taps) == 0 {
			return sent, u.prune(ctx, sent)
		}
		if err := u.send(ctx, taps); err != nil {
			return sent, err
		}
		u.Metrics.sent(len(taps), time.Now())
		sent += len(taps)
	}
}

// prune deletes acknowledged taps beyond KeepSent once something was sent.
func (u *Uploader) prune(ctx context.Context, sent int) error {
	p, ok := u.Journal.(Pruner)
	if !ok || sent == 0 || u.KeepSent < 0 {
		return nil
	}
	n, err := p.PruneSent(ctx, u.KeepSent)
	if err != nil {
		return fmt.Errorf("prune sent taps: %w", err)
	}
	u.Metrics.prunedTaps(n)
	return nil
}

func (u *Uploader) send(ctx context.Context, taps []tap.Tap) error {
	dev := u.Journal.Device()
	b := tap.Batch{Device: dev, KeyVersion: u.Sealer.BatchKeyVersion(),
		Created: u.Now().UTC().Truncate(time.Millisecond), Taps: taps}
	mac, err := u.Sealer.MACBatch(ctx, dev, b.KeyVersion, b.Body())
	if err != nil {
		return fmt.Errorf("seal batch of %s: %w", dev, err)
	}
	b.MAC = mac
	wire, err := b.Marshal()
	if err != nil {
		return err
	}
	if err := u.Publisher.Publish(ctx, []byte(dev), wire); err != nil {
		return fmt.Errorf("publish batch of %s (taps %d..%d): %w", dev, taps[0].Seq, taps[len(taps)-1].Seq, err)
	}
	seqs := make([]uint64, len(taps))
	for i := range taps {
		seqs[i] = taps[i].Seq
	}
	if err := u.Journal.MarkSent(ctx, seqs); err != nil {
		// Published but not marked: the batch will be sent again, and
		// clearing ignores the repeat.
		return fmt.Errorf("mark taps %d..%d sent: %w", seqs[0], seqs[len(seqs)-1], err)
	}
	u.Log.Debug("batch sent", "device", dev, "taps", len(taps), "first", seqs[0], "last", seqs[len(seqs)-1])
	return nil
}

// Run flushes the journal every Interval until ctx ends, backing off
// exponentially while the bus is unreachable. It returns ctx's error.
func (u *Uploader) Run(ctx context.Context) error {
	u.defaults()
	wait := u.Interval
	for {
		if _, err := u.Flush(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			u.Metrics.failed()
			u.Log.Warn("upload failed, will retry", "err", err, "in", wait)
			wait = min(wait*2, u.MaxBackoff)
		} else {
			wait = u.Interval
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}
