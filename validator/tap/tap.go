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
	// CommitUnknown says the card may or may not hold the tap: it was lost
	// during CommitTransaction, or the validator lost power between the
	// journal and the card's answer. CardCommitted is then false; a later
	// tap's Prev tells clearing what the card holds.
	CommitUnknown bool
	// ClockAnomaly says the tap is stamped before the card's previous
	// ride, so neither anti-passback nor a transfer followed from it.
	ClockAnomaly bool
	// BenefitRevoked says a benefit-revoked hotlist entry withdrew the
	// card's benefits for this tap.
	BenefitRevoked bool
	// Counted says the benefit ride was counted on the card's monthly
	// ride limit.
	Counted bool

	// DeviceNumber is the device's number as the card's tap log records
	// it (validator configuration "device_number"); 0 when unknown.
	DeviceNumber uint32
	// Prev is the card's previous ride as the newest record of its tap log
	// showed it during this tap: the card's own evidence of what it
	// committed. The zero CardRide (Device 0) when the log was empty or not
	// read (a blocked or expired card).
	Prev CardRide
	// CardMAC is the Transaction MAC an EV2 or EV3 card computed over this
	// tap's card transaction, which clearing verifies with a key no
	// validator holds; nil for an EV1 or a tap the card did not commit.
	CardMAC *CardMAC
}

// CardMAC is what an EV2 or EV3 card signed when it committed a tap: its
// Transaction MAC counter and value, and the plain bytes of the commands
// the card MACed (the Transaction MAC Input is rebuilt from them:
// clearing/cardmac). The contract bytes carry the card number, the
// entitlements' category codes and dates and the passes: no personal
// data, no more than the tap itself names. The UID is the card's real
// UID, which a random-ID card does not show to a reader.
type CardMAC struct {
	TMC uint32
	TMV [8]byte
	UID []byte
	// KeyVersion is the generation of the card's Transaction MAC key.
	KeyVersion uint8
	// Contract is the contract read, empty when an empty tap log restarted
	// the session after reading it.
	Contract []byte
	// Prev is the newest tap record read, empty for an empty log.
	Prev []byte
	// DebitKop is the purse debit, 0 for none.
	DebitKop int64
	// Record is the tap record written.
	Record []byte
}

// CardRide is a ride as the card's tap log records it: codes, the device
// number and the low 32 bits of its sequence, and whole seconds. Device 0
// is no ride.
type CardRide struct {
	Device     uint32
	Seq        uint32
	Time       time.Time // UTC, whole seconds
	Carrier    uint16
	Route      uint16
	Product    string // "purse", "pass", "benefit", "transfer"
	ChargedKop int64
}

// Validate reports the first field that cannot be right as a record:
// the structure, not the money. Amounts are clearing's to judge: a tap
// claiming a negative or absurd amount is stored and held there with the
// reason (clearing/rerate), so that the honest taps of its batch are not
// refused with it.
func (t *Tap) Validate() error {
	switch {
	case t.Device == "":
		return errors.New("tap: empty device")
	case t.Seq == 0:
		return fmt.Errorf("tap %s: sequence 0 (sequences start at 1)", t.Device)
	case t.Result < Accepted || t.Result > AlreadyPaid:
		return fmt.Errorf("tap %s/%d: unknown result %d", t.Device, t.Seq, t.Result)
	case t.Time.IsZero():
		return fmt.Errorf("tap %s/%d: no time", t.Device, t.Seq)
	case t.CardCommitted && t.CommitUnknown:
		return fmt.Errorf("tap %s/%d: committed and commit unknown at once", t.Device, t.Seq)
	case t.Prev != (CardRide{}) && (t.Prev.Device == 0 || t.Prev.Time.IsZero() || t.Prev.ChargedKop < 0):
		return fmt.Errorf("tap %s/%d: previous ride without device or time, or with a negative charge", t.Device, t.Seq)
	case t.CardMAC != nil && (len(t.CardMAC.UID) != 7 || len(t.CardMAC.Record) == 0 || t.CardMAC.DebitKop < 0 || t.CardMAC.TMC == 0):
		return fmt.Errorf("tap %s/%d: card MAC without UID, record or counter, or with a negative debit", t.Device, t.Seq)
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
	flags := t.flags()
	buf = append(buf, flags)
	if flags&flagExtensions != 0 {
		buf = appendExtensions(buf, t)
	}
	return buf
}

// Flag bits of a tap's flags byte. flagExtensions says a list of tagged
// extensions follows, so that a tap without the newer fields encodes as
// it always did.
const (
	flagCommitted      = 1 << 0
	flagCommitUnknown  = 1 << 1
	flagClockAnomaly   = 1 << 2
	flagBenefitRevoked = 1 << 3
	flagCounted        = 1 << 4
	flagExtensions     = 1 << 7
	knownFlags         = flagCommitted | flagCommitUnknown | flagClockAnomaly | flagBenefitRevoked | flagCounted | flagExtensions
)

func (t *Tap) flags() byte {
	var f byte
	for _, b := range []struct {
		on  bool
		bit byte
	}{{t.CardCommitted, flagCommitted}, {t.CommitUnknown, flagCommitUnknown}, {t.ClockAnomaly, flagClockAnomaly},
		{t.BenefitRevoked, flagBenefitRevoked}, {t.Counted, flagCounted}, {t.hasEvidence(), flagExtensions}} {
		if b.on {
			f |= b.bit
		}
	}
	return f
}

// Extension tags, in the order they are written. A decoder refuses a tag
// it does not know: every field of a tap can move money.
const (
	extDeviceNumber = 1
	extPrev         = 2
	// extCardMAC is the Transaction MAC of an EV2/EV3 card (Tap.CardMAC).
	extCardMAC    = 3
	maxExtensions = 16
	maxExtension  = 255
	// maxCardBytes bounds each card file image in extCardMAC.
	maxCardBytes = 64
)

func (t *Tap) hasEvidence() bool {
	return t.DeviceNumber != 0 || t.Prev.Device != 0 || t.CardMAC != nil
}

// appendExtensions writes the extension list: a count, then for each
// extension its tag, its length and its bytes, tags ascending.
func appendExtensions(buf []byte, t *Tap) []byte {
	var exts [][]byte
	var tags []uint64
	if t.DeviceNumber != 0 {
		tags = append(tags, extDeviceNumber)
		exts = append(exts, binary.AppendUvarint(nil, uint64(t.DeviceNumber)))
	}
	if p := &t.Prev; p.Device != 0 {
		var e []byte
		e = binary.AppendUvarint(e, uint64(p.Device))
		e = binary.AppendUvarint(e, uint64(p.Seq))
		e = binary.AppendVarint(e, p.Time.Unix())
		e = binary.AppendUvarint(e, uint64(p.Carrier))
		e = binary.AppendUvarint(e, uint64(p.Route))
		e = appendString(e, p.Product)
		e = binary.AppendVarint(e, p.ChargedKop)
		tags = append(tags, extPrev)
		exts = append(exts, e)
	}
	if m := t.CardMAC; m != nil {
		var e []byte
		e = binary.AppendUvarint(e, uint64(m.TMC))
		e = append(e, m.TMV[:]...)
		e = appendString(e, string(m.UID))
		e = binary.AppendUvarint(e, uint64(m.KeyVersion))
		e = appendString(e, string(m.Contract))
		e = appendString(e, string(m.Prev))
		e = binary.AppendVarint(e, m.DebitKop)
		e = appendString(e, string(m.Record))
		tags = append(tags, extCardMAC)
		exts = append(exts, e)
	}
	buf = binary.AppendUvarint(buf, uint64(len(exts)))
	for i, e := range exts {
		buf = binary.AppendUvarint(buf, tags[i])
		buf = appendString(buf, string(e))
	}
	return buf
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

// fixed reads n bytes.
func (d *decoder) fixed(what string, n int) []byte {
	if d.err != nil {
		return make([]byte, n)
	}
	if len(d.buf)-d.off < n {
		d.fail("%s: %d bytes missing", what, n)
		return make([]byte, n)
	}
	b := d.buf[d.off : d.off+n]
	d.off += n
	return b
}

// bytes reads a length-prefixed byte string of at most limit bytes.
func (d *decoder) bytes(what string, limit uint64) []byte {
	n := d.uvarint(what + " length")
	if d.err != nil {
		return nil
	}
	if n > limit || uint64(len(d.buf)-d.off) < n {
		d.fail("%s of %d bytes", what, n)
		return nil
	}
	b := d.buf[d.off : d.off+int(n)]
	d.off += int(n)
	return b
}

func (d *decoder) uint32(what string) uint32 {
	v := d.uvarint(what)
	if v > 1<<32-1 {
		d.fail("%s %d out of range", what, v)
	}
	return uint32(v)
}

func (d *decoder) uint16(what string) uint16 {
	v := d.uvarint(what)
	if v > 1<<16-1 {
		d.fail("%s %d out of range", what, v)
	}
	return uint16(v)
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
	if flags&^knownFlags != 0 {
		d.fail("unknown flags %#x", flags)
	}
	t.CardCommitted = flags&flagCommitted != 0
	t.CommitUnknown = flags&flagCommitUnknown != 0
	t.ClockAnomaly = flags&flagClockAnomaly != 0
	t.BenefitRevoked = flags&flagBenefitRevoked != 0
	t.Counted = flags&flagCounted != 0
	if flags&flagExtensions != 0 {
		decodeExtensions(d, &t)
	}
	return t
}

// decodeExtensions reads what appendExtensions wrote, and refuses an empty
// list, an unknown, repeated or out-of-order tag, an extension with bytes
// left over, and a field out of range, so that every tap has one encoding.
func decodeExtensions(d *decoder, t *Tap) {
	n := d.uvarint("extension count")
	if d.err == nil && (n == 0 || n > maxExtensions) {
		d.fail("%d extensions (1 to %d)", n, maxExtensions)
	}
	last := uint64(0)
	for i := uint64(0); d.err == nil && i < n; i++ {
		tag := d.uvarint("extension tag")
		body := d.bytes("extension", maxExtension)
		if d.err != nil {
			return
		}
		if tag <= last {
			d.fail("extension tag %d after %d (tags ascend, once each)", tag, last)
			return
		}
		last = tag
		e := &decoder{buf: body}
		switch tag {
		case extDeviceNumber:
			t.DeviceNumber = e.uint32("device number")
			if e.err == nil && t.DeviceNumber == 0 {
				e.fail("device number 0")
			}
		case extPrev:
			p := &t.Prev
			p.Device = e.uint32("previous device")
			p.Seq = e.uint32("previous sequence")
			p.Time = time.Unix(e.varint("previous time"), 0).UTC()
			p.Carrier = e.uint16("previous carrier")
			p.Route = e.uint16("previous route")
			p.Product = e.string("previous product")
			p.ChargedKop = e.varint("previous charge")
			if e.err == nil && p.Device == 0 {
				e.fail("previous ride on device 0")
			}
		case extCardMAC:
			m := &CardMAC{}
			m.TMC = e.uint32("transaction MAC counter")
			copy(m.TMV[:], e.fixed("transaction MAC", 8))
			m.UID = e.bytes("UID", 7)
			kv := e.uvarint("transaction MAC key version")
			if kv > 255 {
				e.fail("key version %d out of range", kv)
			}
			m.KeyVersion = uint8(kv)
			m.Contract = e.bytes("contract", maxCardBytes)
			m.Prev = e.bytes("previous record", maxCardBytes)
			m.DebitKop = e.varint("debit")
			m.Record = e.bytes("record", maxCardBytes)
			if e.err == nil && (m.TMC == 0 || len(m.UID) != 7 || len(m.Record) == 0 || m.DebitKop < 0) {
				e.fail("card MAC without counter, 7-byte UID or record, or with a negative debit")
			}
			for _, b := range []*[]byte{&m.UID, &m.Contract, &m.Prev, &m.Record} {
				if len(*b) == 0 {
					*b = nil
				} else {
					*b = append([]byte(nil), *b...)
				}
			}
			t.CardMAC = m
		default:
			d.fail("unknown extension tag %d", tag)
			return
		}
		if e.err == nil && e.off != len(body) {
			e.fail("%d bytes left over", len(body)-e.off)
		}
		if e.err != nil {
			d.fail("extension %d: %v", tag, e.err)
		}
	}
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

// Marks returns the flags of t other than CardCommitted (CommitUnknown,
// ClockAnomaly, BenefitRevoked, Counted) as one number, the bits of the
// wire's flags byte, for a store that keeps them in one column.
func (t *Tap) Marks() uint8 { return t.flags() &^ (flagCommitted | flagExtensions) }

// SetMarks sets the flags Marks returns; it refuses bits it does not know.
func (t *Tap) SetMarks(m uint8) error {
	if m&^(knownFlags&^(flagCommitted|flagExtensions)) != 0 {
		return fmt.Errorf("%w: unknown tap marks %#x", ErrMalformed, m)
	}
	t.CommitUnknown = m&flagCommitUnknown != 0
	t.ClockAnomaly = m&flagClockAnomaly != 0
	t.BenefitRevoked = m&flagBenefitRevoked != 0
	t.Counted = m&flagCounted != 0
	return nil
}

// Evidence returns t's card evidence (DeviceNumber, Prev and CardMAC) in
// the wire's extension form, nil when t carries none, for a store that
// keeps it in one column.
func (t *Tap) Evidence() []byte {
	if !t.hasEvidence() {
		return nil
	}
	return appendExtensions(nil, t)
}

// SetEvidence sets DeviceNumber, Prev and CardMAC from what Evidence
// returned; nil or empty clears them.
func (t *Tap) SetEvidence(b []byte) error {
	t.DeviceNumber, t.Prev, t.CardMAC = 0, CardRide{}, nil
	if len(b) == 0 {
		return nil
	}
	d := &decoder{buf: b}
	decodeExtensions(d, t)
	if d.err == nil && d.off != len(b) {
		d.fail("%d trailing bytes", len(b)-d.off)
	}
	return d.err
}
