package hsm

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/citycard/transit/hsm/cmac"
)

// keystoreFormat names the file layout; a file of another format is refused.
const keystoreFormat = "transit-keystore/1"

// KDFParams are the Argon2id parameters that turn a passphrase into the
// keystore's AES-256-GCM key. They are stored in the file.
type KDFParams struct {
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
}

// DefaultKDF follows RFC 9106's second recommended option (64 MiB, 3 passes).
var DefaultKDF = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 2}

// Bounds that stop a crafted file from demanding absurd work or memory.
const (
	maxKDFTime   = 64
	maxKDFMemory = 4 * 1024 * 1024 // 4 GiB in KiB
)

// envelope is the file on disk: everything but the header is sealed.
type envelope struct {
	Format     string    `json:"format"`
	KDF        string    `json:"kdf"`
	Params     KDFParams `json:"params"`
	Salt       []byte    `json:"salt"`
	Nonce      []byte    `json:"nonce"`
	Ciphertext []byte    `json:"ciphertext"`
}

// aad binds the header to the ciphertext so a changed parameter fails to open.
func (e *envelope) aad() []byte {
	return fmt.Appendf(nil, "%s|%s|%d|%d|%d|%x", e.Format, e.KDF, e.Params.Time, e.Params.MemoryKiB, e.Params.Threads, e.Salt)
}

type storedKey struct {
	Label    string `json:"label"`
	Version  int    `json:"version"`
	Kind     Kind   `json:"kind"`
	Material []byte `json:"material"`
}

type sealedKeys struct {
	Keys []storedKey `json:"keys"`
}

// Keystore is the software backend: keys in memory, persisted in one file
// sealed with AES-256-GCM under an Argon2id key derived from a passphrase.
// Every change is written atomically before the call returns.
type Keystore struct {
	path   string
	params KDFParams
	salt   []byte
	aead   cipher.AEAD

	mu   sync.RWMutex
	keys map[Ref]storedKey
}

// CreateKeystore makes a new, empty keystore file at path. It refuses to
// overwrite an existing file.
func CreateKeystore(path string, passphrase []byte, params KDFParams) (*Keystore, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("keystore: empty passphrase; set TRANSIT_KEYSTORE_PASSPHRASE or type one at the prompt")
	}
	if err := params.check(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("keystore %s already exists; choose another path or remove it", path)
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	ks := &Keystore{path: path, params: params, salt: salt, keys: map[Ref]storedKey{}}
	var err error
	if ks.aead, err = deriveAEAD(passphrase, salt, params); err != nil {
		return nil, err
	}
	if err := ks.save(); err != nil {
		return nil, err
	}
	return ks, nil
}

// OpenKeystore decrypts the keystore at path. A wrong passphrase or a
// modified file gives an error matching ErrBadPassphrase. A keystore file
// that others may read (copied with a wide umask) is made 0600 first, or
// refused when it cannot be.
func OpenKeystore(path string, passphrase []byte) (*Keystore, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keystore %s does not exist; create it with 'transit hsm init --keystore %s'", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read keystore: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("keystore %s is readable by others (%v) and cannot be made 0600: %w; chmod 600 it", path, fi.Mode().Perm(), err)
		}
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("keystore %s is not a keystore file: %w", path, err)
	}
	if env.Format != keystoreFormat || env.KDF != "argon2id" {
		return nil, fmt.Errorf("keystore %s: unknown format %q/%q, want %q/argon2id", path, env.Format, env.KDF, keystoreFormat)
	}
	if err := env.Params.check(); err != nil {
		return nil, fmt.Errorf("keystore %s: %w", path, err)
	}
	if len(env.Salt) < 16 {
		return nil, fmt.Errorf("keystore %s: salt is %d bytes, want at least 16", path, len(env.Salt))
	}
	aead, err := deriveAEAD(passphrase, env.Salt, env.Params)
	if err != nil {
		return nil, err
	}
	if len(env.Nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("keystore %s: %w (nonce is %d bytes)", path, ErrBadPassphrase, len(env.Nonce))
	}
	plain, err := aead.Open(nil, env.Nonce, env.Ciphertext, env.aad())
	if err != nil {
		return nil, fmt.Errorf("keystore %s: %w; check TRANSIT_KEYSTORE_PASSPHRASE", path, ErrBadPassphrase)
	}
	defer clear(plain)
	var sk sealedKeys
	if err := json.Unmarshal(plain, &sk); err != nil {
		return nil, fmt.Errorf("keystore %s: sealed content is malformed: %w", path, err)
	}
	ks := &Keystore{path: path, params: env.Params, salt: env.Salt, aead: aead, keys: map[Ref]storedKey{}}
	for _, k := range sk.Keys {
		ref := Ref{k.Label, k.Version}
		if err := validMaterial(ref, k.Kind, k.Material); err != nil {
			return nil, fmt.Errorf("keystore %s: %w", path, err)
		}
		ks.keys[ref] = k
	}
	return ks, nil
}

func (p KDFParams) check() error {
	if p.Time < 1 || p.Time > maxKDFTime || p.MemoryKiB < 8 || p.MemoryKiB > maxKDFMemory || p.Threads < 1 {
		return fmt.Errorf("argon2id parameters %+v out of range", p)
	}
	return nil
}

func deriveAEAD(passphrase, salt []byte, p KDFParams) (cipher.AEAD, error) {
	key := argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, 32)
	defer clear(key)
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("keystore cipher: %w", err)
	}
	return cipher.NewGCM(b)
}

// Path returns the keystore file's path.
func (ks *Keystore) Path() string { return ks.path }

// save seals every key and replaces the file atomically: write a temp file
// in the same directory, fsync it, rename over the old one, fsync the
// directory. Caller holds the write lock (or owns ks exclusively).
func (ks *Keystore) save() error {
	sk := sealedKeys{Keys: ks.sorted()}
	plain, err := json.Marshal(sk)
	if err != nil {
		return fmt.Errorf("encode keystore: %w", err)
	}
	defer clear(plain)
	env := envelope{Format: keystoreFormat, KDF: "argon2id", Params: ks.params, Salt: ks.salt,
		Nonce: make([]byte, ks.aead.NonceSize())}
	rand.Read(env.Nonce)
	env.Ciphertext = ks.aead.Seal(nil, env.Nonce, plain, env.aad())
	out, err := json.MarshalIndent(env, "", "  ")
	if err != nil {
		return fmt.Errorf("encode keystore: %w", err)
	}
	return writeAtomic(ks.path, out)
}

func writeAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write keystore in %s: %w", dir, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("write keystore %s: %w", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write keystore %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync keystore %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close keystore %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace keystore %s: %w", path, err)
	}
	ok = true
	// The rename is durable only once the directory entry is on disk.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync keystore directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync keystore directory %s: %w", dir, err)
	}
	return nil
}

func (ks *Keystore) sorted() []storedKey {
	out := make([]storedKey, 0, len(ks.keys))
	for _, k := range ks.keys {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b storedKey) int {
		if c := strings.Compare(a.Label, b.Label); c != 0 {
			return c
		}
		return a.Version - b.Version
	})
	return out
}

func validMaterial(ref Ref, kind Kind, m []byte) error {
	if err := checkLabel(ref.Label); err != nil {
		return err
	}
	if ref.Version < 1 {
		return fmt.Errorf("key %s: version must be at least 1", ref)
	}
	want := 16
	switch {
	case kind.aes():
	case kind == KindSigning:
		want = ed25519.SeedSize
	case kind == KindVerify:
		want = ed25519.PublicKeySize
	default:
		return fmt.Errorf("key %s: unknown kind %q", ref, kind)
	}
	if len(m) != want {
		return fmt.Errorf("key %s (%s): material is %d bytes, want %d", ref, kind, len(m), want)
	}
	return nil
}

// get finds ref (version 0 = newest) and checks that it is one of kinds.
func (ks *Keystore) get(ref Ref, op string, kinds ...Kind) (storedKey, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	if ref.Version == 0 {
		for r := range ks.keys {
			if r.Label == ref.Label && r.Version > ref.Version {
				ref.Version = r.Version
			}
		}
	}
	k, ok := ks.keys[ref]
	if !ok {
		return k, fmt.Errorf("%s: key %s: %w; see 'transit hsm list'", op, ref, ErrNotFound)
	}
	if !slices.Contains(kinds, k.Kind) {
		return k, fmt.Errorf("%s: key %s is %s, want %v: %w", op, ref, k.Kind, kinds, ErrWrongKind)
	}
	return k, nil
}

// Diversify implements KeyManager with full AN10922 padding.
func (ks *Keystore) Diversify(_ context.Context, ref Ref, input []byte) ([16]byte, error) {
	k, err := ks.get(ref, "diversify", KindCardMaster, KindBatchMaster, KindTMACMaster)
	if err != nil {
		return [16]byte{}, err
	}
	b, err := aes.NewCipher(k.Material)
	if err != nil {
		return [16]byte{}, fmt.Errorf("diversify with %s: %w", ref, err)
	}
	out, err := an10922(b, cmac.NewWithCipher(b), input)
	if err != nil {
		return out, fmt.Errorf("diversify with %s: %w", ref, err)
	}
	return out, nil
}

// MAC implements KeyManager.
func (ks *Keystore) MAC(_ context.Context, ref Ref, msg []byte) ([16]byte, error) {
	k, err := ks.get(ref, "mac", KindMAC)
	if err != nil {
		return [16]byte{}, err
	}
	m, err := cmac.New(k.Material)
	if err != nil {
		return [16]byte{}, fmt.Errorf("mac with %s: %w", ref, err)
	}
	return m.Sum(msg), nil
}

// Signer implements KeyManager.
func (ks *Keystore) Signer(_ context.Context, ref Ref) (crypto.Signer, error) {
	k, err := ks.get(ref, "sign", KindSigning)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(k.Material), nil
}

// PublicKey implements KeyManager.
func (ks *Keystore) PublicKey(_ context.Context, ref Ref) (ed25519.PublicKey, error) {
	k, err := ks.get(ref, "public key", KindSigning, KindVerify)
	if err != nil {
		return nil, err
	}
	if k.Kind == KindVerify {
		return ed25519.PublicKey(slices.Clone(k.Material)), nil
	}
	return ed25519.NewKeyFromSeed(k.Material).Public().(ed25519.PublicKey), nil
}

// Keys implements KeyManager.
func (ks *Keystore) Keys(context.Context) ([]KeyInfo, error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	var out []KeyInfo
	for _, k := range ks.sorted() {
		out = append(out, KeyInfo{Ref: Ref{k.Label, k.Version}, Kind: k.Kind})
	}
	return out, nil
}

// Generate implements Admin: it creates the next version of label.
func (ks *Keystore) Generate(_ context.Context, label string, kind Kind) (Ref, error) {
	if err := checkLabel(label); err != nil {
		return Ref{}, err
	}
	var m []byte
	switch {
	case kind.aes():
		m = make([]byte, 16)
	case kind == KindSigning:
		m = make([]byte, ed25519.SeedSize)
	default:
		return Ref{}, fmt.Errorf("generate %s: cannot generate a key of kind %q", label, kind)
	}
	rand.Read(m)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ref := Ref{Label: label, Version: 1}
	for r, k := range ks.keys {
		if r.Label != label {
			continue
		}
		if k.Kind != kind {
			return Ref{}, fmt.Errorf("generate %s: label holds %s keys, not %s: %w", label, k.Kind, kind, ErrWrongKind)
		}
		ref.Version = max(ref.Version, r.Version+1)
	}
	return ref, ks.putLocked(ref, kind, m)
}

// Import implements Admin.
func (ks *Keystore) Import(_ context.Context, ref Ref, kind Kind, material []byte) error {
	if err := validMaterial(ref, kind, material); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if _, ok := ks.keys[ref]; ok {
		return fmt.Errorf("import %s: %w", ref, ErrExists)
	}
	return ks.putLocked(ref, kind, slices.Clone(material))
}

func (ks *Keystore) putLocked(ref Ref, kind Kind, m []byte) error {
	ks.keys[ref] = storedKey{Label: ref.Label, Version: ref.Version, Kind: kind, Material: m}
	if err := ks.save(); err != nil {
		delete(ks.keys, ref)
		return err
	}
	return nil
}

// Close forgets the keys held in memory.
func (ks *Keystore) Close() error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for _, k := range ks.keys {
		clear(k.Material)
	}
	ks.keys = nil
	return nil
}
