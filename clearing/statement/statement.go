package statement

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/hsm"
)

// signedPrefix separates statement signatures from every other use of the
// key: the signature covers signedPrefix || Hash.
const signedPrefix = "citycard-transit-statement-hash/1\x00"

// SignedMessage returns what a statement's signature covers.
func SignedMessage(hash []byte) []byte {
	return append([]byte(signedPrefix), hash...)
}

// Sealer returns a store.Sealer that records actor as who closed each
// statement, draws its random PartSeed, hashes its canonical form (the
// newest, Form) and signs the hash with the Ed25519 key ref in km (version 0 means the newest
// version, resolved once here), recording the key's full name and
// fingerprint.
func Sealer(ctx context.Context, km hsm.KeyManager, ref hsm.Ref, actor string) (store.Sealer, error) {
	if err := CheckActor(actor); err != nil {
		return nil, err
	}
	info, err := hsm.Resolve(ctx, km, ref)
	if errors.Is(err, hsm.ErrNotFound) {
		return nil, fmt.Errorf("statement signing key %s: %w; create it with 'transit hsm keygen %s'", ref, err, ref.Label)
	}
	if err != nil {
		return nil, fmt.Errorf("statement signing key %s: %w", ref, err)
	}
	signer, err := km.Signer(ctx, info.Ref)
	if err != nil {
		return nil, fmt.Errorf("statement signing key %s: %w", info.Ref, err)
	}
	pub, err := km.PublicKey(ctx, info.Ref)
	if err != nil {
		return nil, fmt.Errorf("statement signing key %s: %w", info.Ref, err)
	}
	name, fp := info.Ref.String(), Fingerprint(pub)
	return func(_ context.Context, st *store.Statement) error {
		st.ClosedBy, st.Form, st.KeyRef, st.KeyFingerprint = actor, Form, name, fp
		st.PartSeed = make([]byte, SeedSize)
		if _, err := rand.Read(st.PartSeed); err != nil {
			return fmt.Errorf("seal statement %s: the parts' seed: %w", st.Period, err)
		}
		st.Hash = Hash(st)
		sig, err := signer.Sign(rand.Reader, SignedMessage(st.Hash), crypto.Hash(0))
		if err != nil {
			return fmt.Errorf("sign statement %s with %s: %w", st.Period, name, err)
		}
		st.Signature = sig
		return nil
	}, nil
}

// MaxActor bounds the name of who closes a period.
const MaxActor = 128

// CheckActor checks the name of who closes a period: 1 to MaxActor bytes
// of UTF-8 without control or format characters, since it is printed on
// the statement and signed.
func CheckActor(actor string) error {
	switch {
	case actor == "":
		return ErrNoActor
	case len(actor) > MaxActor:
		return fmt.Errorf("who closes %q...: at most %d bytes", actor[:32], MaxActor)
	case !utf8.ValidString(actor):
		return fmt.Errorf("who closes %q: not UTF-8", actor)
	}
	for _, r := range actor {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("who closes %q: control and format characters (U+%04X) are not allowed", actor, r)
		}
	}
	return nil
}

// Errors of Service.
var (
	// ErrNotOver means the period has not ended yet in the city.
	ErrNotOver = errors.New("period is not over")
	// ErrNotClosed means a statement to verify is a draft.
	ErrNotClosed = errors.New("period is not closed")
	// ErrNoActor means a close does not say who closes.
	ErrNoActor = errors.New("a close must say who closes the period")
	// ErrNotConfirmed means a close was not confirmed.
	ErrNotConfirmed = errors.New("closing a period cannot be undone and must be confirmed")
	// ErrChanged means the figures changed after they were confirmed.
	ErrChanged = errors.New("the figures changed after they were shown")
	// ErrOtherKey means a statement was signed by another key than the
	// one verifying it: not a change of the statement.
	ErrOtherKey = errors.New("signed by another key")
)

// Service closes and verifies the statements of a store.
type Service struct {
	Store store.Store
	// Keys holds the signing key; verification needs its public half
	// only. It may be nil for a Service that only verifies with
	// PublicKey.
	Keys hsm.KeyManager
	// PublicKey, when set, is the key Verify checks signatures with
	// instead of Keys: the city's published statement key, for auditors
	// and carriers who hold no keystore.
	PublicKey ed25519.PublicKey
	// Key is the signing key; the zero value means the newest version of
	// hsm.LabelSignStatement.
	Key hsm.Ref
	// Location is the city's time zone (default UTC): a period ends at
	// midnight there.
	Location *time.Location
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Log receives a line per close (default slog.Default()).
	Log *slog.Logger
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) key() hsm.Ref {
	if s.Key.Label == "" {
		return hsm.Ref{Label: hsm.LabelSignStatement, Version: s.Key.Version}
	}
	return s.Key
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// Closing is what a close of a period needs besides the period: who
// closes it, that they confirmed it, and optionally the figures they
// confirmed.
type Closing struct {
	// Early closes the period before it ended in the city.
	Early bool
	// Actor names who closes: the signed-in staff account, or for the
	// command line the operator it names. It is signed with the
	// statements.
	Actor string
	// Confirmed must be true: the person was shown what closing does
	// (Preview) and means it. A close cannot be undone.
	Confirmed bool
	// Expect, when set, is Preview.Token of the figures the person was
	// shown: the close fails with ErrChanged, closing nothing, if the
	// drafts differ from them when they are frozen.
	Expect string
}

// Preview is what closing a period now would freeze.
type Preview struct {
	Period string
	// Statements are the period's drafts: its own, then its adjustment
	// statements.
	Statements []store.Statement
	// Total sums them.
	Total store.Line
	// Ends is when the period ends in the city; Early is true while it
	// has not ended, so that a close now must be an early one.
	Ends  time.Time
	Early bool
}

// Token fixes the figures of p: Closing.Expect.
func (p Preview) Token() string {
	parts := make([]string, len(p.Statements))
	for i := range p.Statements {
		parts[i] = tokenPart(&p.Statements[i])
	}
	return strings.Join(parts, " ")
}

// tokenPart is "ADJUSTS:DIGEST" ("-" for the period's own statement),
// the digest being over the statement's lines and held rides.
func tokenPart(st *store.Statement) string {
	h := sha256.New()
	for _, l := range st.Lines {
		fmt.Fprintf(h, "%q %q %q %d %d %d %d\n", l.Carrier, l.Category, l.Funding, l.Rides, l.FareKop, l.ChargedKop, l.CompensationKop)
		if l.Kind != "" {
			fmt.Fprintf(h, "kind %q\n", l.Kind)
		}
	}
	// What the statement holds back is part of the figures shown too.
	for _, hl := range st.Held {
		fmt.Fprintf(h, "held %q %q %d %d\n", hl.Carrier, hl.Reason, hl.Rides, hl.ClaimedKop)
	}
	adj := st.Adjusts
	if adj == "" {
		adj = "-"
	}
	return adj + ":" + hex.EncodeToString(h.Sum(nil)[:12])
}

// Preview returns what closing period now would freeze, having judged
// what waits for re-rating as the close would. A closed period
// fails with store.ErrPeriodClosed.
func (s *Service) Preview(ctx context.Context, period string) (Preview, error) {
	_, end, err := store.Bounds(period, s.loc())
	if err != nil {
		return Preview{}, fmt.Errorf("preview the close: %w", err)
	}
	// A close judges what waits for re-rating before it seals
	// (store.Proof.Rerate), so the preview judges it first too: it shows
	// the rides the close pays and the ones it holds back.
	for {
		rs, err := s.Store.Rerate(ctx, 100)
		if err != nil {
			return Preview{}, fmt.Errorf("preview the close: %w", err)
		}
		if rs.Runs == 0 && rs.Cards == 0 {
			break
		}
	}
	sts, err := s.Store.Statements(ctx, period)
	if err != nil {
		return Preview{}, err
	}
	if len(sts) > 0 && sts[0].Closed {
		return Preview{}, fmt.Errorf("%s: %w (on %s)", period, store.ErrPeriodClosed, sts[0].ClosedAt.In(s.loc()).Format("02.01.2006 15:04"))
	}
	p := Preview{Period: period, Statements: sts, Ends: end, Early: s.now().Before(end)}
	for i := range sts {
		p.Total.Add(sts[i].Total())
	}
	return p, nil
}

func (s *Service) loc() *time.Location {
	if s.Location != nil {
		return s.Location
	}
	return time.UTC
}

// Close closes period: its own statement and its adjustment statements
// are frozen, hashed and signed, with who closed them and when. A period
// is closed only after it ended in the city, unless c.Early; its rides
// that arrive later are booked into an adjustment statement of the next
// open period. It cannot be reopened. The signatures are checked before
// Close returns.
func (s *Service) Close(ctx context.Context, period string, c Closing) ([]store.Statement, error) {
	_, end, err := store.Bounds(period, s.loc())
	if err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	if !c.Confirmed {
		return nil, fmt.Errorf("close %s: %w", period, ErrNotConfirmed)
	}
	if err := CheckActor(c.Actor); err != nil {
		return nil, fmt.Errorf("close %s: %w", period, err)
	}
	now := s.now()
	if !c.Early && now.Before(end) {
		return nil, fmt.Errorf("close %s: %w: it ends at %s; close it after that, or close it early on purpose (its later rides then go to an adjustment statement)",
			period, ErrNotOver, end.Format(time.RFC3339))
	}
	seal, err := Sealer(ctx, s.Keys, s.key(), c.Actor)
	if err != nil {
		return nil, fmt.Errorf("close %s: %w", period, err)
	}
	if c.Expect != "" {
		seal = expecting(seal, c.Expect)
	}
	sts, err := s.Store.CloseStatements(ctx, period, now, seal)
	if err != nil {
		return nil, err
	}
	for i := range sts {
		if err := s.check(ctx, &sts[i]); err != nil {
			// The statements are stored; a bad signature here means the
			// key cannot verify itself, which an operator must see.
			return sts, fmt.Errorf("close %s: the new signature does not verify: %w", period, err)
		}
		t := sts[i].Total()
		s.log().Info("statement closed", "period", period, "adjusts", sts[i].Adjusts, "lines", len(sts[i].Lines),
			"rides", t.Rides, "compensation_kop", t.CompensationKop, "key", sts[i].KeyRef, "by", c.Actor)
	}
	return sts, nil
}

// expecting wraps seal to refuse a statement whose lines are not those
// of token.
func expecting(seal store.Sealer, token string) store.Sealer {
	want := map[string]bool{}
	for _, p := range strings.Fields(token) {
		want[p] = true
	}
	return func(ctx context.Context, st *store.Statement) error {
		if !want[tokenPart(st)] {
			return fmt.Errorf("%w: new rides were booked into %s%s; review them and confirm again", ErrChanged, st.Period, adjustsSuffix(st.Adjusts))
		}
		return seal(ctx, st)
	}
}

// check recomputes a closed statement's hash and verifies its signature
// with PublicKey, or else the key it names in Keys.
func (s *Service) check(ctx context.Context, st *store.Statement) error {
	if s.PublicKey != nil {
		return VerifyWith(st, s.PublicKey)
	}
	if !bytes.Equal(Hash(st), st.Hash) {
		return fmt.Errorf("statement %s%s: the content hash does not match its lines", st.Period, adjustsSuffix(st.Adjusts))
	}
	ref, err := hsm.ParseRef(st.KeyRef)
	if err != nil || ref.Version == 0 {
		return fmt.Errorf("statement %s%s: signed with %q, which names no key version", st.Period, adjustsSuffix(st.Adjusts), st.KeyRef)
	}
	if s.Keys == nil {
		return fmt.Errorf("statement %s%s: no key to verify with: give the city's public key", st.Period, adjustsSuffix(st.Adjusts))
	}
	pub, err := s.Keys.PublicKey(ctx, ref)
	if err != nil {
		return fmt.Errorf("statement %s%s: public key %s: %w", st.Period, adjustsSuffix(st.Adjusts), ref, err)
	}
	return VerifyWith(st, pub)
}

// VerifyWith checks a closed statement with the public key pub alone:
// its content hash against its lines and fields, then that pub is the
// key that signed it (by fingerprint; ErrOtherKey if not) and that the
// signature verifies.
func VerifyWith(st *store.Statement, pub ed25519.PublicKey) error {
	name := st.Period + adjustsSuffix(st.Adjusts)
	if !st.Closed {
		return fmt.Errorf("statement %s: %w", name, ErrNotClosed)
	}
	if st.Form >= 3 && len(st.PartSeed) != SeedSize {
		return fmt.Errorf("statement %s: %w (%d bytes, want %d): its parts cannot be recomputed", name, ErrNoSeed, len(st.PartSeed), SeedSize)
	}
	if !bytes.Equal(Hash(st), st.Hash) {
		return fmt.Errorf("statement %s: the content hash does not match its lines: the statement was changed after the close", name)
	}
	return checkSignature(st, pub)
}

// checkSignature checks that pub is the key that signed st (by
// fingerprint; ErrOtherKey if not) and that st.Signature over st.Hash
// verifies with it.
func checkSignature(st *store.Statement, pub ed25519.PublicKey) error {
	name := st.Period + adjustsSuffix(st.Adjusts)
	fp := Fingerprint(pub)
	if st.KeyFingerprint != "" && st.KeyFingerprint != fp {
		return fmt.Errorf("statement %s: %w: it names %s (%s), the key given is %s; verify with the city's published statement key",
			name, ErrOtherKey, st.KeyRef, st.KeyFingerprint, fp)
	}
	if !hsm.Verify(pub, SignedMessage(st.Hash), st.Signature) {
		if st.KeyFingerprint == "" {
			return fmt.Errorf("statement %s: the signature does not verify with %s: either this is not the key that signed it, or the statement changed", name, fp)
		}
		return fmt.Errorf("statement %s: the signature by %s (%s) does not verify", name, st.KeyRef, fp)
	}
	return nil
}

func adjustsSuffix(adjusts string) string {
	if adjusts == "" {
		return ""
	}
	return " (adjusting " + adjusts + ")"
}

// Verification is the outcome of verifying one closed statement.
type Verification struct {
	Statement store.Statement
	// Signed is true when the hash matches the lines and the signature
	// verifies.
	Signed bool
	// RollupMatches and TapsMatch are set by a deep verification: the
	// lines equal the roll-up, and the sums over the raw taps.
	RollupMatches, TapsMatch bool
	// OtherKey is set when the statement names another signing key than
	// the one verifying it (by fingerprint): not a change of the
	// statement, but the wrong key.
	OtherKey bool
	// Problems says what failed, in words; empty when all is well.
	Problems []string
}

// OK reports whether every check made passed.
func (v *Verification) OK() bool { return len(v.Problems) == 0 }

// Verify checks every closed statement of period: its hash against its
// lines and its signature. deep also compares the lines with the roll-up
// and with the raw taps (which scans the month's taps). A failed check is
// reported in the Verification, not as an error.
func (s *Service) Verify(ctx context.Context, period string, deep bool) ([]Verification, error) {
	sts, err := s.Store.Statements(ctx, period)
	if err != nil {
		return nil, err
	}
	if len(sts) == 0 || !sts[0].Closed {
		return nil, fmt.Errorf("verify %s: %w: only closed statements are signed; close it first", period, ErrNotClosed)
	}
	var booked []store.Line
	if deep {
		if booked, err = s.Store.Compensation(ctx, store.Query{Period: period}); err != nil {
			return nil, err
		}
	}
	out := make([]Verification, len(sts))
	for i := range sts {
		v := Verification{Statement: sts[i]}
		if err := s.check(ctx, &sts[i]); err != nil {
			v.Problems = append(v.Problems, err.Error())
			v.OtherKey = errors.Is(err, ErrOtherKey)
		} else {
			v.Signed = true
		}
		if deep {
			var rolled []store.Line
			for _, l := range booked {
				if l.Adjusts == sts[i].Adjusts {
					rolled = append(rolled, l)
				}
			}
			v.RollupMatches = slices.Equal(rolled, sts[i].Lines)
			if !v.RollupMatches {
				v.Problems = append(v.Problems, "the roll-up no longer equals the closed lines: the roll-up was changed behind the statement's back")
			}
			fromTaps, err := s.Store.TapLines(ctx, period, sts[i].Adjusts)
			if err != nil {
				return nil, err
			}
			v.TapsMatch = slices.Equal(fromTaps, sts[i].Lines)
			if !v.TapsMatch {
				v.Problems = append(v.Problems, "the sums over the raw taps differ from the closed lines: taps were changed after the close")
			}
		}
		out[i] = v
	}
	return out, nil
}
