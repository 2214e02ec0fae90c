// Package hotlist is the signed, versioned list of blocked cards that a
// validator checks every tap against, offline.
//
// The registry builds files with [Build] (a full list) and [BuildDelta]
// (changes from one version to a later one), signing them with the hsm key
// "sign-hotlist@N". A validator keeps the current list in a [Holder]:
// [Holder.Apply] verifies a file before anything else, refuses rollbacks
// and deltas that do not fit, stores the file on disk and swaps the new
// [List] in atomically, so a tap never sees a half-applied list.
//
// # File layout
//
// Integers in the header are big-endian. The first 96 bytes are the
// manifest; the signature covers the manifest only, and the manifest holds
// the SHA-256 of the entry section, so signing costs the same for 10
// million cards as for ten.
//
//	offset  size  field
//	     0     8  magic "CCHOTLST"
//	     8     2  format version, 1
//	    10     1  kind: 1 full, 2 delta
//	    11     1  reserved, 0
//	    12     4  key version N of the signing key sign-hotlist@N, >= 1
//	    16     8  version, >= 1, strictly increasing across publications
//	    24     8  base version: 0 in a full file, < version in a delta
//	    32     8  issued, Unix milliseconds, > 0
//	    40     8  add count A (the entry count of a full file)
//	    48     8  remove count R (0 in a full file)
//	    56     8  entry section length L in bytes
//	    64    32  SHA-256 of the entry section
//	    96    64  Ed25519 signature of bytes 0..95
//	   160     L  entry section
//
// The entry section is
//
//	A uvarints  added card numbers, ascending, each as the difference
//	            from the previous one (the first from 0); every
//	            difference is >= 1, so numbers are unique and non-zero
//	A bytes     the reason of each added card, in the same order, non-zero
//	R uvarints  removed card numbers, coded like the added ones
//
// Uvarints must be minimal (no trailing 0x00 continuation), which makes
// the encoding canonical: one list has exactly one file. A full file
// replaces the list; a delta from base B to version V adds its entries
// (replacing the reason of a card already listed) and removes its card
// numbers, each of which must be in version B.
//
// # Staleness
//
// A validator whose list is older than its MaxAge keeps deciding with it:
// a validator must never stop carrying people because the network is down,
// and the old list still blocks every card it named. [Holder.Stale] reports
// the condition for the terminal and the transit_hotlist_* metrics, and
// every tap records the hotlist version it was decided with, so clearing
// can flag taps decided on an old list. The registry should publish at
// least daily (an empty delta will do) so that age measures the link, not
// the desk's workload.
package hotlist

import (
	"errors"
	"fmt"
	"strings"
)

// Errors a caller can test with errors.Is.
var (
	// ErrMalformed means the bytes are not a well-formed hotlist file.
	ErrMalformed = errors.New("malformed hotlist")
	// ErrSignature means the signature does not verify with the key the file
	// names, or no verify key of that version is known.
	ErrSignature = errors.New("hotlist signature does not verify")
	// ErrRollback means the file's version is not newer than the loaded one.
	ErrRollback = errors.New("hotlist is not newer than the loaded one")
	// ErrWrongBase means a delta does not apply to the loaded list: its base
	// is another version, or it removes a card the base does not hold. The
	// cure is a full file.
	ErrWrongBase = errors.New("hotlist delta does not fit the loaded list")
	// ErrInvalid means Build or BuildDelta was given entries or versions
	// that no file may carry.
	ErrInvalid = errors.New("invalid hotlist content")
)

// Reason says why a card is on the hotlist. The zero value is invalid so a
// forgotten field is caught.
type Reason uint8

// Reasons. Validators accept reasons they do not know (a newer registry
// may add some), because refusing the file would unblock every card in it.
const (
	ReasonLost           Reason = 1 // the holder reported the card lost
	ReasonStolen         Reason = 2 // the holder reported the card stolen
	ReasonFraud          Reason = 3 // clearing or an inspector found misuse
	ReasonBenefitRevoked Reason = 4 // the benefit the card carries was withdrawn
	ReasonBlockedByDesk  Reason = 5 // blocked at an issuance desk for another reason
	ReasonReplaced       Reason = 6 // superseded by a replacement card, balance moved
)

var reasonNames = [...]string{
	ReasonLost:           "lost",
	ReasonStolen:         "stolen",
	ReasonFraud:          "fraud",
	ReasonBenefitRevoked: "benefit-revoked",
	ReasonBlockedByDesk:  "blocked-by-desk",
	ReasonReplaced:       "replaced",
}

// Known reports whether r is one of the reasons this build names.
func (r Reason) Known() bool { return int(r) < len(reasonNames) && reasonNames[r] != "" }

// String returns the reason's name, or "reason(N)" for one this build does
// not know.
func (r Reason) String() string {
	if r.Known() {
		return reasonNames[r]
	}
	return fmt.Sprintf("reason(%d)", uint8(r))
}

// ParseReason reads a reason name as String writes it.
func ParseReason(s string) (Reason, error) {
	for r, name := range reasonNames {
		if name != "" && name == s {
			return Reason(r), nil
		}
	}
	var names []string
	for _, n := range reasonNames {
		if n != "" {
			names = append(names, n)
		}
	}
	return 0, fmt.Errorf("hotlist reason %q: use one of %s", s, strings.Join(names, ", "))
}

// MarshalText implements encoding.TextMarshaler.
func (r Reason) MarshalText() ([]byte, error) {
	if !r.Known() {
		return nil, fmt.Errorf("hotlist reason %d has no name", uint8(r))
	}
	return []byte(r.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Reason) UnmarshalText(b []byte) error {
	v, err := ParseReason(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Entry is one blocked card.
type Entry struct {
	Card   uint64
	Reason Reason
}

// Kind says whether a file is a full list or a delta.
type Kind uint8

// Kinds of file.
const (
	KindFull  Kind = 1
	KindDelta Kind = 2
)

// String returns "full" or "delta".
func (k Kind) String() string {
	switch k {
	case KindFull:
		return "full"
	case KindDelta:
		return "delta"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}
