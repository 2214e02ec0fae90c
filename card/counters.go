package card

import (
	"encoding/binary"
	"fmt"
)

// CountersVersion is the counters layout this code writes and reads.
const CountersVersion = 1

// CountersSize is the size of the counters backup file.
const CountersSize = 24

// Counter counts the benefit rides of one entitlement slot in one month.
// It names the category it counts for, so that a slot the desk re-used for
// another benefit does not inherit a stale count.
type Counter struct {
	Category uint16
	Month    Month
	Used     uint8
}

// Counters is the benefit ride counters file, a backup file: the
// validator's WriteData to it takes effect only at CommitTransaction,
// together with the tap log record, or not at all. It also remembers the
// last counted ride, so that a second tap at another door of the same
// vehicle is not counted (and compensated) twice, without an extra read
// of the tap log.
//
//	0      version
//	1..10  2 x {category u16, month u16 (Month), rides used u8},
//	       one per contract entitlement slot
//	11..14 last counted ride (Stamp), 15..18 its device (uint32)
//	19..23 reserved, zero
type Counters struct {
	Slots      [MaxEntitlements]Counter
	LastRide   Stamp
	LastDevice uint32
}

// UsedIn returns the rides used in month m for category in slot; a counter
// of another month or category counts as zero.
func (c *Counters) UsedIn(slot int, category uint16, m Month) uint8 {
	if slot < 0 || slot >= MaxEntitlements {
		return 0
	}
	s := c.Slots[slot]
	if s.Category != category || s.Month != m {
		return 0
	}
	return s.Used
}

// Ride counts one ride for category in slot in month m, made at time at on
// device, starting a fresh count when the month or category changed.
func (c *Counters) Ride(slot int, category uint16, m Month, at Stamp, device uint32) error {
	if slot < 0 || slot >= MaxEntitlements {
		return fmt.Errorf("counters: slot %d, want 0..%d", slot, MaxEntitlements-1)
	}
	if category == 0 || m == 0 || !m.Valid() || device == 0 {
		return fmt.Errorf("counters: slot %d: category %d month %s device %d: %w", slot, category, m, device, ErrValue)
	}
	used := c.UsedIn(slot, category, m)
	if used == 0xFF {
		return fmt.Errorf("counters: slot %d: 255 rides in %s already", slot, m)
	}
	c.Slots[slot] = Counter{Category: category, Month: m, Used: used + 1}
	c.LastRide, c.LastDevice = at, device
	return nil
}

// Validate reports the first field that cannot be right.
func (c *Counters) Validate() error {
	for i, s := range c.Slots {
		if s == (Counter{}) {
			continue
		}
		f := func(field string) string { return fmt.Sprintf("slots[%d].%s", i, field) }
		switch {
		case s.Category == 0:
			return fieldErr("counters", f("category"), ErrValue, "0 in a used slot")
		case s.Month == 0 || !s.Month.Valid():
			return fieldErr("counters", f("month"), ErrDate, "%#04x", uint16(s.Month))
		}
	}
	if (c.LastRide == 0) != (c.LastDevice == 0) {
		return fieldErr("counters", "lastDevice", ErrValue, "device %d with last ride %s; both or neither", c.LastDevice, c.LastRide)
	}
	return nil
}

// MarshalBinary encodes the counters file content.
func (c *Counters) MarshalBinary() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 1, CountersSize)
	b[0] = CountersVersion
	for _, s := range c.Slots {
		b = binary.BigEndian.AppendUint16(b, s.Category)
		b = binary.BigEndian.AppendUint16(b, uint16(s.Month))
		b = append(b, s.Used)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(c.LastRide))
	b = binary.BigEndian.AppendUint32(b, c.LastDevice)
	return b[:CountersSize], nil
}

// UnmarshalBinary decodes and validates the counters file content. A file
// fresh from personalisation (version 1, then zeros) decodes to zero
// counters.
func (c *Counters) UnmarshalBinary(b []byte) error {
	if len(b) != CountersSize {
		return lengthErr("counters", len(b), CountersSize)
	}
	if b[0] != CountersVersion {
		return versionErr("counters", b[0], CountersVersion)
	}
	var v Counters
	for i := range v.Slots {
		s := b[1+i*5:]
		v.Slots[i] = Counter{Category: binary.BigEndian.Uint16(s), Month: Month(binary.BigEndian.Uint16(s[2:])), Used: s[4]}
	}
	last := 1 + MaxEntitlements*5
	v.LastRide = Stamp(binary.BigEndian.Uint32(b[last:]))
	v.LastDevice = binary.BigEndian.Uint32(b[last+4:])
	for i := last + 8; i < CountersSize; i++ {
		if b[i] != 0 {
			return fieldErr("counters", "reserved", ErrValue, "byte %d is %#02x, want 0", i, b[i])
		}
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*c = v
	return nil
}
