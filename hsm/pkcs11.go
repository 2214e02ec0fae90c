//go:build cgo

package hsm

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/pkcs11"
)

// PKCS#11 3.0 constants that github.com/miekg/pkcs11 v1.1.2 lacks.
const (
	ckkECEdwards       = 0x40
	ckmECEdwardsKeyGen = 0x1055
	ckmEdDSA           = 0x1057
)

// ed25519Params is CKA_EC_PARAMS for Ed25519: the DER OID 1.3.101.112.
var ed25519Params = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}

// appPrefix starts CKA_ID of our objects, which records the Kind (CKA_APPLICATION is for data objects only).
const appPrefix = "transit:"

// PKCS11Config locates a token.
type PKCS11Config struct {
	Module string // path of the PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so
	Token  string // token label; the slot id is looked up from it
	PIN    string // user PIN
}

// PKCS11 is the PKCS#11 backend. Keys are token objects created
// non-extractable (CKA_SENSITIVE=true, CKA_EXTRACTABLE=false); a key's
// CKA_LABEL is its Ref string and its CKA_ID records its Kind ("transit:" + kind).
// One logged-in session is shared under a mutex.
type PKCS11 struct {
	ctx  *pkcs11.Ctx
	mu   sync.Mutex
	sess pkcs11.SessionHandle
	// cache maps an exact ref to its object; keys are never deleted
	// through this type, so an entry cannot go stale.
	cache map[Ref]p11Key
}

// OpenPKCS11 loads the module, finds the token by label and logs in.
func OpenPKCS11(cfg PKCS11Config) (*PKCS11, error) {
	if cfg.Module == "" || cfg.Token == "" {
		return nil, errors.New("pkcs11: module path and token label are both needed (--pkcs11-module, --token)")
	}
	c := pkcs11.New(cfg.Module)
	if c == nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s; check the path", cfg.Module)
	}
	if err := c.Initialize(); err != nil && !isRV(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		c.Destroy()
		return nil, fmt.Errorf("pkcs11: initialize %s: %w", cfg.Module, err)
	}
	p := &PKCS11{ctx: c, cache: map[Ref]p11Key{}}
	fail := func(err error) (*PKCS11, error) {
		c.Finalize()
		c.Destroy()
		return nil, err
	}
	slots, err := c.GetSlotList(true)
	if err != nil {
		return fail(fmt.Errorf("pkcs11: list slots: %w", err))
	}
	var labels []string
	slot, found := uint(0), false
	for _, s := range slots {
		ti, err := c.GetTokenInfo(s)
		if err != nil {
			continue
		}
		l := strings.TrimRight(ti.Label, " \x00")
		labels = append(labels, l)
		if l == cfg.Token {
			slot, found = s, true
			break
		}
	}
	if !found {
		return fail(fmt.Errorf("pkcs11: no token labelled %q in %s (tokens: %q)", cfg.Token, cfg.Module, labels))
	}
	if p.sess, err = c.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION); err != nil {
		return fail(fmt.Errorf("pkcs11: open session on %q: %w", cfg.Token, err))
	}
	if err := c.Login(p.sess, pkcs11.CKU_USER, cfg.PIN); err != nil && !isRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		c.CloseSession(p.sess)
		if isRV(err, pkcs11.CKR_PIN_INCORRECT) || isRV(err, pkcs11.CKR_PIN_LEN_RANGE) {
			return fail(fmt.Errorf("pkcs11: token %q: %w; check TRANSIT_HSM_PIN", cfg.Token, ErrBadPIN))
		}
		return fail(fmt.Errorf("pkcs11: log in to %q: %w", cfg.Token, err))
	}
	return p, nil
}

func isRV(err error, rv uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == rv
}

// Close logs out and unloads the module.
func (p *PKCS11) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ctx.Logout(p.sess)
	p.ctx.CloseSession(p.sess)
	p.ctx.Finalize()
	p.ctx.Destroy()
	return nil
}

type p11Key struct {
	info   KeyInfo
	handle pkcs11.ObjectHandle // private or secret key (public for KindVerify)
}

// find returns the objects matching tmpl. Caller holds p.mu.
func (p *PKCS11) find(tmpl []*pkcs11.Attribute) ([]pkcs11.ObjectHandle, error) {
	if err := p.ctx.FindObjectsInit(p.sess, tmpl); err != nil {
		return nil, fmt.Errorf("pkcs11: find objects: %w", err)
	}
	defer p.ctx.FindObjectsFinal(p.sess)
	var all []pkcs11.ObjectHandle
	for {
		hs, _, err := p.ctx.FindObjects(p.sess, 64)
		if err != nil {
			return nil, fmt.Errorf("pkcs11: find objects: %w", err)
		}
		if len(hs) == 0 {
			return all, nil
		}
		all = append(all, hs...)
	}
}

// keysLocked lists the transit keys: secret keys and private keys, plus
// public keys that have no private half (imported verify keys).
func (p *PKCS11) keysLocked() ([]p11Key, error) {
	var out []p11Key
	for _, class := range []uint{pkcs11.CKO_SECRET_KEY, pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY} {
		hs, err := p.find([]*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)})
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			attrs, err := p.ctx.GetAttributeValue(p.sess, h, []*pkcs11.Attribute{
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, nil),
				pkcs11.NewAttribute(pkcs11.CKA_ID, nil),
			})
			if err != nil {
				continue
			}
			app := string(attrs[1].Value)
			if !strings.HasPrefix(app, appPrefix) {
				continue // not one of ours
			}
			kind := Kind(strings.TrimPrefix(app, appPrefix))
			if class == pkcs11.CKO_PUBLIC_KEY && kind != KindVerify {
				continue // half of a signing pair, listed via its private key
			}
			ref, err := ParseRef(string(attrs[0].Value))
			if err != nil || ref.Version == 0 || !kind.valid() {
				continue
			}
			out = append(out, p11Key{KeyInfo{ref, kind}, h})
		}
	}
	slices.SortFunc(out, func(a, b p11Key) int {
		if c := strings.Compare(a.info.Ref.Label, b.info.Ref.Label); c != 0 {
			return c
		}
		return a.info.Ref.Version - b.info.Ref.Version
	})
	return out, nil
}

// Keys implements KeyManager.
func (p *PKCS11) Keys(context.Context) ([]KeyInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ks, err := p.keysLocked()
	if err != nil {
		return nil, err
	}
	out := make([]KeyInfo, len(ks))
	for i, k := range ks {
		out[i] = k.info
	}
	return out, nil
}

// getLocked finds ref (version 0 = newest) of one of kinds.
func (p *PKCS11) getLocked(ref Ref, op string, kinds ...Kind) (p11Key, error) {
	if k, ok := p.cache[ref]; ok {
		if !slices.Contains(kinds, k.info.Kind) {
			return k, fmt.Errorf("%s: key %s is %s, want %v: %w", op, k.info.Ref, k.info.Kind, kinds, ErrWrongKind)
		}
		return k, nil
	}
	ks, err := p.keysLocked()
	if err != nil {
		return p11Key{}, err
	}
	var best p11Key
	for _, k := range ks {
		if k.info.Ref.Label != ref.Label {
			continue
		}
		if k.info.Ref.Version == ref.Version || ref.Version == 0 && k.info.Ref.Version > best.info.Ref.Version {
			best = k
		}
	}
	if best.info.Ref.Version == 0 {
		return best, fmt.Errorf("%s: key %s: %w; see 'transit hsm list'", op, ref, ErrNotFound)
	}
	if ref.Version != 0 {
		p.cache[ref] = best
	}
	if !slices.Contains(kinds, best.info.Kind) {
		return best, fmt.Errorf("%s: key %s is %s, want %v: %w", op, best.info.Ref, best.info.Kind, kinds, ErrWrongKind)
	}
	return best, nil
}

func (p *PKCS11) cmacLocked(h pkcs11.ObjectHandle, msg []byte) ([16]byte, error) {
	var out [16]byte
	if err := p.ctx.SignInit(p.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_CMAC, nil)}, h); err != nil {
		return out, fmt.Errorf("pkcs11: CMAC init: %w", err)
	}
	tag, err := p.ctx.Sign(p.sess, msg)
	if err != nil {
		return out, fmt.Errorf("pkcs11: CMAC: %w", err)
	}
	if len(tag) != 16 {
		return out, fmt.Errorf("pkcs11: CMAC returned %d bytes, want 16", len(tag))
	}
	copy(out[:], tag)
	return out, nil
}

// Diversify implements KeyManager. The token computes plain CMAC, which
// equals AN10922 only when 0x01 || input is 17 to 32 bytes long; shorter
// inputs are refused rather than answered wrongly.
func (p *PKCS11) Diversify(_ context.Context, ref Ref, input []byte) ([16]byte, error) {
	if n := 1 + len(input); n < 17 || n > 32 {
		return [16]byte{}, fmt.Errorf("diversify with %s: input is %d bytes; the PKCS#11 backend needs 16 to %d "+
			"(token CMAC equals AN10922 only then; lengthen the system identifier)", ref, len(input), MaxDiversifyInput)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	k, err := p.getLocked(ref, "diversify", KindCardMaster, KindBatchMaster, KindTMACMaster)
	if err != nil {
		return [16]byte{}, err
	}
	msg := make([]byte, 0, 32)
	msg = append(append(msg, 0x01), input...)
	out, err := p.cmacLocked(k.handle, msg)
	if err != nil {
		return out, fmt.Errorf("diversify with %s: %w", k.info.Ref, err)
	}
	return out, nil
}

// MAC implements KeyManager.
func (p *PKCS11) MAC(_ context.Context, ref Ref, msg []byte) ([16]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, err := p.getLocked(ref, "mac", KindMAC)
	if err != nil {
		return [16]byte{}, err
	}
	out, err := p.cmacLocked(k.handle, msg)
	if err != nil {
		return out, fmt.Errorf("mac with %s: %w", k.info.Ref, err)
	}
	return out, nil
}

// publicLocked reads the Ed25519 public key of the pair labelled ref.
func (p *PKCS11) publicLocked(ref Ref) (ed25519.PublicKey, error) {
	hs, err := p.find([]*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, ref.String()),
	})
	if err != nil {
		return nil, err
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("public key %s: %w", ref, ErrNotFound)
	}
	attrs, err := p.ctx.GetAttributeValue(p.sess, hs[0], []*pkcs11.Attribute{pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil)})
	if err != nil {
		return nil, fmt.Errorf("public key %s: read CKA_EC_POINT: %w", ref, err)
	}
	pt := attrs[0].Value
	// CKA_EC_POINT is a DER OCTET STRING (04 20 || key) on SoftHSM; accept raw too.
	if len(pt) == 34 && pt[0] == 0x04 && pt[1] == 0x20 {
		pt = pt[2:]
	}
	if len(pt) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key %s: CKA_EC_POINT is %d bytes, not an Ed25519 point", ref, len(pt))
	}
	return ed25519.PublicKey(slices.Clone(pt)), nil
}

// PublicKey implements KeyManager.
func (p *PKCS11) PublicKey(_ context.Context, ref Ref) (ed25519.PublicKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, err := p.getLocked(ref, "public key", KindSigning, KindVerify)
	if err != nil {
		return nil, err
	}
	return p.publicLocked(k.info.Ref)
}

// Signer implements KeyManager; the private key stays on the token.
func (p *PKCS11) Signer(_ context.Context, ref Ref) (crypto.Signer, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k, err := p.getLocked(ref, "sign", KindSigning)
	if err != nil {
		return nil, err
	}
	pub, err := p.publicLocked(k.info.Ref)
	if err != nil {
		return nil, err
	}
	return &p11Signer{p: p, ref: k.info.Ref, handle: k.handle, pub: pub}, nil
}

type p11Signer struct {
	p      *PKCS11
	ref    Ref
	handle pkcs11.ObjectHandle
	pub    ed25519.PublicKey
}

func (s *p11Signer) Public() crypto.PublicKey { return s.pub }

// Sign signs msg with pure Ed25519 (opts.HashFunc() must be 0: the
// message itself, not a digest, as crypto/ed25519 expects).
func (s *p11Signer) Sign(_ io.Reader, msg []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != 0 {
		return nil, fmt.Errorf("sign with %s: only pure Ed25519 is supported, got hash %v", s.ref, opts.HashFunc())
	}
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	if err := s.p.ctx.SignInit(s.p.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmEdDSA, nil)}, s.handle); err != nil {
		return nil, fmt.Errorf("sign with %s: %w", s.ref, err)
	}
	sig, err := s.p.ctx.Sign(s.p.sess, msg)
	if err != nil {
		return nil, fmt.Errorf("sign with %s: %w", s.ref, err)
	}
	return sig, nil
}

// secretTemplate is the shared template of a non-extractable AES key.
func secretTemplate(ref Ref, kind Kind) []*pkcs11.Attribute {
	mac := kind.aes()
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, mac),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, mac),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, false),
		pkcs11.NewAttribute(pkcs11.CKA_WRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, false),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, ref.String()),
		pkcs11.NewAttribute(pkcs11.CKA_ID, appPrefix+string(kind)),
	}
}

func edPublicTemplate(ref Ref, kind Kind) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_VERIFY, true),
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, ed25519Params),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, ref.String()),
		pkcs11.NewAttribute(pkcs11.CKA_ID, appPrefix+string(kind)),
	}
}

func edPrivateTemplate(ref Ref) []*pkcs11.Attribute {
	return []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, ckkECEdwards),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_PRIVATE, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_SIGN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, ref.String()),
		pkcs11.NewAttribute(pkcs11.CKA_ID, appPrefix+string(KindSigning)),
	}
}

// nextLocked returns the next free version of label, checking the kind.
func (p *PKCS11) nextLocked(label string, kind Kind) (Ref, error) {
	if err := checkLabel(label); err != nil {
		return Ref{}, err
	}
	ks, err := p.keysLocked()
	if err != nil {
		return Ref{}, err
	}
	ref := Ref{Label: label, Version: 1}
	for _, k := range ks {
		if k.info.Ref.Label != label {
			continue
		}
		if k.info.Kind != kind {
			return Ref{}, fmt.Errorf("generate %s: label holds %s keys, not %s: %w", label, k.info.Kind, kind, ErrWrongKind)
		}
		ref.Version = max(ref.Version, k.info.Ref.Version+1)
	}
	return ref, nil
}

// Generate implements Admin; the key is generated on the token.
func (p *PKCS11) Generate(_ context.Context, label string, kind Kind) (Ref, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ref, err := p.nextLocked(label, kind)
	if err != nil {
		return Ref{}, err
	}
	switch {
	case kind.aes():
		tmpl := append(secretTemplate(ref, kind)[1:], pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 16))
		_, err = p.ctx.GenerateKey(p.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, tmpl)
	case kind == KindSigning:
		_, _, err = p.ctx.GenerateKeyPair(p.sess, []*pkcs11.Mechanism{pkcs11.NewMechanism(ckmECEdwardsKeyGen, nil)},
			edPublicTemplate(ref, KindSigning)[1:], edPrivateTemplate(ref)[1:])
	default:
		return Ref{}, fmt.Errorf("generate %s: cannot generate a key of kind %q", label, kind)
	}
	if err != nil {
		return Ref{}, fmt.Errorf("pkcs11: generate %s (%s): %w", ref, kind, err)
	}
	return ref, nil
}

// Import implements Admin with C_CreateObject; the created object is
// sensitive and non-extractable like a generated one.
func (p *PKCS11) Import(_ context.Context, ref Ref, kind Kind, material []byte) error {
	if err := validMaterial(ref, kind, material); err != nil {
		return fmt.Errorf("import: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, err := p.getLocked(ref, "import", kind); err == nil || !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("import %s: %w", ref, ErrExists)
	}
	var err error
	switch {
	case kind.aes():
		_, err = p.ctx.CreateObject(p.sess, append(secretTemplate(ref, kind), pkcs11.NewAttribute(pkcs11.CKA_VALUE, material)))
	case kind == KindVerify:
		_, err = p.ctx.CreateObject(p.sess, append(edPublicTemplate(ref, KindVerify),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, append([]byte{0x04, 0x20}, material...))))
	case kind == KindSigning:
		pub := ed25519.NewKeyFromSeed(material).Public().(ed25519.PublicKey)
		var h pkcs11.ObjectHandle
		h, err = p.ctx.CreateObject(p.sess, append(edPublicTemplate(ref, KindSigning),
			pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, append([]byte{0x04, 0x20}, pub...))))
		if err == nil {
			_, err = p.ctx.CreateObject(p.sess, append(edPrivateTemplate(ref),
				pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, ed25519Params),
				pkcs11.NewAttribute(pkcs11.CKA_VALUE, material)))
			if err != nil {
				p.ctx.DestroyObject(p.sess, h)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("pkcs11: import %s (%s): %w", ref, kind, err)
	}
	return nil
}
