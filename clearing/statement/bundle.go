package statement

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/citycard/transit/clearing/store"
)

// A bundle is what a carrier or an auditor needs to check a period's
// statements offline, with no secret and no database: each statement's
// canonical form and signature, and the public key of the city's
// statement key, in one text file of PEM blocks:
//
//	(a few lines for people: what this is, how to check it)
//	-----BEGIN CITYCARD STATEMENT-----          the canonical form, base64
//	-----BEGIN CITYCARD STATEMENT SIGNATURE-----  the Ed25519 signature
//	... one pair per statement: the period's own, then its adjustments
//	-----BEGIN PUBLIC KEY-----                  as 'transit hsm export-public' writes it
//
// The key in the bundle only says which key signed: ReadBundle's result
// is verified against a key the reader trusts (the one the city
// publishes), never against the bundle's own.
const (
	pemStatement = "CITYCARD STATEMENT"
	pemSignature = "CITYCARD STATEMENT SIGNATURE"
	pemPublicKey = "PUBLIC KEY"
)

// Limits of ReadBundle.
const (
	MaxBundle           = 64 << 20
	MaxBundleStatements = 120 // ten years of monthly adjustments
)

// ErrBundle is wrapped by every ReadBundle error.
var ErrBundle = errors.New("not a statement bundle")

// Bundle is a period's closed statements as they travel.
type Bundle struct {
	// Canonical and Signatures are each statement's canonical form and
	// signature, in order.
	Canonical  [][]byte
	Signatures [][]byte
	// PublicKey is the key that the bundle says signed them.
	PublicKey ed25519.PublicKey
}

// NewBundle makes the bundle of closed statements sts, signed with pub
// (the city's statement key, public half). It checks each one with pub
// first: a bundle that would not verify is never written.
func NewBundle(sts []store.Statement, pub ed25519.PublicKey) (Bundle, error) {
	if len(sts) == 0 {
		return Bundle{}, errors.New("bundle: no statements")
	}
	b := Bundle{PublicKey: pub}
	for i := range sts {
		if err := VerifyWith(&sts[i], pub); err != nil {
			return Bundle{}, fmt.Errorf("bundle: %w", err)
		}
		b.Canonical = append(b.Canonical, Canonical(&sts[i]))
		b.Signatures = append(b.Signatures, sts[i].Signature)
	}
	return b, nil
}

// WriteTo writes b as text. loc is the zone the lines for people give
// times in.
func (b Bundle) Write(w io.Writer, loc *time.Location) error {
	var buf bytes.Buffer
	buf.WriteString("Signed compensation statements of the city card platform.\n")
	buf.WriteString("Check them with the city's published statement key (no secret needed):\n")
	buf.WriteString("  transit statement verify --bundle THIS-FILE --public-key CITY-KEY.pem\n")
	fmt.Fprintf(&buf, "Signing key: %s\n\n", GroupFingerprint(Fingerprint(b.PublicKey)))
	for i, c := range b.Canonical {
		st, err := Parse(c)
		if err != nil {
			return fmt.Errorf("bundle: statement %d: %w", i+1, err)
		}
		sum := sha256.Sum256(c)
		name := "Statement " + st.Period
		if st.Adjusts != "" {
			name += ", adjusting " + st.Adjusts
		}
		t := st.Total()
		fmt.Fprintf(&buf, "%s: closed %s by %s; %d benefit rides, compensation %s UAH\nContent hash (SHA-256): %x\n",
			name, st.ClosedAt.In(loc).Format("02.01.2006 15:04 MST"), st.ClosedBy, t.Rides, uah(t.CompensationKop), sum)
		if err := pem.Encode(&buf, &pem.Block{Type: pemStatement, Headers: map[string]string{"Period": st.Period, "Adjusts": st.Adjusts}, Bytes: c}); err != nil {
			return err
		}
		if err := pem.Encode(&buf, &pem.Block{Type: pemSignature, Headers: map[string]string{"Key": st.KeyRef, "Key-Fingerprint": st.KeyFingerprint}, Bytes: b.Signatures[i]}); err != nil {
			return err
		}
		buf.WriteString("\n")
	}
	key, err := EncodePublicKey(b.PublicKey)
	if err != nil {
		return err
	}
	buf.Write(key)
	_, err = w.Write(buf.Bytes())
	return err
}

// ReadBundle reads a bundle written by Bundle.Write. It checks the form,
// not the signatures: Verify does.
func ReadBundle(data []byte) (Bundle, error) {
	if len(data) > MaxBundle {
		return Bundle{}, fmt.Errorf("%w: larger than %d bytes", ErrBundle, MaxBundle)
	}
	var b Bundle
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		switch blk.Type {
		case pemStatement:
			if len(b.Canonical) != len(b.Signatures) {
				return Bundle{}, fmt.Errorf("%w: statement %d has no signature block after it", ErrBundle, len(b.Canonical))
			}
			if len(b.Canonical) == MaxBundleStatements {
				return Bundle{}, fmt.Errorf("%w: more than %d statements", ErrBundle, MaxBundleStatements)
			}
			b.Canonical = append(b.Canonical, blk.Bytes)
		case pemSignature:
			if len(b.Signatures) != len(b.Canonical)-1 {
				return Bundle{}, fmt.Errorf("%w: a signature block without its statement before it", ErrBundle)
			}
			if len(blk.Bytes) != ed25519.SignatureSize {
				return Bundle{}, fmt.Errorf("%w: signature %d is %d bytes, not an Ed25519 signature", ErrBundle, len(b.Signatures)+1, len(blk.Bytes))
			}
			b.Signatures = append(b.Signatures, blk.Bytes)
		case pemPublicKey:
			if b.PublicKey != nil {
				return Bundle{}, fmt.Errorf("%w: two public keys", ErrBundle)
			}
			pub, err := ParsePublicKey(pem.EncodeToMemory(blk))
			if err != nil {
				return Bundle{}, fmt.Errorf("%w: %w", ErrBundle, err)
			}
			b.PublicKey = pub
		default:
			return Bundle{}, fmt.Errorf("%w: unexpected PEM block %q", ErrBundle, blk.Type)
		}
	}
	switch {
	case len(b.Canonical) == 0:
		return Bundle{}, fmt.Errorf("%w: no %s block", ErrBundle, pemStatement)
	case len(b.Signatures) != len(b.Canonical):
		return Bundle{}, fmt.Errorf("%w: the last statement has no signature", ErrBundle)
	}
	return b, nil
}

// Verify checks every statement of b with trusted, the key the reader
// trusts, and returns them. A bundle whose own key is not trusted fails
// with ErrOtherKey, naming both fingerprints.
func (b Bundle) Verify(trusted ed25519.PublicKey) ([]store.Statement, error) {
	if b.PublicKey != nil && !b.PublicKey.Equal(trusted) {
		return nil, fmt.Errorf("%w: the bundle's statements name key %s, the key given is %s; ask the city which key is its statement key",
			ErrOtherKey, Fingerprint(b.PublicKey), Fingerprint(trusted))
	}
	out := make([]store.Statement, 0, len(b.Canonical))
	for i, c := range b.Canonical {
		st, err := Parse(c)
		if err != nil {
			return nil, fmt.Errorf("statement %d of the bundle: %w", i+1, err)
		}
		st.Hash, st.Signature = Hash(&st), b.Signatures[i]
		if err := VerifyWith(&st, trusted); err != nil {
			return nil, err
		}
		if i == 0 && st.Adjusts != "" || i > 0 && (st.Period != out[0].Period || st.Adjusts == "") {
			return nil, fmt.Errorf("%w: statement %d is not of period %s's own statement and its adjustments", ErrBundle, i+1, out[0].Period)
		}
		out = append(out, st)
	}
	return out, nil
}

// uah formats kopiyky as hryvnias with two decimals.
func uah(kop int64) string {
	sign, u := "", uint64(kop)
	if kop < 0 {
		sign, u = "-", uint64(-kop)
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}
