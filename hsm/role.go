package hsm

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
)

// Role is a kind of device or desk that holds a subset of the keys.
type Role string

// Roles, each with its own card-key master "card-<role>".
const (
	RoleIssuer    Role = "issuer"
	RoleValidator Role = "validator"
	RoleTopup     Role = "topup"
	RoleDesk      Role = "desk"
	RoleInspector Role = "inspector"
)

// Roles lists every role.
var Roles = []Role{RoleIssuer, RoleValidator, RoleTopup, RoleDesk, RoleInspector}

// Labels of the platform's keys (see the package comment).
const (
	LabelSignHotlist   = "sign-hotlist"
	LabelSignTariff    = "sign-tariff"
	LabelSignStatement = "sign-statement"
	// LabelSignAudit signs the registry's audit-log checkpoints
	// (registry/auditchain).
	LabelSignAudit   = "sign-audit"
	LabelBatchMaster = "batch-master"
	LabelBatchDevice = "batch-device"
	LabelTMACMaster  = "tmac-master"
)

// CardMasterLabel is the label of role's card-key master.
func CardMasterLabel(r Role) string { return "card-" + string(r) }

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	if slices.Contains(Roles, Role(s)) {
		return Role(s), nil
	}
	return "", fmt.Errorf("unknown role %q; use one of %v", s, Roles)
}

// roleCardMasters is which card-key masters a role's keystore holds. The
// issuer personalises cards, so it sets every role's key; every other role
// gets only its own.
func roleCardMasters(r Role) []Role {
	if r == RoleIssuer {
		return Roles
	}
	return []Role{r}
}

// ExportRole writes a new keystore at path holding only what role needs,
// every version of each key so that a change-over keeps working: the
// role's card-key master(s) (and, for the issuer, the Transaction MAC
// master); the hotlist and tariff verify keys as public
// keys only; and, for a validator, its own batch MAC key diversified from
// the batch master by device. Nothing else (no signing key, no other
// role's master, no batch master) is copied.
func ExportRole(ctx context.Context, src *Keystore, role Role, device, path string, passphrase []byte, params KDFParams) (*Keystore, error) {
	if _, err := ParseRole(string(role)); err != nil {
		return nil, err
	}
	if role == RoleValidator && device == "" {
		return nil, errors.New("export validator keystore: a device id is needed for its batch MAC key (--device)")
	}
	keys, err := src.Keys(ctx)
	if err != nil {
		return nil, err
	}
	type item struct {
		ref  Ref
		kind Kind
		m    []byte
	}
	var items []item
	for _, cr := range roleCardMasters(role) {
		label := CardMasterLabel(cr)
		n := 0
		for _, k := range keys {
			if k.Ref.Label != label {
				continue
			}
			sk, err := src.get(k.Ref, "export role", KindCardMaster)
			if err != nil {
				return nil, err
			}
			items = append(items, item{k.Ref, KindCardMaster, sk.Material})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("export %s keystore: no %s key; create it with 'transit hsm keygen %s'", role, label, label)
		}
	}
	// The Transaction MAC master proves rides to clearing; of the exported
	// roles only the issuer, which writes each card's key, holds it.
	if role == RoleIssuer {
		for _, k := range keys {
			if k.Ref.Label != LabelTMACMaster {
				continue
			}
			sk, err := src.get(k.Ref, "export role", KindTMACMaster)
			if err != nil {
				return nil, err
			}
			items = append(items, item{k.Ref, KindTMACMaster, sk.Material})
		}
	}
	for _, label := range []string{LabelSignHotlist, LabelSignTariff} {
		n := 0
		for _, k := range keys {
			if k.Ref.Label != label {
				continue
			}
			pub, err := src.PublicKey(ctx, k.Ref)
			if err != nil {
				return nil, err
			}
			items = append(items, item{k.Ref, KindVerify, []byte(pub)})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("export %s keystore: no %s key; create it with 'transit hsm keygen %s'", role, label, label)
		}
	}
	if role == RoleValidator {
		n := 0
		for _, k := range keys {
			if k.Ref.Label != LabelBatchMaster {
				continue
			}
			dk, err := DeviceKey(ctx, src, k.Ref, device)
			if err != nil {
				return nil, err
			}
			// The device key keeps the master's version, so clearing knows
			// which master to recompute it from.
			items = append(items, item{Ref{LabelBatchDevice, k.Ref.Version}, KindMAC, dk[:]})
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("export validator keystore: no %s key; create it with 'transit hsm keygen %s'", LabelBatchMaster, LabelBatchMaster)
		}
	}
	dst, err := CreateKeystore(path, passphrase, params)
	if err != nil {
		return nil, err
	}
	dst.mu.Lock()
	defer dst.mu.Unlock()
	for _, it := range items {
		if it.kind == KindVerify && len(it.m) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("export %s: public key %s is %d bytes", role, it.ref, len(it.m))
		}
		dst.keys[it.ref] = storedKey{Label: it.ref.Label, Version: it.ref.Version, Kind: it.kind, Material: slices.Clone(it.m)}
	}
	if err := dst.save(); err != nil {
		return nil, err
	}
	return dst, nil
}
