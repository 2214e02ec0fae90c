package tariff

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/fare"
)

// The manifest, tariff.sig, is five lines of text:
//
//	transit-tariff-signature 1
//	version 7
//	key sign-tariff@2
//	sha256 <64 lowercase hex digits: Digest of the directory>
//	ed25519 <128 lowercase hex digits: signature of the four lines above>
//
// Text, so that a person can see which version and key a validator holds;
// one canonical spelling, so that a manifest has exactly one encoding.
const (
	manifestMagic = "transit-tariff-signature 1"
	digestDomain  = "transit-tariff-digest 1\n"
)

// Manifest is the content of tariff.sig.
type Manifest struct {
	// Version is the tariff version signed; it equals x_tariff.txt's.
	Version uint32
	// Key is the signing key, sign-tariff@N.
	Key hsm.Ref
	// Digest is Digest of the directory without tariff.sig.
	Digest    [32]byte
	Signature []byte
}

// signed is the text the signature covers.
func (m *Manifest) signed() []byte {
	return fmt.Appendf(nil, "%s\nversion %d\nkey %s\nsha256 %s\n", manifestMagic, m.Version, m.Key, hex.EncodeToString(m.Digest[:]))
}

// MarshalText returns the manifest as tariff.sig holds it.
func (m *Manifest) MarshalText() ([]byte, error) {
	if len(m.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("tariff manifest: signature of %d bytes, want %d", len(m.Signature), ed25519.SignatureSize)
	}
	return fmt.Appendf(m.signed(), "ed25519 %s\n", hex.EncodeToString(m.Signature)), nil
}

// ParseManifest decodes tariff.sig. It checks the form only; Verify checks
// the signature.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	bad := func(line int, field, format string, args ...any) error {
		return &Error{File: SignatureFile, Line: line, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	if len(b) > 1024 {
		return m, bad(0, "", "%d bytes: a manifest is under 1 KiB", len(b))
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) != 6 || lines[5] != "" {
		return m, bad(0, "", "want five lines, each ending in a newline")
	}
	if lines[0] != manifestMagic {
		return m, bad(1, "", "%q: want %q", lines[0], manifestMagic)
	}
	value := func(i int, name string) (string, error) {
		v, ok := strings.CutPrefix(lines[i], name+" ")
		if !ok {
			return "", bad(i+1, name, "line %q: want %q and its value", lines[i], name)
		}
		return v, nil
	}
	v, err := value(1, "version")
	if err != nil {
		return m, err
	}
	n, err := strconv.ParseUint(v, 10, 32)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != v {
		return m, bad(2, "version", "%q: want a version from 1 written plainly", v)
	}
	m.Version = uint32(n)
	if v, err = value(2, "key"); err != nil {
		return m, err
	}
	ref, err := hsm.ParseRef(v)
	if err != nil || ref.Label != hsm.LabelSignTariff || ref.Version < 1 || ref.String() != v {
		return m, bad(3, "key", "%q: want %s@N", v, hsm.LabelSignTariff)
	}
	m.Key = ref
	if v, err = value(3, "sha256"); err != nil {
		return m, err
	}
	d, err := hex.DecodeString(v)
	if err != nil || len(d) != len(m.Digest) || hex.EncodeToString(d) != v {
		return m, bad(4, "sha256", "%q: want 64 lowercase hex digits", v)
	}
	copy(m.Digest[:], d)
	if v, err = value(4, "ed25519"); err != nil {
		return m, err
	}
	sig, err := hex.DecodeString(v)
	if err != nil || len(sig) != ed25519.SignatureSize || hex.EncodeToString(sig) != v {
		return m, bad(5, "ed25519", "%q: want 128 lowercase hex digits", v)
	}
	m.Signature = sig
	return m, nil
}

// Digest returns the SHA-256 that a manifest signs: over a domain string
// and then, for every file of the directory but tariff.sig in name order,
// the name's length (4 bytes) and name, the content's length (8 bytes)
// and content. Lengths make the encoding unambiguous; every file counts,
// not only those Parse reads, so nothing can be slipped in beside them.
func Digest(fsys fs.FS) ([32]byte, error) {
	files, err := readDir(fsys)
	if err != nil {
		return [32]byte{}, err
	}
	return digest(files), nil
}

func digest(files []file) [32]byte {
	h := sha256.New()
	h.Write([]byte(digestDomain))
	var n [8]byte
	for _, f := range files {
		if f.name == SignatureFile {
			continue
		}
		binary.BigEndian.PutUint32(n[:4], uint32(len(f.name)))
		h.Write(n[:4])
		h.Write([]byte(f.name))
		binary.BigEndian.PutUint64(n[:], uint64(len(f.data)))
		h.Write(n[:])
		h.Write(f.data)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// Sign signs digest as tariff version with the Ed25519 signer of key
// (sign-tariff@N, from an hsm.KeyManager's Signer) and returns the content
// of tariff.sig. version must be the directory's x_tariff.txt version.
func Sign(digest [32]byte, version uint32, key hsm.Ref, s crypto.Signer) ([]byte, error) {
	if version == 0 {
		return nil, errors.New("sign tariff: version 0; versions start at 1")
	}
	if key.Label != hsm.LabelSignTariff || key.Version < 1 {
		return nil, fmt.Errorf("sign tariff: key %s: want %s@N", key, hsm.LabelSignTariff)
	}
	// A signer of another algorithm would make a manifest no validator
	// accepts (or, given crypto.Hash(0), panic).
	pub, ok := s.Public().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("sign tariff with %s: the signer is not an Ed25519 key but %T", key, s.Public())
	}
	m := Manifest{Version: version, Key: key, Digest: digest}
	msg := m.signed()
	sig, err := s.Sign(nil, msg, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("sign tariff with %s: %w", key, err)
	}
	// Checked before it leaves: a faulty token must not publish a tariff
	// every validator refuses.
	if !hsm.Verify(pub, msg, sig) {
		return nil, fmt.Errorf("sign tariff with %s: the signature does not verify with the signer's own public key", key)
	}
	m.Signature = sig
	return m.MarshalText()
}

// PublicKeys finds a verify key by name; hsm.KeyManager (a validator's
// keystore holds sign-tariff@N as a verify key) has this method.
type PublicKeys interface {
	PublicKey(ctx context.Context, ref hsm.Ref) (ed25519.PublicKey, error)
}

// Verify checks that manifest (tariff.sig's content) signs digest with the
// sign-tariff key it names, one that keys holds. Every failure but a
// keystore fault wraps ErrSignature or, for a malformed manifest,
// ErrInvalid.
func Verify(ctx context.Context, manifest []byte, digest [32]byte, keys PublicKeys) (Manifest, error) {
	m, err := ParseManifest(manifest)
	if err != nil {
		return Manifest{}, err
	}
	if m.Digest != digest {
		return Manifest{}, fmt.Errorf("%w: the files' digest %x is not the signed %x", ErrSignature, digest[:6], m.Digest[:6])
	}
	pub, err := keys.PublicKey(ctx, m.Key)
	if errors.Is(err, hsm.ErrNotFound) {
		return Manifest{}, fmt.Errorf("%w: no verify key %s on this device: %w", ErrSignature, m.Key, err)
	}
	if err != nil {
		return Manifest{}, fmt.Errorf("tariff: verify key %s: %w", m.Key, err)
	}
	if !hsm.Verify(pub, m.signed(), m.Signature) {
		return Manifest{}, fmt.Errorf("%w: bad signature by %s on version %d", ErrSignature, m.Key, m.Version)
	}
	return m, nil
}

// Open verifies and parses the signed tariff at the root of fsys. loaded
// is the version in use (0 for none): an older version is refused with
// ErrRollback, the same one is accepted (a restart reloads it). The
// files are read once, so what is parsed is what was verified.
func Open(ctx context.Context, fsys fs.FS, keys PublicKeys, loaded uint32) (*fare.Tariff, error) {
	files, err := readDir(fsys)
	if err != nil {
		return nil, err
	}
	return open(ctx, files, keys, loaded)
}

// LoadSigned is Open on the directory at path.
func LoadSigned(ctx context.Context, path string, keys PublicKeys, loaded uint32) (*fare.Tariff, error) {
	files, err := readPath(path)
	if err != nil {
		return nil, err
	}
	t, err := open(ctx, files, keys, loaded)
	if err != nil {
		return nil, fmt.Errorf("tariff %s: %w", path, err)
	}
	return t, nil
}

func open(ctx context.Context, files []file, keys PublicKeys, loaded uint32) (*fare.Tariff, error) {
	var sig []byte
	for _, f := range files {
		if f.name == SignatureFile {
			sig = f.data
		}
	}
	if sig == nil {
		return nil, fmt.Errorf("%w: no %s: the tariff is not signed", ErrSignature, SignatureFile)
	}
	m, err := Verify(ctx, sig, digest(files), keys)
	if err != nil {
		return nil, err
	}
	if m.Version < loaded {
		return nil, fmt.Errorf("%w: version %d, version %d is in use", ErrRollback, m.Version, loaded)
	}
	t, err := build(files)
	if err != nil {
		return nil, err
	}
	if t.Version != m.Version {
		return nil, &Error{File: FileTariff, Field: "version",
			Msg: fmt.Sprintf("%d, but %s signs version %d", t.Version, SignatureFile, m.Version)}
	}
	return t, nil
}
