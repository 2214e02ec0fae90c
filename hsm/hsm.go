// Package hsm keeps the platform's keys: it diversifies DESFire card keys
// (NXP AN10922, AES-128 CMAC) from master keys, signs hotlists, tariffs and
// statements (Ed25519) and MACs device batches, without the master keys
// leaving the backend.
//
// Two backends implement [KeyManager]: a passphrase-encrypted software
// keystore ([Keystore], for development and for a validator's role export)
// and a PKCS#11 token (built with cgo, see pkcs11.go).
//
// # Key names
//
// A key is named by a label and a version, written "label@version", e.g.
// "card-validator@2". Rotating a label creates version n+1 and keeps every
// older version usable, so cards personalised with version n still work.
// The PKCS#11 backend stores the same string in CKA_LABEL.
//
// Labels used by the platform:
//
//	card-issuer, card-validator, card-topup, card-desk, card-inspector
//	    AES-128 card-key masters, one per role (KindCardMaster)
//	sign-hotlist, sign-tariff, sign-statement, sign-audit
//	    Ed25519 signing keys (KindSigning); sign-audit signs the registry's
//	    audit-log checkpoints
//	tmac-master
//	    AES-128 master of the cards' Transaction MAC keys (KindTMACMaster):
//	    each EV2/EV3 card's AppTransactionMACKey is diversified from it by
//	    UID (AN10922). Clearing verifies Transaction MACs with it; the
//	    issuer's keystore holds it to write the key at personalisation; no
//	    validator, top-up or inspector keystore ever does (ExportRole)
//	batch-master
//	    AES-128 master from which each device's batch MAC key is diversified
//	    by device id (KindBatchMaster), so clearing needs no per-device table
//	batch-device
//	    a device's own batch MAC key, present only in a validator's role
//	    export (KindMAC)
package hsm

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind says what a key is for; it fixes its algorithm and what it may do.
type Kind string

// Key kinds.
const (
	// KindCardMaster is an AES-128 key that only diversifies card keys.
	KindCardMaster Kind = "card-master"
	// KindBatchMaster is an AES-128 key that only diversifies device batch keys.
	KindBatchMaster Kind = "batch-master"
	// KindTMACMaster is an AES-128 key that only diversifies the cards'
	// Transaction MAC keys.
	KindTMACMaster Kind = "tmac-master"
	// KindMAC is an AES-128 key that computes AES-CMAC over batches.
	KindMAC Kind = "mac"
	// KindSigning is an Ed25519 key pair.
	KindSigning Kind = "ed25519"
	// KindVerify is an Ed25519 public key alone (what a validator holds).
	KindVerify Kind = "ed25519-public"
)

func (k Kind) valid() bool {
	switch k {
	case KindCardMaster, KindBatchMaster, KindTMACMaster, KindMAC, KindSigning, KindVerify:
		return true
	}
	return false
}

func (k Kind) aes() bool {
	return k == KindCardMaster || k == KindBatchMaster || k == KindTMACMaster || k == KindMAC
}

// Errors a caller can test with errors.Is.
var (
	// ErrNotFound means no key has the requested label and version.
	ErrNotFound = errors.New("key not found")
	// ErrWrongKind means the key exists but cannot do the requested operation.
	ErrWrongKind = errors.New("key of the wrong type")
	// ErrBadPassphrase means the keystore could not be decrypted with the given passphrase.
	ErrBadPassphrase = errors.New("wrong passphrase or damaged keystore")
	// ErrBadPIN means the token refused the PIN.
	ErrBadPIN = errors.New("token refused the PIN")
	// ErrExists means a key with that label and version already exists.
	ErrExists = errors.New("key already exists")
)

// Ref names one version of a key.
type Ref struct {
	Label   string
	Version int
}

// String returns "label@version", or the bare label for version 0.
func (r Ref) String() string {
	if r.Version == 0 {
		return r.Label
	}
	return r.Label + "@" + strconv.Itoa(r.Version)
}

// ParseRef parses "label@version"; a bare "label" means version 0, which
// callers treat as "the newest version".
func ParseRef(s string) (Ref, error) {
	label, v, found := strings.Cut(s, "@")
	r := Ref{Label: label}
	if err := checkLabel(label); err != nil {
		return Ref{}, err
	}
	if found {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return Ref{}, fmt.Errorf("key name %q: version must be a positive number after '@'", s)
		}
		r.Version = n
	}
	return r, nil
}

func checkLabel(label string) error {
	if label == "" || len(label) > 64 {
		return fmt.Errorf("key label %q: must be 1 to 64 characters", label)
	}
	for _, c := range label {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("key label %q: use only a-z, 0-9, '-', '_' and '.'", label)
		}
	}
	return nil
}

// KeyInfo describes one stored key version.
type KeyInfo struct {
	Ref  Ref
	Kind Kind
}

// KeyManager is what every backend provides. Secret key material never
// crosses it; only diversified card keys and MAC tags come out.
type KeyManager interface {
	// Diversify derives a card key from the card-master, tmac-master or batch-master key
	// ref per NXP AN10922 (AES-128): CMAC over 0x01 || input.
	Diversify(ctx context.Context, ref Ref, input []byte) ([16]byte, error)
	// Signer returns a signer for the Ed25519 key ref.
	Signer(ctx context.Context, ref Ref) (crypto.Signer, error)
	// MAC returns the AES-CMAC of msg under the MAC key ref.
	MAC(ctx context.Context, ref Ref, msg []byte) ([16]byte, error)
	// PublicKey returns the Ed25519 public key of a signing or verify key.
	PublicKey(ctx context.Context, ref Ref) (ed25519.PublicKey, error)
	// Keys lists every stored key version, sorted by label then version.
	Keys(ctx context.Context) ([]KeyInfo, error)
}

// Admin is a KeyManager that can also create keys.
type Admin interface {
	KeyManager
	// Generate creates the next version of label (version 1 if new) and
	// returns its name. Older versions stay usable: this is rotation.
	Generate(ctx context.Context, label string, kind Kind) (Ref, error)
	// Import stores key material under ref: 16 bytes for AES kinds, a
	// 32-byte seed for KindSigning, a 32-byte public key for KindVerify.
	Import(ctx context.Context, ref Ref, kind Kind, material []byte) error
}

// Verify reports whether sig is a valid Ed25519 signature of msg by pub.
func Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && ed25519.Verify(pub, msg, sig)
}

// VerifyMAC reports whether tag is the AES-CMAC of msg under ref, comparing
// in constant time.
func VerifyMAC(ctx context.Context, km KeyManager, ref Ref, msg, tag []byte) (bool, error) {
	sum, err := km.MAC(ctx, ref, msg)
	if err != nil {
		return false, err
	}
	return len(tag) == len(sum) && subtle.ConstantTimeCompare(sum[:], tag) == 1, nil
}

// CardInput builds the AN10922 diversification input UID || AID || system
// identifier (without the leading 0x01, which Diversify adds).
func CardInput(uid, aid, systemID []byte) []byte {
	in := make([]byte, 0, len(uid)+len(aid)+len(systemID))
	return append(append(append(in, uid...), aid...), systemID...)
}

// DeviceInput builds the diversification input of a device's batch MAC key
// from its id. Hashing gives every id the same 16-byte length, which keeps
// 0x01 || input at 17 bytes, where a PKCS#11 token's plain CMAC equals
// AN10922.
func DeviceInput(device string) []byte {
	h := sha256.Sum256([]byte("transit batch key\x00" + device))
	return h[:16]
}

// DeviceKey diversifies the batch MAC key of device from the batch master
// key ref. Clearing calls it to recompute any device's key.
func DeviceKey(ctx context.Context, km KeyManager, master Ref, device string) ([16]byte, error) {
	if device == "" {
		return [16]byte{}, errors.New("device batch key: device id is empty")
	}
	k, err := km.Diversify(ctx, master, DeviceInput(device))
	if err != nil {
		return k, fmt.Errorf("device batch key for %q: %w", device, err)
	}
	return k, nil
}

// Newest returns the highest version of label among keys.
func Newest(keys []KeyInfo, label string) (KeyInfo, error) {
	var best KeyInfo
	for _, k := range keys {
		if k.Ref.Label == label && k.Ref.Version > best.Ref.Version {
			best = k
		}
	}
	if best.Ref.Version == 0 {
		return best, fmt.Errorf("key %q: %w", label, ErrNotFound)
	}
	return best, nil
}

// Resolve turns a ref with version 0 into the newest version of its label.
func Resolve(ctx context.Context, km KeyManager, ref Ref) (KeyInfo, error) {
	keys, err := km.Keys(ctx)
	if err != nil {
		return KeyInfo{}, err
	}
	if ref.Version == 0 {
		return Newest(keys, ref.Label)
	}
	for _, k := range keys {
		if k.Ref == ref {
			return k, nil
		}
	}
	return KeyInfo{}, fmt.Errorf("key %s: %w", ref, ErrNotFound)
}
