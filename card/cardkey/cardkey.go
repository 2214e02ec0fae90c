// Package cardkey derives a city card's AES-128 keys from the master keys
// held in the HSM. Each role has its own master ("card-<role>", see hsm);
// a card's key for that role in one application is the NXP AN10922
// diversification of the master with the card UID, the application's AID
// and SystemID, so a key taken from one card opens nothing on another.
//
// The key material never lives here longer than a call: Source asks the
// hsm.KeyManager for each key and returns it to the one terminal that
// needs it.
package cardkey

import (
	"context"
	"errors"
	"fmt"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/hsm"
)

// SystemID is the system identifier appended to UID || AID in every
// diversification input. It separates this city's card keys from any other
// system that diversifies from the same masters, and it makes the input
// 7 + 3 + 11 = 21 bytes, so 0x01 || input is 22 bytes: inside the 17..32
// byte range where a PKCS#11 token's plain CMAC equals AN10922 (INFRA.md),
// so the software keystore and an HSM derive the same keys. Changing it
// changes every card key: cards already issued would stop working.
const SystemID = "CITYCARD-UA"

// UIDSize is the length of a DESFire EV1 UID. Random 4-byte IDs are not
// accepted: diversification needs the real, fixed UID.
const UIDSize = 7

// MaxVersion is the highest key version a card can record: DESFire keeps
// a one-byte version per key slot.
const MaxVersion = 255

// ErrRole is returned for a card.Role without an HSM master.
var ErrRole = errors.New("no card-key master for role")

// Key is one diversified card key and the master version it came from.
type Key struct {
	Role card.Role
	AID  card.AID
	// Version is the HSM master's version, which is also the key version
	// byte written to the card with ChangeKey.
	Version uint8
	// Value is the AES-128 key.
	Value [16]byte
}

// Source derives card keys through an hsm.KeyManager. It holds no key
// material itself; the zero value is not usable, build one with New.
type Source struct {
	km hsm.KeyManager
}

// New returns a Source that diversifies with km's card-key masters.
func New(km hsm.KeyManager) *Source { return &Source{km: km} }

// HSMRole returns the HSM role whose master diversifies r's keys.
func HSMRole(r card.Role) (hsm.Role, error) {
	switch r {
	case card.RoleIssuer:
		return hsm.RoleIssuer, nil
	case card.RoleValidator:
		return hsm.RoleValidator, nil
	case card.RoleTopUp:
		return hsm.RoleTopup, nil
	case card.RoleDesk:
		return hsm.RoleDesk, nil
	case card.RoleInspector:
		return hsm.RoleInspector, nil
	}
	return "", fmt.Errorf("cardkey: %s: %w", r, ErrRole)
}

// CardRole is the inverse of HSMRole.
func CardRole(r hsm.Role) (card.Role, error) {
	switch r {
	case hsm.RoleIssuer:
		return card.RoleIssuer, nil
	case hsm.RoleValidator:
		return card.RoleValidator, nil
	case hsm.RoleTopup:
		return card.RoleTopUp, nil
	case hsm.RoleDesk:
		return card.RoleDesk, nil
	case hsm.RoleInspector:
		return card.RoleInspector, nil
	}
	return 0, fmt.Errorf("cardkey: hsm role %q: %w", r, ErrRole)
}

// Master returns the HSM name of role's master at version (0: newest),
// resolved to a concrete version.
func (s *Source) Master(ctx context.Context, role card.Role, version int) (hsm.Ref, error) {
	hr, err := HSMRole(role)
	if err != nil {
		return hsm.Ref{}, err
	}
	if version < 0 || version > MaxVersion {
		return hsm.Ref{}, fmt.Errorf("cardkey: %s key version %d: a card stores versions 1..%d", role, version, MaxVersion)
	}
	// Resolve even an explicit version: it checks the key exists and is a
	// card master before anything is sent to a card.
	info, err := hsm.Resolve(ctx, s.km, hsm.Ref{Label: hsm.CardMasterLabel(hr), Version: version})
	if err != nil {
		return hsm.Ref{}, fmt.Errorf("cardkey: %s master: %w", role, err)
	}
	if info.Kind != hsm.KindCardMaster {
		return hsm.Ref{}, fmt.Errorf("cardkey: %s master %s is a %s key: %w", role, info.Ref, info.Kind, hsm.ErrWrongKind)
	}
	if info.Ref.Version < 1 || info.Ref.Version > MaxVersion {
		return hsm.Ref{}, fmt.Errorf("cardkey: %s master %s: version outside the card's 1..%d", role, info.Ref, MaxVersion)
	}
	return info.Ref, nil
}

// Newest returns the newest version of role's master.
func (s *Source) Newest(ctx context.Context, role card.Role) (int, error) {
	ref, err := s.Master(ctx, role, 0)
	if err != nil {
		return 0, err
	}
	return ref.Version, nil
}

// Key returns role's key for application aid on the card uid, diversified
// from the master at version (0: the newest). aid 0 is the PICC level.
func (s *Source) Key(ctx context.Context, role card.Role, uid []byte, aid card.AID, version int) (Key, error) {
	if len(uid) != UIDSize {
		return Key{}, fmt.Errorf("cardkey: UID %X is %d bytes, want %d", uid, len(uid), UIDSize)
	}
	if aid > 0xFFFFFF {
		return Key{}, fmt.Errorf("cardkey: AID %06X has more than 24 bits", uint32(aid))
	}
	ref, err := s.Master(ctx, role, version)
	if err != nil {
		return Key{}, err
	}
	a := aid.Bytes()
	v, err := s.km.Diversify(ctx, ref, hsm.CardInput(uid, a[:], []byte(SystemID)))
	if err != nil {
		return Key{}, fmt.Errorf("cardkey: %s key for card %X application %s: %w", role, uid, aid, err)
	}
	return Key{Role: role, AID: aid, Version: uint8(ref.Version), Value: v}, nil
}

// TMACKey returns the Transaction MAC key (AppTransactionMACKey) of the
// transport application on the EV2/EV3 card uid: the AN10922
// diversification of the HSM's tmac-master at version (0: the newest)
// with the card's real UID, the transport AID and SystemID. Only the
// city's HSM and the issuer's keystore hold that master; clearing derives
// the same key to verify a ride's Transaction MAC.
func (s *Source) TMACKey(ctx context.Context, uid []byte, version int) (Key, error) {
	if len(uid) != UIDSize {
		return Key{}, fmt.Errorf("cardkey: UID %X is %d bytes, want %d", uid, len(uid), UIDSize)
	}
	if version < 0 || version > MaxVersion {
		return Key{}, fmt.Errorf("cardkey: Transaction MAC key version %d: a card stores versions 1..%d", version, MaxVersion)
	}
	info, err := hsm.Resolve(ctx, s.km, hsm.Ref{Label: hsm.LabelTMACMaster, Version: version})
	if err != nil {
		return Key{}, fmt.Errorf("cardkey: Transaction MAC master: %w", err)
	}
	if info.Kind != hsm.KindTMACMaster {
		return Key{}, fmt.Errorf("cardkey: Transaction MAC master %s is a %s key: %w", info.Ref, info.Kind, hsm.ErrWrongKind)
	}
	if info.Ref.Version < 1 || info.Ref.Version > MaxVersion {
		return Key{}, fmt.Errorf("cardkey: Transaction MAC master %s: version outside the card's 1..%d", info.Ref, MaxVersion)
	}
	a := card.AIDTransport.Bytes()
	v, err := s.km.Diversify(ctx, info.Ref, hsm.CardInput(uid, a[:], []byte(SystemID)))
	if err != nil {
		return Key{}, fmt.Errorf("cardkey: Transaction MAC key for card %X: %w", uid, err)
	}
	return Key{AID: card.AIDTransport, Version: uint8(info.Ref.Version), Value: v}, nil
}
