package card

import (
	"encoding/binary"
	"fmt"
)

// ContractVersion is the contract layout this code writes and reads.
const ContractVersion = 1

// Contract file geometry. The validator reads the whole file in one frame:
// 44 bytes + CRC32 pad to 48 enciphered bytes, under MaxFrame.
const (
	ContractSize    = 44
	MaxEntitlements = 2
	MaxPasses       = 2
	EntitlementSize = 8
	PassSize        = 8
	// EntitlementOffset and PassOffset are where the slots start, for a
	// partial WriteData (top-up writes only the passes).
	EntitlementOffset = 12
	PassOffset        = EntitlementOffset + MaxEntitlements*EntitlementSize
)

// Status is the card's contract status.
type Status uint8

// Statuses. The zero value is invalid so that an unwritten file is caught.
const (
	StatusActive  Status = 1
	StatusBlocked Status = 2
)

// String returns "active" or "blocked".
func (s Status) String() string {
	switch s {
	case StatusActive:
		return "active"
	case StatusBlocked:
		return "blocked"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// Funding is who pays carriers back for a benefit ride.
type Funding uint8

// Funding sources.
const (
	FundingCity  Funding = 1
	FundingState Funding = 2
)

// String returns "city" or "state".
func (f Funding) String() string {
	switch f {
	case FundingCity:
		return "city"
	case FundingState:
		return "state"
	}
	return fmt.Sprintf("funding(%d)", uint8(f))
}

// Entitlement is one benefit on the card. A zero Entitlement is an empty
// slot.
type Entitlement struct {
	Category  uint16 // benefit category code from the registry; 0 = empty slot
	ValidFrom Date
	ValidTo   Date  // last valid day, inclusive
	Limit     uint8 // rides per calendar month; 0 = no limit
	Funding   Funding
}

// Empty reports whether the slot is unused.
func (e Entitlement) Empty() bool { return e == Entitlement{} }

// ValidOn reports whether the entitlement covers day d.
func (e Entitlement) ValidOn(d Date) bool { return !e.Empty() && e.ValidFrom <= d && d <= e.ValidTo }

// AllCarriers in Pass.Carriers means the whole network.
const AllCarriers uint16 = 0xFFFF

// Pass is a period pass. A zero Pass is an empty slot.
type Pass struct {
	Product   uint16 // tariff product code; 0 = empty slot
	ValidFrom Date
	ValidTo   Date // inclusive
	// Carriers is a bit set of the tariff's carrier groups (0..15) the
	// pass is good on; AllCarriers for the whole network. Groups, not
	// carriers: a city has up to 50 carriers, and the tariff maps each to
	// a group.
	Carriers uint16
}

// Empty reports whether the slot is unused.
func (p Pass) Empty() bool { return p == Pass{} }

// ValidOn reports whether the pass covers day d on a carrier of the given
// tariff carrier group (0..15).
func (p Pass) ValidOn(d Date, group int) bool {
	return !p.Empty() && p.ValidFrom <= d && d <= p.ValidTo &&
		group >= 0 && group < 16 && p.Carriers&(1<<group) != 0
}

// Contract is the transport application's contract file: everything a
// validator needs to decide a tap, in one file so that one ReadData
// fetches it.
//
//	0      layout version
//	1      key version (generation of the role keys on this card)
//	2      status
//	3..9   card number (56-bit, big-endian)
//	10..11 contract expiry (Date)
//	12..27 entitlements: 2 x {category u16, from, to, limit u8, funding u8}
//	28..43 passes: 2 x {product u16, from, to, carriers u16}
type Contract struct {
	KeyVersion   uint8
	Status       Status
	Number       Number
	Expires      Date
	Entitlements [MaxEntitlements]Entitlement
	Passes       [MaxPasses]Pass
}

// Validate reports the first field that cannot be right.
func (c *Contract) Validate() error {
	const file = "contract"
	if c.Status != StatusActive && c.Status != StatusBlocked {
		return fieldErr(file, "status", ErrValue, "%d, want 1 (active) or 2 (blocked)", uint8(c.Status))
	}
	if !c.Number.Valid() {
		return fieldErr(file, "number", ErrCheckDigit, "%s", c.Number)
	}
	for i, e := range c.Entitlements {
		if e.Empty() {
			continue
		}
		f := func(field string) string { return fmt.Sprintf("entitlements[%d].%s", i, field) }
		switch {
		case e.Category == 0:
			return fieldErr(file, f("category"), ErrValue, "0 in a used slot")
		case e.ValidTo < e.ValidFrom:
			return fieldErr(file, f("validTo"), ErrDate, "%s before valid from %s", e.ValidTo, e.ValidFrom)
		case e.Funding != FundingCity && e.Funding != FundingState:
			return fieldErr(file, f("funding"), ErrValue, "%d, want 1 (city) or 2 (state)", uint8(e.Funding))
		}
	}
	for i, p := range c.Passes {
		if p.Empty() {
			continue
		}
		f := func(field string) string { return fmt.Sprintf("passes[%d].%s", i, field) }
		switch {
		case p.Product == 0:
			return fieldErr(file, f("product"), ErrValue, "0 in a used slot")
		case p.ValidTo < p.ValidFrom:
			return fieldErr(file, f("validTo"), ErrDate, "%s before valid from %s", p.ValidTo, p.ValidFrom)
		case p.Carriers == 0:
			return fieldErr(file, f("carriers"), ErrValue, "no carrier")
		}
	}
	return nil
}

// MarshalBinary encodes the contract file content.
func (c *Contract) MarshalBinary() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, ContractSize)
	b[0] = ContractVersion
	b[1] = c.KeyVersion
	b[2] = byte(c.Status)
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(c.Number))
	copy(b[3:10], n[1:])
	binary.BigEndian.PutUint16(b[10:], uint16(c.Expires))
	for i, e := range c.Entitlements {
		appendEntitlement(b[EntitlementOffset+i*EntitlementSize:][:0], e)
	}
	for i, p := range c.Passes {
		appendPass(b[PassOffset+i*PassSize:][:0], p)
	}
	return b, nil
}

// MarshalPasses encodes just the pass slots, for the top-up terminal's
// WriteData at PassOffset.
func (c *Contract) MarshalPasses() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, 0, MaxPasses*PassSize)
	for _, p := range c.Passes {
		b = appendPass(b, p)
	}
	return b, nil
}

func appendEntitlement(b []byte, e Entitlement) []byte {
	b = binary.BigEndian.AppendUint16(b, e.Category)
	b = binary.BigEndian.AppendUint16(b, uint16(e.ValidFrom))
	b = binary.BigEndian.AppendUint16(b, uint16(e.ValidTo))
	return append(b, e.Limit, byte(e.Funding))
}

func appendPass(b []byte, p Pass) []byte {
	b = binary.BigEndian.AppendUint16(b, p.Product)
	b = binary.BigEndian.AppendUint16(b, uint16(p.ValidFrom))
	b = binary.BigEndian.AppendUint16(b, uint16(p.ValidTo))
	return binary.BigEndian.AppendUint16(b, p.Carriers)
}

// UnmarshalBinary decodes and validates the contract file content.
func (c *Contract) UnmarshalBinary(b []byte) error {
	if len(b) != ContractSize {
		return lengthErr("contract", len(b), ContractSize)
	}
	if b[0] != ContractVersion {
		return versionErr("contract", b[0], ContractVersion)
	}
	var n [8]byte
	copy(n[1:], b[3:10])
	v := Contract{
		KeyVersion: b[1],
		Status:     Status(b[2]),
		Number:     Number(binary.BigEndian.Uint64(n[:])),
		Expires:    Date(binary.BigEndian.Uint16(b[10:])),
	}
	for i := range v.Entitlements {
		e := b[EntitlementOffset+i*EntitlementSize:]
		v.Entitlements[i] = Entitlement{
			Category:  binary.BigEndian.Uint16(e),
			ValidFrom: Date(binary.BigEndian.Uint16(e[2:])),
			ValidTo:   Date(binary.BigEndian.Uint16(e[4:])),
			Limit:     e[6],
			Funding:   Funding(e[7]),
		}
	}
	for i := range v.Passes {
		p := b[PassOffset+i*PassSize:]
		v.Passes[i] = Pass{
			Product:   binary.BigEndian.Uint16(p),
			ValidFrom: Date(binary.BigEndian.Uint16(p[2:])),
			ValidTo:   Date(binary.BigEndian.Uint16(p[4:])),
			Carriers:  binary.BigEndian.Uint16(p[6:]),
		}
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*c = v
	return nil
}
