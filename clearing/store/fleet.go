package store

import (
	"time"

	"github.com/citycard/transit/clearing/ingest"
)

// DeviceState is what clearing knows of one device's health: when it
// last heard from it, what it last sent, and with which tariff and
// hotlist. Ingest keeps it (AddBatch); `transit report fleet`, the
// console and the fleet metrics read it (Fleet).
type DeviceState struct {
	Device string
	// LastBatch is when clearing received the device's newest batch, by
	// clearing's clock; BatchCreated is the device's clock when it sealed
	// that batch. Both are zero for a device whose taps were all stored
	// before clearing kept fleet state.
	LastBatch    time.Time
	BatchCreated time.Time
	// ClockOffset estimates how far the device's clock runs ahead of
	// clearing's (negative: behind), as BatchCreated - LastBatch. A
	// batch that waited before clearing took it (the device offline,
	// ingest behind) makes the clock look slow by the wait.
	ClockOffset time.Duration
	// LastSeq is the highest sequence number stored and LastTap the
	// device's time of that tap.
	LastSeq uint64
	LastTap time.Time
	// TariffVersion and HotlistVersion are those in force at the
	// device's latest tap: the one with the highest sequence number that
	// clearing has received since it kept fleet state.
	TariffVersion  uint32
	HotlistVersion uint64
	// VersionSeq is the sequence number of the tap the versions come
	// from; 0 when none has been seen.
	VersionSeq uint64
}

// StateUpdate is the change a batch makes to its device's fleet state;
// stores apply it with UpdateState's rules, in the transaction that
// stores the batch's taps.
type StateUpdate struct {
	Device string
	// Created and Received are the batch's, in UTC to the microsecond
	// (what both stores keep); ClockOffset is Created - Received to the
	// millisecond.
	Created, Received time.Time
	ClockOffset       time.Duration
	// VersionSeq is the highest sequence number in the batch, whose tap
	// gives TariffVersion and HotlistVersion; 0 for a batch without taps.
	VersionSeq     uint64
	TariffVersion  uint32
	HotlistVersion uint64
}

// NewStateUpdate returns what batch b changes in its device's state.
func NewStateUpdate(b ingest.Batch) StateUpdate {
	u := StateUpdate{Device: b.Device, Created: b.Created.UTC().Truncate(time.Microsecond),
		Received: b.Received.UTC().Truncate(time.Microsecond)}
	u.ClockOffset = u.Created.Sub(u.Received).Truncate(time.Millisecond)
	for i := range b.Taps {
		if t := &b.Taps[i]; t.Seq > u.VersionSeq {
			u.VersionSeq, u.TariffVersion, u.HotlistVersion = t.Seq, t.TariffVersion, t.HotlistVersion
		}
	}
	return u
}

// UpdateState applies u to the device's state s (the zero DeviceState for
// a device without one) and returns the result. The rules make the state
// independent of the order in which batches arrive and of repeats, as
// ingest delivers them after a crash or a rebalance:
//
//   - the last batch, its creation and the clock offset come from the
//     batch the device sealed last (the latest Created), so a batch read
//     again from the bus changes nothing;
//   - the versions come from the tap with the highest sequence number.
//
// LastSeq and LastTap are the sequence state's, not changed here. The
// stores implement these rules in SQL; the contract suite checks them
// against this function.
func UpdateState(s DeviceState, u StateUpdate) DeviceState {
	s.Device = u.Device
	if u.Created.After(s.BatchCreated) {
		s.BatchCreated, s.LastBatch, s.ClockOffset = u.Created, u.Received, u.ClockOffset
	}
	if u.VersionSeq > s.VersionSeq {
		s.VersionSeq, s.TariffVersion, s.HotlistVersion = u.VersionSeq, u.TariffVersion, u.HotlistVersion
	}
	return s
}
