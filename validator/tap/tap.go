// Package tap defines the tap record a validator writes for every card
// presentation and the authenticated batch in which taps travel to
// clearing. It is the one format the validator, the bus and clearing share,
// so it depends on nothing but the standard library.
package tap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// Result says what the validator showed the rider.
type Result uint8

// Results. The zero value is invalid so a forgotten field is caught.
const (
	Accepted    Result = 1 // green: ride paid, free or covered by a pass
	Denied      Result = 2 // red: no ride
	AlreadyPaid Result = 3 // anti-passback: same card on the same vehicle again, not charged
)

func (r Result) String() string {
	switch r {
	case Accepted:
		return "accepted"
	case Denied:
		return "denied"
	case AlreadyPaid:
		return "already-paid"
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// Tap is one card presentation on one validator. Money is in kopiyky.
// A tap carries a card number and a benefit category code, never personal
// data.
type Tap struct {
	Device  string    // validator id, unique in the city
	Seq     uint64    // per-device sequence number, starts at 1, never repeats
	Time    time.Time // validator clock at the tap, UTC, millisecond precision
	Card    uint64    // card number
	Carrier string    // carrier code
	Route   string    // route code
	Vehicle string    // vehicle code
	// Lat and Lon are where the vehicle was, in microdegrees (0 if unknown).
	Lat, Lon int32

	Result   Result
	Reason   string // machine code: "ok", "hotlisted", "insufficient-funds"...
	Product  string // what paid: "purse", "pass", "benefit", "transfer"
	Category string // benefit category code, "" when none applies
	Funding  string // who compensates a benefit ride: "city", "state" or ""

	FareKop         int64 // full fare for this ride
	ChargedKop      int64 // taken from the purse
	CompensationKop int64 // owed to the carrier by Funding for a benefit ride

	TariffVersion  uint32
	HotlistVersion uint64
	// CardCommitted is false when the card left the field before its
	// transaction was committed: the decision was journalled but the card
	// does not show it.
	CardCommitted bool
}

// Validate reports the first field that cannot be right.
func (t *Tap) Validate() error {
	switch {
	case t.Device == "":
		return errors.New("tap: empty device")
	case t.Seq == 0:
		return fmt.Errorf("tap %s: sequence 0 (sequences start at 1)", t.Device)
	case t.Result < Accepted || t.Result > AlreadyPaid:
		return fmt.Errorf("tap %s/%d: unknown result %d", t.Device, t.Seq, t.Result)
	case t.FareKop < 0 || t.ChargedKop < 0 || t.CompensationKop < 0:
		return fmt.Errorf("tap %s/%d: negative amount", t.Device, t.Seq)
	case t.Time.IsZero():
		return fmt.Errorf("tap %s/%d: no time", t.Device, t.Seq)
	}
	return nil
}

// Period returns the accounting month of the tap, "YYYY-MM", in loc (the
// city's time zone; UTC when nil).
func (t *Tap) Period(loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.Time.In(loc).Format("2006-01")
}

// Batch is a run of taps from one device, sealed with a MAC made with the
// device's batch key. Clearing recomputes the MAC before applying anything.
type Batch struct {
	Device     string
	KeyVersion uint32
	Created    time.Time
	Taps       []Tap
	MAC        []byte // MACSize bytes over Body()
}

// MACSize is the length of a batch MAC (AES-CMAC).
const MACSize = 16

const (
	magic0, magic1 = 'T', 'B'
	formatVersion  = 1

	maxString = 64
	// MaxTaps bounds a batch so a forged length cannot make the decoder
	// allocate without limit.
	MaxTaps = 1 << 16
)

// Body returns the bytes the MAC covers: everything but the MAC itself.
func (b *Batch) Body() []byte {
	buf := make([]byte, 0, 32+len(b.Taps)*80)
	buf = append(buf, magic0, magic1, formatVersion)
	buf = appendString(buf, b.Device)
	buf = binary.AppendUvarint(buf, uint64(b.KeyVersion))
	buf = binary.AppendVarint(buf, b.Created.UnixMilli())
	buf = binary.AppendUvarint(buf, uint64(len(b.Taps)))
	for i := range b.Taps {
		buf = appendTap(buf, &b.Taps[i])
	}
	return buf
}

// Marshal returns the wire form: Body() followed by the MAC.
func (b *Batch) Marshal() ([]byte, error) {
	if len(b.MAC) != MACSize {
		return nil, fmt.Errorf("tap: batch from %s is not sealed (MAC of %d bytes)", b.Device, len(b.MAC))
	}
	return append(b.Body(), b.MAC...), nil
}

// Validate checks that every tap belongs to the batch's device and is well
// formed.
func (b *Batch) Validate() error {
	if b.Device == "" {
		return errors.New("tap: batch without device")
	}
	for i := range b.Taps {
		t := &b.Taps[i]
		if t.Device != b.Device {
			return fmt.Errorf("tap: batch from %s holds a tap from %s", b.Device, t.Device)
		}
		if err := t.Validate(); err != nil {
			return err
		}
	}
	return nil
}

func appendString(buf []byte, s string) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendTap(buf []byte, t *Tap) []byte {
	// The device is the batch's; it is not repeated per tap.
	buf = binary.AppendUvarint(buf, t.Seq)
	buf = binary.AppendVarint(buf, t.Time.UnixMilli())
	buf = binary.AppendUvarint(buf, t.Card)
	buf = appendString(buf, t.Carrier)
	buf = appendString(buf, t.Route)
	buf = appendString(buf, t.Vehicle)
	buf = binary.AppendVarint(buf, int64(t.Lat))
	buf = binary.AppendVarint(buf, int64(t.Lon))
	buf = append(buf, byte(t.Result))
	buf = appendString(buf, t.Reason)
	buf = appendString(buf, t.Product)
	buf = appendString(buf, t.Category)
	buf = appendString(buf, t.Funding)
	buf = binary.AppendVarint(buf, t.FareKop)
	buf = binary.AppendVarint(buf, t.ChargedKop)
	buf = binary.AppendVarint(buf, t.CompensationKop)
	buf = binary.AppendUvarint(buf, uint64(t.TariffVersion))
	buf = binary.AppendUvarint(buf, t.HotlistVersion)
	var flags byte
	if t.CardCommitted {
		flags |= 1
	}
	return append(buf, flags)
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("malformed tap batch")

type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: at byte %d: %s", ErrMalformed, d.off, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		d.fail("bad %s", what)
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) byte(what string) byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.fail("missing %s", what)
		return 0
	}
	b := d.buf[d.off]
	d.off++
	return b
}

func (d *decoder) string(what string) string {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return ""
	}
	if n > maxString || uint64(len(d.buf)-d.off) < n {
		d.fail("%s of %d bytes", what, n)
		return ""
	}
	s := string(d.buf[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}

func (d *decoder) int32(what string) int32 {
	v := d.varint(what)
	if v < -1<<31 || v > 1<<31-1 {
		d.fail("%s %d out of range", what, v)
	}
	return int32(v)
}

// Unmarshal decodes a batch from its wire form. It checks the structure
// only; the caller verifies the MAC over Body() with the device key.
func Unmarshal(wire []byte) (*Batch, error) {
	if len(wire) < 3+MACSize {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrMalformed, len(wire))
	}
	if wire[0] != magic0 || wire[1] != magic1 {
		return nil, fmt.Errorf("%w: not a tap batch (magic %q)", ErrMalformed, wire[:2])
	}
	if wire[2] != formatVersion {
		return nil, fmt.Errorf("%w: format version %d, this build reads %d", ErrMalformed, wire[2], formatVersion)
	}
	body := wire[:len(wire)-MACSize]
	d := &decoder{buf: body, off: 3}
	b := &Batch{}
	b.Device = d.string("device")
	kv := d.uvarint("key version")
	if kv > 1<<32-1 {
		d.fail("key version %d out of range", kv)
	}
	b.KeyVersion = uint32(kv)
	b.Created = time.UnixMilli(d.varint("created")).UTC()
	n := d.uvarint("tap count")
	if d.err == nil && n > MaxTaps {
		d.fail("%d taps (at most %d)", n, MaxTaps)
	}
	if d.err == nil && n > uint64(len(body)) {
		// Every tap takes more than one byte; cheap bound before allocating.
		d.fail("%d taps in %d bytes", n, len(body))
	}
	if d.err != nil {
		return nil, d.err
	}
	b.Taps = make([]Tap, n)
	for i := range b.Taps {
		b.Taps[i] = decodeTap(d)
		b.Taps[i].Device = b.Device
		if d.err != nil {
			return nil, fmt.Errorf("tap %d of %d: %w", i+1, n, d.err)
		}
	}
	if d.off != len(body) {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(body)-d.off)
	}
	b.MAC = append([]byte(nil), wire[len(body):]...)
	return b, nil
}

func decodeTap(d *decoder) Tap {
	var t Tap
	t.Seq = d.uvarint("sequence")
	t.Time = time.UnixMilli(d.varint("time")).UTC()
	t.Card = d.uvarint("card")
	t.Carrier = d.string("carrier")
	t.Route = d.string("route")
	t.Vehicle = d.string("vehicle")
	t.Lat = d.int32("latitude")
	t.Lon = d.int32("longitude")
	t.Result = Result(d.byte("result"))
	t.Reason = d.string("reason")
	t.Product = d.string("product")
	t.Category = d.string("category")
	t.Funding = d.string("funding")
	t.FareKop = d.varint("fare")
	t.ChargedKop = d.varint("charged")
	t.CompensationKop = d.varint("compensation")
	tv := d.uvarint("tariff version")
	if tv > 1<<32-1 {
		d.fail("tariff version %d out of range", tv)
	}
	t.TariffVersion = uint32(tv)
	t.HotlistVersion = d.uvarint("hotlist version")
	flags := d.byte("flags")
	if flags&^1 != 0 {
		d.fail("unknown flags %#x", flags)
	}
	t.CardCommitted = flags&1 != 0
	return t
}

// AppendBinary appends the encoding of one tap without its device (a
// journal or batch is per device) and returns the extended buffer.
func (t *Tap) AppendBinary(buf []byte) ([]byte, error) {
	return appendTap(buf, t), nil
}

// UnmarshalTap decodes one tap written by AppendBinary and sets its
// device. The whole of data must be one tap.
func UnmarshalTap(device string, data []byte) (Tap, error) {
	d := &decoder{buf: data}
	t := decodeTap(d)
	t.Device = device
	if d.err == nil && d.off != len(data) {
		d.fail("%d trailing bytes", len(data)-d.off)
	}
	return t, d.err
}
