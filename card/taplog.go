package card

import (
	"encoding/binary"
	"fmt"
)

// TapRecordVersion is the tap log record layout this code writes and reads.
// Version 2 carries the monthly benefit ride counts, which version 1 kept in
// a counters file of their own.
const TapRecordVersion = 2

// TapRecordSize is the size of one tap log record.
const TapRecordSize = 34

// NoSlot in TapRecord.Slot means no entitlement or pass slot was used.
const NoSlot uint8 = 0xFF

// Product is what paid for a ride, as the card log records it.
type Product uint8

// Products. The names match validator/tap's Product strings.
const (
	ProductPurse    Product = 1
	ProductPass     Product = 2
	ProductBenefit  Product = 3
	ProductTransfer Product = 4
)

// String returns the product name used in validator/tap.
func (p Product) String() string {
	switch p {
	case ProductPurse:
		return "purse"
	case ProductPass:
		return "pass"
	case ProductBenefit:
		return "benefit"
	case ProductTransfer:
		return "transfer"
	}
	return fmt.Sprintf("product(%d)", uint8(p))
}

// Result is what the validator showed; the codes equal validator/tap's
// Result values.
type Result uint8

// Results.
const (
	ResultAccepted    Result = 1
	ResultDenied      Result = 2
	ResultAlreadyPaid Result = 3
)

// String returns the result name used in validator/tap.
func (r Result) String() string {
	switch r {
	case ResultAccepted:
		return "accepted"
	case ResultDenied:
		return "denied"
	case ResultAlreadyPaid:
		return "already-paid"
	}
	return fmt.Sprintf("result(%d)", uint8(r))
}

// TapRecord is one record of the cyclic tap log: what the rider and an
// inspector can check later, and what the next validator decides on. It
// holds codes, not names.
//
//	0      version
//	1..4   time (Stamp)
//	5..8   device number (uint32)
//	9..12  device sequence, low 32 bits
//	13..14 carrier code, 15..16 route code (uint16)
//	17..20 amount charged to the purse (Money, int32, >= 0)
//	21     product, 22 result
//	23     contract slot used (entitlement for benefit, pass for pass), or NoSlot
//	24..33 2 x {category u16, month u16 (Month), rides used u8}: the monthly
//	       benefit ride counts after this ride, one per contract
//	       entitlement slot
//
// The newest record is the card's ride counts: every ride writes a record
// that carries them forward (RecordAfter), so the counts travel in the one
// file a validator reads on every tap, and a counted benefit ride costs no
// exchange more than any other ride (LAYOUT.md).
type TapRecord struct {
	Time    Stamp
	Device  uint32
	Seq     uint32
	Carrier uint16
	Route   uint16
	Charged Money
	Product Product
	Result  Result
	Slot    uint8
	// Counts are the benefit rides counted per entitlement slot, as of
	// this ride.
	Counts [MaxEntitlements]Counter
}

// Validate reports the first field that cannot be right.
func (r *TapRecord) Validate() error {
	const file = "taplog"
	switch {
	case r.Device == 0:
		return fieldErr(file, "device", ErrValue, "0")
	case r.Charged < 0 || r.Charged > PurseUpper:
		return fieldErr(file, "charged", ErrValue, "%s outside 0..%s", r.Charged, PurseUpper)
	case r.Product < ProductPurse || r.Product > ProductTransfer:
		return fieldErr(file, "product", ErrValue, "%d", uint8(r.Product))
	case r.Result < ResultAccepted || r.Result > ResultAlreadyPaid:
		return fieldErr(file, "result", ErrValue, "%d", uint8(r.Result))
	case r.Slot != NoSlot && int(r.Slot) >= max(MaxEntitlements, MaxPasses):
		return fieldErr(file, "slot", ErrValue, "%d", r.Slot)
	}
	for i, c := range r.Counts {
		if err := c.validate(i); err != nil {
			return err
		}
	}
	return nil
}

// MarshalBinary encodes one tap log record.
func (r *TapRecord) MarshalBinary() ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 1, TapRecordSize)
	b[0] = TapRecordVersion
	b = binary.BigEndian.AppendUint32(b, uint32(r.Time))
	b = binary.BigEndian.AppendUint32(b, r.Device)
	b = binary.BigEndian.AppendUint32(b, r.Seq)
	b = binary.BigEndian.AppendUint16(b, r.Carrier)
	b = binary.BigEndian.AppendUint16(b, r.Route)
	b = binary.BigEndian.AppendUint32(b, uint32(r.Charged))
	b = append(b, byte(r.Product), byte(r.Result), r.Slot)
	for _, c := range r.Counts {
		b = binary.BigEndian.AppendUint16(b, c.Category)
		b = binary.BigEndian.AppendUint16(b, uint16(c.Month))
		b = append(b, c.Used)
	}
	return b, nil
}

// UnmarshalBinary decodes and validates one tap log record.
func (r *TapRecord) UnmarshalBinary(b []byte) error {
	if len(b) != TapRecordSize {
		return lengthErr("taplog", len(b), TapRecordSize)
	}
	if b[0] != TapRecordVersion {
		return versionErr("taplog", b[0], TapRecordVersion)
	}
	v := TapRecord{
		Time:    Stamp(binary.BigEndian.Uint32(b[1:])),
		Device:  binary.BigEndian.Uint32(b[5:]),
		Seq:     binary.BigEndian.Uint32(b[9:]),
		Carrier: binary.BigEndian.Uint16(b[13:]),
		Route:   binary.BigEndian.Uint16(b[15:]),
		Charged: Money(int32(binary.BigEndian.Uint32(b[17:]))),
		Product: Product(b[21]),
		Result:  Result(b[22]),
		Slot:    b[23],
	}
	for i := range v.Counts {
		c := b[24+i*5:]
		v.Counts[i] = Counter{Category: binary.BigEndian.Uint16(c), Month: Month(binary.BigEndian.Uint16(c[2:])), Used: c[4]}
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*r = v
	return nil
}

// DecodeTapLog splits the data of a ReadRecords response into records, in
// the order the card returned them.
func DecodeTapLog(b []byte) ([]TapRecord, error) {
	if len(b)%TapRecordSize != 0 {
		return nil, fieldErr("taplog", "length", ErrLength, "%d bytes is not a multiple of the %d-byte record", len(b), TapRecordSize)
	}
	out := make([]TapRecord, len(b)/TapRecordSize)
	for i := range out {
		if err := out[i].UnmarshalBinary(b[i*TapRecordSize : (i+1)*TapRecordSize]); err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
	}
	return out, nil
}
