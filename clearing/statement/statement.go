package statement

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

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

// Sealer returns a store.Sealer that hashes each statement and signs the
// hash with the Ed25519 key ref in km (version 0 means the newest
// version, resolved once here), recording the key's full name.
func Sealer(ctx context.Context, km hsm.KeyManager, ref hsm.Ref) (store.Sealer, error) {
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
	name := info.Ref.String()
	return func(_ context.Context, st *store.Statement) error {
		st.Hash = Hash(st)
		sig, err := signer.Sign(rand.Reader, SignedMessage(st.Hash), crypto.Hash(0))
		if err != nil {
			return fmt.Errorf("sign statement %s with %s: %w", st.Period, name, err)
		}
		st.Signature, st.KeyRef = sig, name
		return nil
	}, nil
}

// Errors of Service.
var (
	// ErrNotOver means the period has not ended yet in the city.
	ErrNotOver = errors.New("period is not over")
	// ErrNotClosed means a statement to verify is a draft.
	ErrNotClosed = errors.New("period is not closed")
)

// Service closes and verifies the statements of a store.
type Service struct {
	Store store.Store
	// Keys holds the signing key; verification needs its public half
	// only.
	Keys hsm.KeyManager
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

// Close closes period: its own statement and its adjustment statements
// are frozen, hashed and signed. A period is closed only after it ended in
// the city, unless early is true; its rides that arrive later are booked
// into an adjustment statement of the next open period. The signatures
// are checked before Close returns.
func (s *Service) Close(ctx context.Context, period string, early bool) ([]store.Statement, error) {
	loc := s.Location
	if loc == nil {
		loc = time.UTC
	}
	_, end, err := store.Bounds(period, loc)
	if err != nil {
		return nil, fmt.Errorf("close: %w", err)
	}
	now := s.now()
	if !early && now.Before(end) {
		return nil, fmt.Errorf("close %s: %w: it ends at %s; close it after that, or close it early on purpose (its later rides then go to an adjustment statement)",
			period, ErrNotOver, end.Format(time.RFC3339))
	}
	seal, err := Sealer(ctx, s.Keys, s.key())
	if err != nil {
		return nil, fmt.Errorf("close %s: %w", period, err)
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
			"rides", t.Rides, "compensation_kop", t.CompensationKop, "key", sts[i].KeyRef)
	}
	return sts, nil
}

// check recomputes a closed statement's hash and verifies its signature.
func (s *Service) check(ctx context.Context, st *store.Statement) error {
	if !bytes.Equal(Hash(st), st.Hash) {
		return fmt.Errorf("statement %s%s: the content hash does not match its lines", st.Period, adjustsSuffix(st.Adjusts))
	}
	ref, err := hsm.ParseRef(st.KeyRef)
	if err != nil || ref.Version == 0 {
		return fmt.Errorf("statement %s%s: signed with %q, which names no key version", st.Period, adjustsSuffix(st.Adjusts), st.KeyRef)
	}
	pub, err := s.Keys.PublicKey(ctx, ref)
	if err != nil {
		return fmt.Errorf("statement %s%s: public key %s: %w", st.Period, adjustsSuffix(st.Adjusts), ref, err)
	}
	if !hsm.Verify(pub, SignedMessage(st.Hash), st.Signature) {
		return fmt.Errorf("statement %s%s: the signature by %s does not verify", st.Period, adjustsSuffix(st.Adjusts), ref)
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
