// Package auditchain makes the registry's audit log tamper-evident.
//
// Every entry carries its place in the chain (Seq, from 1 without gaps),
// the hash of the entry before it (Prev) and its own Hash: SHA-256 over
// Prev and the entry's content ([Hash]). Anyone who edits, deletes,
// inserts or reorders entries by hand (with the database's append-only
// triggers dropped, say) breaks the chain at the first entry touched,
// and [Verify] names it.
//
// Someone who rewrites the log from some entry on and recomputes every
// hash after it keeps the chain whole. Checkpoints catch that: at
// intervals the registry signs the chain's head (Seq and Hash) with the
// HSM's sign-audit key ([Checkpointer]), and Verify checks the chain
// against every signed checkpoint. What a checkpoint cannot cover is the
// tail written after the newest one: deleting it and the head record
// with it is seen only by comparing with a head noted elsewhere, which
// is why every checkpoint is also written to the service log.
//
// The registry verifies the whole chain when it starts and refuses to
// serve a broken one unless told to; a [Monitor] verifies it again at
// intervals, and its last report is what a resident's view of their
// access log shows.
package auditchain

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/citycard/transit/registry"
)

// Genesis is the Prev of the first entry.
var Genesis = make([]byte, sha256.Size)

// hashTag and checkpointTag separate the two things hashed or signed,
// so that neither can be passed off as the other.
const (
	hashTag       = "transit-audit-v1"
	checkpointTag = "transit-audit-checkpoint-v1\x00"
)

// Hash returns the chain hash of e at its Seq after an entry whose hash
// is prev. The encoding is fixed (registry migration 0003 computes the
// same in SQL to seal entries written before the chain existed):
//
//	"transit-audit-v1" || prev (32 bytes) || seq (int64 BE) ||
//	at in Unix microseconds (int64 BE) || user || role ||
//	resident id (int64 BE, 0 for none) || record || action || purpose
//
// where each text is its UTF-8 length (uint32 BE) and bytes.
func Hash(e *registry.AuditEntry, prev []byte) []byte {
	h := sha256.New()
	var n [8]byte
	h.Write([]byte(hashTag))
	h.Write(prev)
	put := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	text := func(s string) {
		binary.BigEndian.PutUint32(n[:4], uint32(len(s)))
		h.Write(n[:4])
		h.Write([]byte(s))
	}
	put(e.Seq)
	put(e.At.UnixMicro())
	text(e.User)
	text(string(e.Role))
	put(e.Resident)
	text(e.Record)
	text(e.Action)
	text(e.Purpose)
	return h.Sum(nil)
}

// Link sets e's Seq, Prev and Hash to follow an entry at seq with hash
// prev.
func Link(e *registry.AuditEntry, seq int64, prev []byte) {
	e.Seq, e.Prev = seq+1, bytes.Clone(prev)
	e.Hash = Hash(e, prev)
}

// CheckpointMessage is what a checkpoint's signature covers.
func CheckpointMessage(seq int64, hash []byte, at time.Time) []byte {
	m := make([]byte, 0, len(checkpointTag)+16+len(hash))
	m = append(m, checkpointTag...)
	m = binary.BigEndian.AppendUint64(m, uint64(seq))
	m = append(m, hash...)
	return binary.BigEndian.AppendUint64(m, uint64(at.UnixMicro()))
}

// Sign makes a checkpoint of the chain's head with signer, whose key is
// named key ("sign-audit@1").
func Sign(signer crypto.Signer, key string, seq int64, hash []byte, at time.Time) (registry.AuditCheckpoint, error) {
	at = at.UTC().Truncate(time.Microsecond)
	sig, err := signer.Sign(nil, CheckpointMessage(seq, hash, at), crypto.Hash(0))
	if err != nil {
		return registry.AuditCheckpoint{}, fmt.Errorf("sign audit checkpoint at entry %d: %w", seq, err)
	}
	return registry.AuditCheckpoint{Seq: seq, Hash: bytes.Clone(hash), At: at, Key: key, Signature: sig}, nil
}

// Source is the stored chain, as registry/store provides it.
type Source interface {
	// AuditChain calls fn with every entry whose Seq is above after, in
	// chain order; with after 0 it first gives entries that have no
	// place in the chain at all (Seq 0), by id.
	AuditChain(ctx context.Context, after int64, fn func(*registry.AuditEntry) error) error
	// AuditHead returns the Seq and Hash of the newest entry as the
	// store recorded it when appending (0 and Genesis for none).
	AuditHead(ctx context.Context) (seq int64, hash []byte, err error)
	// AuditCheckpoints returns the stored checkpoints, oldest first.
	AuditCheckpoints(ctx context.Context) ([]registry.AuditCheckpoint, error)
}

// PublicKeys returns the public key named key ("sign-audit@1"), for
// checking checkpoint signatures.
type PublicKeys func(ctx context.Context, key string) (ed25519.PublicKey, error)

// Kind is what a problem with the chain looks like.
type Kind string

// Kinds of problems.
const (
	// Edited: an entry's content does not match its hash (edited, or
	// moved to another place in the chain).
	Edited Kind = "edited"
	// Missing: places in the chain hold no entry (deleted).
	Missing Kind = "deleted"
	// Inserted: an entry has no place in the chain, or a second entry
	// claims a place.
	Inserted Kind = "inserted"
	// Relinked: an entry does not follow the one before it (entries
	// were reordered, or one was replaced with its hash recomputed).
	Relinked Kind = "reordered"
	// Truncated: the chain ends before what the registry or a
	// checkpoint recorded.
	Truncated Kind = "truncated"
	// Rewritten: the chain does not pass a signed checkpoint (rewritten
	// with its hashes recomputed), or a checkpoint's signature fails.
	Rewritten Kind = "rewritten"
)

// Problem is one place where the chain is broken.
type Problem struct {
	Kind Kind `json:"kind"`
	// Seq is the place in the chain; ID the entry's database id, 0
	// when there is no entry (a deleted one).
	Seq    int64  `json:"seq"`
	ID     int64  `json:"id,omitempty"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	id := ""
	if p.ID != 0 {
		id = fmt.Sprintf(" (id %d)", p.ID)
	}
	return fmt.Sprintf("audit entry %d%s %s: %s", p.Seq, id, p.Kind, p.Detail)
}

// Report is the outcome of verifying the chain.
type Report struct {
	// At is when the verification ended.
	At time.Time `json:"at"`
	// Entries is how many entries were read; Head the Seq of the last
	// one in the chain and HeadHash its hash.
	Entries  int64  `json:"entries"`
	Head     int64  `json:"head"`
	HeadHash string `json:"head_hash"`
	// Checkpoints is how many signed checkpoints the chain passed;
	// Signed says whether their signatures were checked (with the
	// public key), LastCheckpoint is the newest that verified.
	Checkpoints    int                       `json:"checkpoints"`
	Signed         bool                      `json:"signed"`
	LastCheckpoint *registry.AuditCheckpoint `json:"last_checkpoint,omitempty"`
	// First is the first problem, in chain order; Problems counts them
	// all. Both are empty when the chain verified.
	First    *Problem `json:"first_problem,omitempty"`
	Problems int      `json:"problems"`
}

// OK reports whether the chain verified.
func (r *Report) OK() bool { return r.Problems == 0 }

// Covers reports whether the entry at seq was verified by this report.
func (r *Report) Covers(seq int64) bool {
	return r.OK() && seq >= 1 && seq <= r.Head
}

// ErrBroken is wrapped by errors about a chain that does not verify.
var ErrBroken = errors.New("the audit log's hash chain is broken")

// Err returns nil for a chain that verified, or an error wrapping
// ErrBroken that names the first bad entry.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	more := ""
	if r.Problems > 1 {
		more = fmt.Sprintf(" (and %d more problem(s))", r.Problems-1)
	}
	return fmt.Errorf("%w: %s%s; run `transit registry audit verify` for the whole report, and investigate before trusting the log", ErrBroken, r.First, more)
}

// verifier walks the chain.
type verifier struct {
	rep      Report
	expected int64  // the next Seq
	prev     []byte // the stored hash of the entry before
	cps      []registry.AuditCheckpoint
	next     int // index of the next checkpoint to pass
	keys     PublicKeys
}

func (v *verifier) problem(p Problem) {
	v.rep.Problems++
	if v.rep.First == nil || p.Seq < v.rep.First.Seq {
		v.rep.First = &p
	}
}

// Verify checks the whole chain in src: every entry's hash, every link,
// no gap and no stray entry, the head the store recorded, and every
// checkpoint (with keys, its signature too; nil checks the chain alone).
// An error is returned only when src cannot be read; a broken chain is a
// Report with problems.
func Verify(ctx context.Context, src Source, keys PublicKeys, now func() time.Time) (Report, error) {
	cps, err := src.AuditCheckpoints(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify the audit log: read checkpoints: %w", err)
	}
	v := &verifier{expected: 1, prev: Genesis, cps: cps, keys: keys}
	v.rep.Signed = keys != nil
	if err := v.checkSignatures(ctx); err != nil {
		return Report{}, err
	}
	if err := src.AuditChain(ctx, 0, v.entry); err != nil {
		return Report{}, fmt.Errorf("verify the audit log: read entries: %w", err)
	}
	head, headHash, err := src.AuditHead(ctx)
	if err != nil {
		return Report{}, fmt.Errorf("verify the audit log: read its head: %w", err)
	}
	last := v.expected - 1
	switch {
	case head > last:
		v.problem(Problem{Kind: Truncated, Seq: last + 1, Detail: fmt.Sprintf(
			"the chain ends at entry %d, but the registry recorded entries up to %d: the last ones were deleted", last, head)})
	case head < last:
		v.problem(Problem{Kind: Inserted, Seq: head + 1, Detail: fmt.Sprintf(
			"the registry recorded entries up to %d, but the chain goes on to %d: entries were added by hand", head, last)})
	case !bytes.Equal(headHash, v.prev):
		v.problem(Problem{Kind: Rewritten, Seq: last, Detail: "the newest entry's hash differs from the one the registry recorded when it was written"})
	}
	for _, cp := range v.cps[v.next:] {
		if cp.Seq > last {
			v.problem(Problem{Kind: Truncated, Seq: last + 1, Detail: fmt.Sprintf(
				"the chain ends at entry %d, but a checkpoint signed %s covers entries up to %d: they were deleted",
				last, cp.At.UTC().Format(time.RFC3339), cp.Seq)})
			break
		}
	}
	v.rep.Head, v.rep.HeadHash = last, hex.EncodeToString(v.prev)
	if now == nil {
		now = time.Now
	}
	v.rep.At = now().UTC()
	return v.rep, nil
}

// checkSignatures checks every checkpoint's signature, and drops those
// that fail (a forged checkpoint vouches for nothing).
func (v *verifier) checkSignatures(ctx context.Context) error {
	if v.keys == nil {
		return nil
	}
	good := v.cps[:0:0]
	for _, cp := range v.cps {
		pub, err := v.keys(ctx, cp.Key)
		if err != nil {
			return fmt.Errorf("verify the audit log: the key %s of the checkpoint at entry %d: %w", cp.Key, cp.Seq, err)
		}
		if !ed25519.Verify(pub, CheckpointMessage(cp.Seq, cp.Hash, cp.At), cp.Signature) {
			v.problem(Problem{Kind: Rewritten, Seq: cp.Seq, Detail: fmt.Sprintf(
				"the checkpoint of this entry signed %s does not verify with %s: it was forged or altered",
				cp.At.UTC().Format(time.RFC3339), cp.Key)})
			continue
		}
		good = append(good, cp)
	}
	v.cps = good
	return nil
}

// entry checks one entry in chain order.
func (v *verifier) entry(e *registry.AuditEntry) error {
	v.rep.Entries++
	switch {
	case e.Seq == 0:
		v.problem(Problem{Kind: Inserted, ID: e.ID, Detail: "this entry has no place in the hash chain: it was added to the database by hand"})
		return nil
	case e.Seq < v.expected:
		v.problem(Problem{Kind: Inserted, Seq: e.Seq, ID: e.ID, Detail: "a second entry claims this place in the chain: one of them was added by hand"})
		return nil
	case e.Seq > v.expected:
		v.problem(Problem{Kind: Missing, Seq: v.expected, Detail: fmt.Sprintf(
			"entries %d to %d are missing: they were deleted", v.expected, e.Seq-1)})
		// Continue from here, so that one deletion is one problem.
		v.expected, v.prev = e.Seq, e.Prev
	case !bytes.Equal(e.Prev, v.prev):
		v.problem(Problem{Kind: Relinked, Seq: e.Seq, ID: e.ID, Detail: "it does not follow the entry before it: entries were reordered or replaced"})
	}
	if !bytes.Equal(Hash(e, e.Prev), e.Hash) {
		v.problem(Problem{Kind: Edited, Seq: e.Seq, ID: e.ID, Detail: "its content does not match its hash: it was edited, or moved from another place"})
	}
	// Go on from the stored hash, so that one edited entry is one
	// problem and the entries after it are still checked.
	v.prev = e.Hash
	for v.next < len(v.cps) && v.cps[v.next].Seq <= e.Seq {
		cp := v.cps[v.next]
		v.next++
		if cp.Seq < e.Seq {
			continue // its entry was missing: reported above
		}
		if !bytes.Equal(cp.Hash, e.Hash) {
			after := "the start"
			if v.rep.LastCheckpoint != nil {
				after = fmt.Sprintf("the checkpoint at entry %d", v.rep.LastCheckpoint.Seq)
			}
			v.problem(Problem{Kind: Rewritten, Seq: e.Seq, ID: e.ID, Detail: fmt.Sprintf(
				"the chain does not pass the checkpoint signed %s: the log between %s and here was rewritten",
				cp.At.UTC().Format(time.RFC3339), after)})
			continue
		}
		v.rep.Checkpoints++
		v.rep.LastCheckpoint = &cp
	}
	v.expected = e.Seq + 1
	return nil
}
