package city

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/hsm/cmac"
	"github.com/citycard/transit/validator/tap"
)

// fastDevice seals a fast-lane validator's batches with its batch key,
// derived from the batch master exactly as the validator's keystore
// export derives it (hsm.DeviceKey), so clearing verifies them as any
// validator's.
type fastDevice struct {
	keyVersion uint32
	mac        *cmac.MAC
}

func newFastDevice(ctx context.Context, km hsm.KeyManager, master hsm.Ref, device string) (*fastDevice, error) {
	k, err := hsm.DeviceKey(ctx, km, master, device)
	if err != nil {
		return nil, err
	}
	m, err := cmac.New(k[:])
	if err != nil {
		return nil, err
	}
	return &fastDevice{keyVersion: uint32(master.Version), mac: m}, nil
}

// seal returns the wire form of a batch of taps created at created.
func (f *fastDevice) seal(device string, created time.Time, taps []tap.Tap) []byte {
	b := tap.Batch{Device: device, KeyVersion: f.keyVersion, Created: created, Taps: taps}
	body := b.Body()
	mac := f.mac.Sum(body)
	return append(body, mac[:]...)
}

// errAckLost is what a validator sees when the bus stored its batch but
// the acknowledgement never came back: it sends the batch again.
var errAckLost = errors.New("bus acknowledgement lost")

// maxReplayPool bounds the batches kept for replaying.
const maxReplayPool = 64

// send publishes one sealed batch for a validator. It may pretend the
// acknowledgement was lost (Faults.LostAckShare), so that the validator
// sends the same taps again; clearing must count them as repeats. Each
// batch may also be kept for a later replay.
func (s *Sim) send(ctx context.Context, key, wire []byte) error {
	s.batches.Add(1)
	s.keepForReplay(wire)
	if s.clearing == nil {
		return nil
	}
	if err := s.clearing.publish(ctx, bus.Message{Key: key, Value: wire}); err != nil {
		return err
	}
	if s.faults.Float64() < s.cfg.Faults.LostAckShare {
		n, err := tapCount(wire)
		if err != nil {
			return err
		}
		s.ledger.dups += int64(n)
		return errAckLost
	}
	return nil
}

func tapCount(wire []byte) (int, error) {
	b, err := tap.Unmarshal(wire)
	if err != nil {
		return 0, fmt.Errorf("a batch the simulation sealed does not decode: %w", err)
	}
	return len(b.Taps), nil
}

// keepForReplay keeps a sample of the batches sent, reservoir style, so
// that replays come from any day.
func (s *Sim) keepForReplay(wire []byte) {
	if s.cfg.Faults.Replays == 0 && s.cfg.Faults.Forged.BadMAC == 0 {
		return
	}
	if len(s.replay) < maxReplayPool {
		s.replay = append(s.replay, wire)
		return
	}
	if i := s.faults.Int64N(s.batches.Load()); i < maxReplayPool {
		s.replay[i] = wire
	}
}

// upload has the given validators send their journals: a full-lane
// validator's uploader flushes its journal (again after a lost
// acknowledgement); a fast-lane validator's taps are cut into batches and
// sealed. Every tap sent is booked in the ledger as delivered now.
func (s *Sim) upload(ctx context.Context, devs []*device) (batches, taps int64, err error) {
	before := s.batches.Load()
	for _, dev := range devs {
		if len(dev.pending) == 0 {
			continue
		}
		if dev.rig != nil {
			if err := s.flushRig(ctx, dev); err != nil {
				return 0, 0, err
			}
		} else if err := s.sealFast(ctx, dev); err != nil {
			return 0, 0, err
		}
		taps += int64(len(dev.pending))
		s.deliver(dev)
	}
	if err := s.publishOutbox(ctx); err != nil {
		return 0, 0, err
	}
	return s.batches.Load() - before, taps, nil
}

// deliver books dev's pending taps as received by clearing.
func (s *Sim) deliver(dev *device) {
	for i := range dev.pending {
		s.ledger.deliver(&dev.pending[i], dev.owed[i])
	}
	clear(dev.owed)
	dev.owed = dev.owed[:0]
	dev.delivered += int64(len(dev.pending))
	if s.opt.Audit {
		dev.audit = append(dev.audit, dev.pending...)
	}
	// Kept for the next taps: a fast-lane day refills it a thousand times.
	clear(dev.pending)
	dev.pending = dev.pending[:0]
}

// flushRig runs the real uploader until the journal is sent.
func (s *Sim) flushRig(ctx context.Context, dev *device) error {
	for range 100 {
		_, err := dev.rig.up.Flush(ctx)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, errAckLost):
			continue // the uploader sends the unacknowledged batch again
		default:
			return fmt.Errorf("validator %s: upload: %w", dev.id, err)
		}
	}
	return fmt.Errorf("validator %s: upload: acknowledgements lost 100 times in a row", dev.id)
}

// sealFast cuts a fast-lane validator's pending taps into sealed batches
// for the outbox; a batch whose acknowledgement is lost is sealed again a
// second later, as the uploader would.
func (s *Sim) sealFast(ctx context.Context, dev *device) error {
	per := s.batchTaps()
	for i := 0; i < len(dev.pending); i += per {
		part := dev.pending[i:min(i+per, len(dev.pending))]
		created := s.deviceNow(dev)
		for {
			wire := dev.fast.seal(dev.id, created, part)
			s.batches.Add(1)
			s.keepForReplay(wire)
			if s.clearing == nil {
				break
			}
			s.outbox = append(s.outbox, bus.Message{Key: []byte(dev.id), Value: wire})
			if len(s.outbox) >= 256 {
				if err := s.publishOutbox(ctx); err != nil {
					return err
				}
			}
			if s.faults.Float64() >= s.cfg.Faults.LostAckShare {
				break
			}
			s.ledger.dups += int64(len(part))
			created = created.Add(time.Second)
		}
	}
	return nil
}

func (s *Sim) publishOutbox(ctx context.Context) error {
	if s.clearing == nil || len(s.outbox) == 0 {
		return nil
	}
	err := s.clearing.publish(ctx, s.outbox...)
	s.outbox = s.outbox[:0]
	return err
}

// misbehave delivers the day's replayed and forged batches. A replay is
// an earlier batch as it was: clearing must count every tap in it as a
// repeat. A forgery must be quarantined for the reason it is planned
// with.
func (s *Sim) misbehave(ctx context.Context, d int) (replayed, forged int, err error) {
	var msgs []bus.Message
	for _, rd := range s.replayDays {
		if rd != d || len(s.replay) == 0 {
			continue
		}
		wire := s.replay[s.faults.IntN(len(s.replay))]
		n, err := tapCount(wire)
		if err != nil {
			return 0, 0, err
		}
		b, _ := tap.Unmarshal(wire)
		msgs = append(msgs, bus.Message{Key: []byte(b.Device), Value: wire})
		s.ledger.dups += int64(n)
		replayed++
	}
	for _, f := range s.forgedDays {
		if f.day != d {
			continue
		}
		key, wire := s.forge(f.reason)
		msgs = append(msgs, bus.Message{Key: key, Value: wire})
		s.ledger.forged[f.reason]++
		forged++
	}
	if s.clearing != nil {
		if err := s.clearing.publish(ctx, msgs...); err != nil {
			return 0, 0, err
		}
	}
	return replayed, forged, nil
}

// forge makes a batch clearing must quarantine for reason.
func (s *Sim) forge(reason string) (key, wire []byte) {
	rng := s.faults
	dev := s.w.devices[rng.IntN(len(s.w.devices))]
	fake := func(device string) tap.Batch {
		now := s.deviceNow(dev)
		b := tap.Batch{Device: device, KeyVersion: 1, Created: now}
		for i := range 1 + rng.IntN(20) {
			b.Taps = append(b.Taps, tap.Tap{Device: device, Seq: uint64(1_000_000 + i), Time: now.Add(-time.Duration(i) * time.Minute),
				Card: 1001_0000_0000_0000 + uint64(rng.IntN(1e6)), Carrier: dev.carrier, Route: dev.route.id, Vehicle: dev.vehicle,
				Result: tap.Accepted, Reason: "ok", Product: "benefit", Category: "11", Funding: "state",
				FareKop: 1500, CompensationKop: 1500, TariffVersion: s.w.tariff.Version, CardCommitted: true})
		}
		return b
	}
	mac := make([]byte, tap.MACSize)
	for i := range mac {
		mac[i] = byte(rng.IntN(256))
	}
	switch reason {
	case ingest.ReasonUnknownDevice:
		b := fake(fmt.Sprintf("ghost-bus-%03d", rng.IntN(1000)))
		b.MAC = mac
		w, _ := b.Marshal() // the MAC has the right length
		return []byte(b.Device), w
	case ingest.ReasonMalformed:
		junk := make([]byte, 40+rng.IntN(200))
		for i := range junk {
			junk[i] = byte(rng.IntN(256))
		}
		// Looks like a batch, in a format version no build reads.
		junk[0], junk[1], junk[2] = 'T', 'B', 0xEE
		return []byte(dev.id), junk
	}
	// A real batch with one tap's compensation raised after sealing; with
	// none sent yet, a made-up batch with a made-up MAC.
	if len(s.replay) > 0 {
		if b, err := tap.Unmarshal(s.replay[rng.IntN(len(s.replay))]); err == nil && len(b.Taps) > 0 {
			b.Taps[rng.IntN(len(b.Taps))].CompensationKop += 10_000
			w, _ := b.Marshal()
			return []byte(b.Device), w
		}
	}
	b := fake(dev.id)
	b.MAC = mac
	w, _ := b.Marshal()
	return []byte(dev.id), w
}
