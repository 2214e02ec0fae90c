package card

import (
	"encoding/binary"
	"fmt"
)

// IdentityVersion is the identity layout this code writes and reads.
const IdentityVersion = 1

// IdentitySize is the size of the identity file.
const IdentitySize = 16

// Identity is the content of the identification application's file: who
// issued the card and until when it is valid. Anyone may read it.
//
//	0     version
//	1..8  card number (uint64, big-endian)
//	9..10 issuer code (uint16), equal to the number's first four digits
//	11..12 issue date, 13..14 expiry (Date)
//	15    reserved, zero
type Identity struct {
	Number  Number
	Issuer  uint16
	Issued  Date
	Expires Date
}

// Validate reports the first field that cannot be right.
func (id *Identity) Validate() error {
	const file = "identity"
	switch {
	case !id.Number.Valid():
		return fieldErr(file, "number", ErrCheckDigit, "%s", id.Number)
	case id.Issuer != id.Number.Issuer():
		return fieldErr(file, "issuer", ErrValue, "%04d, but the card number starts with %04d", id.Issuer, id.Number.Issuer())
	case id.Expires <= id.Issued:
		return fieldErr(file, "expires", ErrDate, "%s is not after issue date %s", id.Expires, id.Issued)
	}
	return nil
}

// MarshalBinary encodes the identity file content.
func (id *Identity) MarshalBinary() ([]byte, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	b := make([]byte, IdentitySize)
	b[0] = IdentityVersion
	binary.BigEndian.PutUint64(b[1:], uint64(id.Number))
	binary.BigEndian.PutUint16(b[9:], id.Issuer)
	binary.BigEndian.PutUint16(b[11:], uint16(id.Issued))
	binary.BigEndian.PutUint16(b[13:], uint16(id.Expires))
	return b, nil
}

// UnmarshalBinary decodes and validates the identity file content.
func (id *Identity) UnmarshalBinary(b []byte) error {
	const file = "identity"
	if len(b) != IdentitySize {
		return lengthErr(file, len(b), IdentitySize)
	}
	if b[0] != IdentityVersion {
		return versionErr(file, b[0], IdentityVersion)
	}
	if b[15] != 0 {
		return fieldErr(file, "reserved", ErrValue, "byte 15 is %#02x, want 0", b[15])
	}
	v := Identity{
		Number:  Number(binary.BigEndian.Uint64(b[1:])),
		Issuer:  binary.BigEndian.Uint16(b[9:]),
		Issued:  Date(binary.BigEndian.Uint16(b[11:])),
		Expires: Date(binary.BigEndian.Uint16(b[13:])),
	}
	if err := v.Validate(); err != nil {
		return err
	}
	*id = v
	return nil
}

// String is for logs; the identity holds no personal data.
func (id Identity) String() string {
	return fmt.Sprintf("card %s issuer %04d issued %s expires %s", id.Number, id.Issuer, id.Issued, id.Expires)
}
