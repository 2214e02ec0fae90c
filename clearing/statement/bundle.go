package statement

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/clearing/store"
)

// A bundle is what a carrier or an auditor needs to check a period's
// statements offline, with no secret and no database: each statement's
// signed canonical form and signature, the parts of it the copy
// discloses, and the public key of the city's statement key, in one text
// file of PEM blocks:
//
//	(a few lines for people: what this is, how to check it)
//	-----BEGIN CITYCARD STATEMENT-----            the signed canonical form, base64
//	-----BEGIN CITYCARD STATEMENT SIGNATURE-----  the Ed25519 signature
//	-----BEGIN CITYCARD STATEMENT PART-----       forms 3 and 4: a carrier's part (none or more)
//	... the same for each statement: the period's own, then its adjustments
//	-----BEGIN PUBLIC KEY-----                    as 'transit hsm export-public' writes it
//
// A carrier's copy (NewCarrierBundle) holds that carrier's parts alone;
// the signed content names the other carriers' parts by salted digests,
// which tell nothing of their lines. The key in the bundle only says
// which key signed: ReadBundle's result is verified against a key the
// reader trusts (the one the city publishes), never against the bundle's
// own.
const (
	pemStatement = "CITYCARD STATEMENT"
	pemSignature = "CITYCARD STATEMENT SIGNATURE"
	pemPart      = "CITYCARD STATEMENT PART"
	pemPublicKey = "PUBLIC KEY"
)

// Limits of ReadBundle.
const (
	MaxBundle           = 64 << 20
	MaxBundleStatements = 120  // ten years of monthly adjustments
	MaxBundleParts      = 1000 // carriers with lines in one statement
)

// ErrBundle is wrapped by every ReadBundle error.
var ErrBundle = errors.New("not a statement bundle")

// ErrWholeOnly is wrapped when a carrier's copy is asked of a statement
// closed before form 3: its one signature covers every carrier's lines,
// so it can travel only whole.
var ErrWholeOnly = errors.New("closed before each carrier's lines were a part of their own")

// Signed is one statement as it travels.
type Signed struct {
	// Canonical is the statement's signed canonical form (form 3:
	// CanonicalV3), Signature its signature.
	Canonical []byte
	Signature []byte
	// Parts are the canonical forms of the carriers' parts (forms 3, 4) this
	// copy discloses, in carrier order.
	Parts [][]byte
}

// Bundle is a period's closed statements as they travel.
type Bundle struct {
	Statements []Signed
	// PublicKey is the key that the bundle says signed them.
	PublicKey ed25519.PublicKey
}

// NewBundle makes the whole bundle of closed statements sts, every
// carrier's part in it: the city's archive and an auditor's copy. It
// checks each statement with pub (the city's statement key, public half)
// first: a bundle that would not verify is never written.
func NewBundle(sts []store.Statement, pub ed25519.PublicKey) (Bundle, error) {
	return newBundle(sts, pub, func(*store.Statement, *Part) bool { return true })
}

// NewCarrierBundle makes carrier's copy of closed statements sts: the
// signed content of each, and carrier's part of it if it has one. A
// statement closed before form 3 fails with ErrWholeOnly.
func NewCarrierBundle(sts []store.Statement, pub ed25519.PublicKey, carrier string) (Bundle, error) {
	for i := range sts {
		if sts[i].Form < 3 {
			return Bundle{}, fmt.Errorf("bundle: statement %s%s was closed in form %d, %w: its signature covers every carrier's lines, so a copy that verifies shows them all",
				sts[i].Period, adjustsSuffix(sts[i].Adjusts), max(sts[i].Form, 1), ErrWholeOnly)
		}
	}
	return newBundle(sts, pub, func(_ *store.Statement, p *Part) bool { return p.Carrier == carrier })
}

func newBundle(sts []store.Statement, pub ed25519.PublicKey, disclose func(*store.Statement, *Part) bool) (Bundle, error) {
	if len(sts) == 0 {
		return Bundle{}, errors.New("bundle: no statements")
	}
	b := Bundle{PublicKey: pub}
	for i := range sts {
		st := &sts[i]
		if err := VerifyWith(st, pub); err != nil {
			return Bundle{}, fmt.Errorf("bundle: %w", err)
		}
		s := Signed{Canonical: Canonical(st), Signature: st.Signature}
		if st.Form >= 3 {
			parts := Parts(st)
			for j := range parts {
				if disclose(st, &parts[j]) {
					s.Parts = append(s.Parts, parts[j].Canonical())
				}
			}
		}
		b.Statements = append(b.Statements, s)
	}
	return b, nil
}

// Write writes b as text. loc is the zone the lines for people give
// times in.
func (b Bundle) Write(w io.Writer, loc *time.Location) error {
	var buf bytes.Buffer
	buf.WriteString("Signed compensation statements of the city card platform.\n")
	buf.WriteString("Check them with the city's published statement key (no secret needed):\n")
	buf.WriteString("  transit statement verify --bundle THIS-FILE --public-key CITY-KEY.pem\n")
	fmt.Fprintf(&buf, "Signing key: %s\n\n", GroupFingerprint(Fingerprint(b.PublicKey)))
	for i, s := range b.Statements {
		st, carriers, parts, err := readSigned(s)
		if err != nil {
			return fmt.Errorf("bundle: statement %d: %w", i+1, err)
		}
		name := "Statement " + st.Period
		if st.Adjusts != "" {
			name += ", adjusting " + st.Adjusts
		}
		sum := sha256.Sum256(s.Canonical)
		fmt.Fprintf(&buf, "%s: closed %s by %s\nContent hash (SHA-256): %x\n", name, st.ClosedAt.In(loc).Format("02.01.2006 15:04 MST"), st.ClosedBy, sum)
		if st.Form < 3 {
			t := st.Total()
			fmt.Fprintf(&buf, "Every carrier's lines (closed in form %d): %d benefit rides, compensation %s UAH\n", max(st.Form, 1), t.Rides, uah(t.CompensationKop))
		} else {
			fmt.Fprintf(&buf, "Carriers with a part: %s\n", listOr(carriers, "none"))
			for _, p := range parts {
				t := p.Total()
				fmt.Fprintf(&buf, "In this copy, %s's part: %d benefit rides, compensation %s UAH\n", p.Carrier, t.Rides, uah(t.CompensationKop))
				if h := p.HeldTotal(); h.Rides > 0 {
					fmt.Fprintf(&buf, "  held back, not paid: %d rides claiming %s UAH\n", h.Rides, uah(h.ClaimedKop))
				}
			}
		}
		headers := map[string]string{"Period": st.Period, "Adjusts": st.Adjusts, "Form": strconv.Itoa(max(st.Form, 1))}
		if err := pem.Encode(&buf, &pem.Block{Type: pemStatement, Headers: headers, Bytes: s.Canonical}); err != nil {
			return err
		}
		if err := pem.Encode(&buf, &pem.Block{Type: pemSignature, Headers: map[string]string{"Key": st.KeyRef, "Key-Fingerprint": st.KeyFingerprint}, Bytes: s.Signature}); err != nil {
			return err
		}
		for j, p := range s.Parts {
			if err := pem.Encode(&buf, &pem.Block{Type: pemPart, Headers: map[string]string{"Carrier": parts[j].Carrier}, Bytes: p}); err != nil {
				return err
			}
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

func listOr(xs []string, none string) string {
	if len(xs) == 0 {
		return none
	}
	return strings.Join(xs, ", ")
}

// ReadBundle reads a bundle written by Bundle.Write. It checks the form,
// not the signatures: Verify does.
func ReadBundle(data []byte) (Bundle, error) {
	if len(data) > MaxBundle {
		return Bundle{}, fmt.Errorf("%w: larger than %d bytes", ErrBundle, MaxBundle)
	}
	var b Bundle
	signed := func() bool { n := len(b.Statements); return n > 0 && b.Statements[n-1].Signature != nil }
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		n := len(b.Statements)
		switch blk.Type {
		case pemStatement:
			if n > 0 && !signed() {
				return Bundle{}, fmt.Errorf("%w: statement %d has no signature block after it", ErrBundle, n)
			}
			if n == MaxBundleStatements {
				return Bundle{}, fmt.Errorf("%w: more than %d statements", ErrBundle, MaxBundleStatements)
			}
			b.Statements = append(b.Statements, Signed{Canonical: blk.Bytes})
		case pemSignature:
			if n == 0 || signed() {
				return Bundle{}, fmt.Errorf("%w: a signature block without its statement before it", ErrBundle)
			}
			if len(blk.Bytes) != ed25519.SignatureSize {
				return Bundle{}, fmt.Errorf("%w: signature %d is %d bytes, not an Ed25519 signature", ErrBundle, n, len(blk.Bytes))
			}
			b.Statements[n-1].Signature = blk.Bytes
		case pemPart:
			if !signed() {
				return Bundle{}, fmt.Errorf("%w: a part block before its statement's signature", ErrBundle)
			}
			s := &b.Statements[n-1]
			if len(s.Parts) == MaxBundleParts {
				return Bundle{}, fmt.Errorf("%w: statement %d has more than %d parts", ErrBundle, n, MaxBundleParts)
			}
			s.Parts = append(s.Parts, blk.Bytes)
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
	case len(b.Statements) == 0:
		return Bundle{}, fmt.Errorf("%w: no %s block", ErrBundle, pemStatement)
	case !signed():
		return Bundle{}, fmt.Errorf("%w: the last statement has no signature", ErrBundle)
	}
	return b, nil
}

// Verified is one statement of a bundle, checked.
type Verified struct {
	// Statement is the statement as signed, with the lines the bundle
	// disclosed: every line for forms 1 and 2 and a whole copy, a
	// carrier's own in a carrier's copy. Form 3 statements come without
	// their PartSeed.
	Statement store.Statement
	// Carriers lists every carrier with lines in the statement, and
	// Disclosed those whose lines are in Statement.Lines.
	Carriers, Disclosed []string
}

// Whole reports whether every carrier's lines are in v.
func (v *Verified) Whole() bool { return len(v.Disclosed) == len(v.Carriers) }

// Verify checks every statement of b with trusted, the key the reader
// trusts, and every part it discloses against the digest its statement
// signs, and returns them. A bundle whose own key is not trusted fails
// with ErrOtherKey, naming both fingerprints.
func (b Bundle) Verify(trusted ed25519.PublicKey) ([]Verified, error) {
	if b.PublicKey != nil && !b.PublicKey.Equal(trusted) {
		return nil, fmt.Errorf("%w: the bundle's statements name key %s, the key given is %s; ask the city which key is its statement key",
			ErrOtherKey, Fingerprint(b.PublicKey), Fingerprint(trusted))
	}
	out := make([]Verified, 0, len(b.Statements))
	for i, s := range b.Statements {
		// The signature first: a part is only worth checking against a
		// digest that is signed.
		st, carriers, err := readContent(s)
		if err != nil {
			return nil, fmt.Errorf("statement %d of the bundle: %w", i+1, err)
		}
		if err := checkSignature(&st, trusted); err != nil {
			return nil, err
		}
		_, _, parts, err := readSigned(s)
		if err != nil {
			return nil, fmt.Errorf("statement %d of the bundle: %w", i+1, err)
		}
		if i == 0 && st.Adjusts != "" || i > 0 && (st.Period != out[0].Statement.Period || st.Adjusts == "") {
			return nil, fmt.Errorf("%w: statement %d is not of period %s's own statement and its adjustments", ErrBundle, i+1, out[0].Statement.Period)
		}
		v := Verified{Statement: st, Carriers: carriers}
		if st.Form < 3 {
			v.Disclosed = carriers
		}
		for _, p := range parts {
			v.Disclosed = append(v.Disclosed, p.Carrier)
			v.Statement.Lines = append(v.Statement.Lines, p.Lines...)
			v.Statement.Held = append(v.Statement.Held, p.Held...)
		}
		out = append(out, v)
	}
	return out, nil
}

// readContent reads what a statement of a bundle signs: the statement
// (form 3 without lines) and every carrier with lines in it.
func readContent(s Signed) (store.Statement, []string, error) {
	if bytes.HasPrefix(s.Canonical, []byte(Header3+"\n")) || bytes.HasPrefix(s.Canonical, []byte(Header4+"\n")) {
		c, err := ParseContent(s.Canonical)
		if err != nil {
			return store.Statement{}, nil, err
		}
		st := c.Statement
		st.Signature = s.Signature
		return st, c.Carriers(), nil
	}
	st, carriers, _, err := readSigned(s)
	return st, carriers, err
}

// readSigned reads one statement of a bundle: the statement as signed
// (with Hash over its canonical form and its signature; form 3 with the
// lines of its disclosed parts only, after checking each against its
// digest), every carrier with lines in it, and the disclosed parts.
func readSigned(s Signed) (store.Statement, []string, []Part, error) {
	if bytes.HasPrefix(s.Canonical, []byte(Header3+"\n")) || bytes.HasPrefix(s.Canonical, []byte(Header4+"\n")) {
		return readSigned3(s)
	}
	if len(s.Parts) > 0 {
		return store.Statement{}, nil, nil, fmt.Errorf("%w: a statement of form 1 or 2 has no parts", ErrBundle)
	}
	st, err := Parse(s.Canonical)
	if err != nil {
		return store.Statement{}, nil, nil, err
	}
	st.Hash, st.Signature = Hash(&st), s.Signature
	var carriers []string
	for _, l := range st.Lines {
		if !slices.Contains(carriers, l.Carrier) {
			carriers = append(carriers, l.Carrier)
		}
	}
	return st, carriers, nil, nil
}

func readSigned3(s Signed) (store.Statement, []string, []Part, error) {
	c, err := ParseContent(s.Canonical)
	if err != nil {
		return store.Statement{}, nil, nil, err
	}
	st := c.Statement
	st.Signature = s.Signature
	name := st.Period + adjustsSuffix(st.Adjusts)
	var parts []Part
	for i, raw := range s.Parts {
		p, err := ParsePart(raw)
		if err != nil {
			return store.Statement{}, nil, nil, fmt.Errorf("statement %s, part %d: %w", name, i+1, err)
		}
		if max(p.Form, 3) != st.Form {
			return store.Statement{}, nil, nil, fmt.Errorf("%w: statement %s (form %d): part %d is in form %d", ErrBundle, name, st.Form, i+1, max(p.Form, 3))
		}
		if p.Period != st.Period || p.Adjusts != st.Adjusts {
			return store.Statement{}, nil, nil, fmt.Errorf("%w: statement %s: part %d is of statement %s%s", ErrBundle, name, i+1, p.Period, adjustsSuffix(p.Adjusts))
		}
		if i > 0 && parts[i-1].Carrier >= p.Carrier {
			return store.Statement{}, nil, nil, fmt.Errorf("%w: statement %s: parts out of order or repeated", ErrBundle, name)
		}
		k := slices.IndexFunc(c.Parts, func(d PartDigest) bool { return d.Carrier == p.Carrier })
		if k < 0 {
			return store.Statement{}, nil, nil, fmt.Errorf("statement %s: a part of carrier %q, which the signed statement does not name: the part was not in it", name, p.Carrier)
		}
		if p.Digest() != c.Parts[k].Digest {
			return store.Statement{}, nil, nil, fmt.Errorf("statement %s: %s's part does not match the digest the statement signs: the part was changed after the close", name, p.Carrier)
		}
		parts = append(parts, p)
	}
	return st, c.Carriers(), parts, nil
}

// uah formats kopiyky as hryvnias with two decimals.
func uah(kop int64) string {
	sign, u := "", uint64(kop)
	if kop < 0 {
		sign, u = "-", uint64(-kop)
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}
