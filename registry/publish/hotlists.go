package publish

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/citycard/transit/card"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/validator/hotlist"
)

// Source is what publishing reads from the registry; store.Store has both
// methods, and neither returns personal data.
type Source interface {
	// Blocked returns every card validators must refuse and the card
	// event sequence number the list is consistent with.
	Blocked(ctx context.Context) (registry.Blocklist, error)
	// CardEvents returns up to limit card events after since.
	CardEvents(ctx context.Context, since uint64, limit int) ([]registry.CardEvent, error)
}

// FirstVersion is the version of the empty list a new registry
// publishes before its first card event.
const FirstVersion = 1

// Defaults of Options.
const (
	// DefaultCheckEvery suits a service: a blocked card reaches the
	// publisher within seconds, and thousands of polling validators cost
	// the database one indexed lookup per interval.
	DefaultCheckEvery = 5 * time.Second
	// DefaultRefresh is well inside validators' hotlist.DefaultMaxAge.
	DefaultRefresh = 12 * time.Hour
	// DefaultKeepFor lets a validator off the network for a week catch
	// up with a delta.
	DefaultKeepFor = 7 * 24 * time.Hour
	// DefaultMaxSteps bounds the directory and the work of one delta.
	DefaultMaxSteps = 5000
)

// Options configures Hotlists.
type Options struct {
	// Dir keeps the newest full file and the steps between versions; it
	// is created if missing. Required.
	Dir string
	// Signer is the Ed25519 key sign-hotlist@KeyVersion (hsm.KeyManager's
	// Signer). Required.
	Signer     crypto.Signer
	KeyVersion int
	// Keys verifies the files already in Dir, which older key versions
	// may have signed (hotlist.HSMKeys); nil verifies with Signer's
	// public key alone.
	Keys hotlist.KeyLookup
	// CheckEvery is how often a request may look for new card events;
	// 0 looks on every request. Refresh looks at once.
	CheckEvery time.Duration
	// Refresh republishes an unchanged list this old when card events
	// happened since (DefaultRefresh if 0).
	Refresh time.Duration
	// KeepFor and MaxSteps bound the steps kept for deltas
	// (DefaultKeepFor and DefaultMaxSteps if 0).
	KeepFor  time.Duration
	MaxSteps int
	// Now is the clock (time.Now if nil); Log gets publications and
	// problems (slog.Default() if nil).
	Now func() time.Time
	Log *slog.Logger
}

// Errors of Get; test with errors.Is.
var (
	// ErrNoHotlist: nothing is published yet, because the first look at
	// the registry failed.
	ErrNoHotlist = errors.New("no hotlist published yet")
	// ErrAhead: the validator holds a version (of the hotlist or the
	// tariff) newer than the one published, as after the registry
	// database was restored from a backup. Validators refuse older
	// versions, so this needs a person.
	ErrAhead = errors.New("the validator holds a newer version than the registry publishes")
)

// Hotlists publishes the registry's blocked cards as signed hotlist
// files. It is safe for concurrent use.
type Hotlists struct {
	src Source
	opt Options
	log *slog.Logger

	mu      sync.Mutex
	cur     *published
	steps   []step            // the chain of versions ending at cur, oldest first
	deltas  map[uint64][]byte // deltas to cur, by base
	seen    uint64            // the newest card event looked at
	checked time.Time         // when the source was last looked at
}

// published is the newest version.
type published struct {
	version uint64
	issued  time.Time
	entries []hotlist.Entry // ascending by card
	full    []byte
}

// maxCachedDeltas bounds the deltas kept for the newest version: one per
// version validators hold, and most hold one of the last few.
const maxCachedDeltas = 256

// Open returns a publisher over src that continues from what opt.Dir
// holds. It reads nothing from src: the first Get or Refresh does.
func Open(ctx context.Context, src Source, opt Options) (*Hotlists, error) {
	if src == nil {
		return nil, errors.New("hotlist publisher: no registry store")
	}
	if opt.Dir == "" {
		return nil, errors.New("hotlist publisher: no directory for published hotlists; give one (--hotlist-dir)")
	}
	if opt.Signer == nil {
		return nil, errors.New("hotlist publisher: no signer; open the HSM's " + hsm.LabelSignHotlist + " key")
	}
	pub, ok := opt.Signer.Public().(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("hotlist publisher: the signer holds a %T key; %s is an Ed25519 key", opt.Signer.Public(), hsm.LabelSignHotlist)
	}
	if opt.KeyVersion < 1 {
		return nil, fmt.Errorf("hotlist publisher: key version %d; name the version of %s that signs", opt.KeyVersion, hsm.LabelSignHotlist)
	}
	if opt.Keys == nil {
		opt.Keys = hotlist.KeyMap(map[int]ed25519.PublicKey{opt.KeyVersion: pub})
	}
	if opt.CheckEvery < 0 {
		return nil, fmt.Errorf("hotlist publisher: check interval %v is negative", opt.CheckEvery)
	}
	if opt.Refresh <= 0 {
		opt.Refresh = DefaultRefresh
	}
	if opt.KeepFor <= 0 {
		opt.KeepFor = DefaultKeepFor
	}
	if opt.MaxSteps <= 0 {
		opt.MaxSteps = DefaultMaxSteps
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	p := &Hotlists{src: src, opt: opt, log: opt.Log, deltas: map[uint64][]byte{}}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.log = p.log.With("component", "hotlist publisher")
	if err := p.load(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Version returns the newest published version, 0 before the first.
func (p *Hotlists) Version() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.version
}

// Refresh looks at the registry now and publishes a new version if one is
// due (see the package comment). It reports whether it published.
func (p *Hotlists) Refresh(ctx context.Context) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refresh(ctx)
}

// File is what Get serves.
type File struct {
	// Data is the signed file; nil when NotModified.
	Data        []byte
	Kind        hotlist.Kind
	Version     uint64
	Base        uint64 // of a delta
	NotModified bool   // the caller holds the newest version
}

// Get returns what a validator holding version since needs: nothing new
// when since is the newest version, a delta from since when the steps
// from it are kept and the delta is smaller than the full list, the full
// list otherwise (since 0 asks for it).
//
// It first looks for new card events if the last look is older than
// Options.CheckEvery, if nothing is published yet (a new registry, whose
// list is cheap to read), or if the validator holds a newer version than
// this publisher (another registry instance may have published it from
// the same database). When looking fails it serves what it has and logs
// the failure: validators must keep getting the list once published.
func (p *Hotlists) Get(ctx context.Context, since uint64) (File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil || since > p.cur.version || p.opt.Now().Sub(p.checked) >= p.opt.CheckEvery {
		if _, err := p.refresh(ctx); err != nil {
			if p.cur == nil {
				return File{}, err
			}
			p.log.Error("could not look for newly blocked cards; serving the last published hotlist", "version", p.cur.version, "err", err)
		}
	}
	cur := p.cur
	switch {
	case cur == nil:
		return File{}, fmt.Errorf("%w: validators keep the list they hold and ask again", ErrNoHotlist)
	case since == cur.version:
		return File{Kind: hotlist.KindFull, Version: cur.version, NotModified: true}, nil
	case since > cur.version:
		return File{}, fmt.Errorf("%w: the validator holds version %d, the registry's newest is %d; if the registry database was restored from a backup, "+
			"its card events must pass %d before validators accept a new list (or clear the validators' hotlist directories)",
			ErrAhead, since, cur.version, since)
	case since > 0:
		d, err := p.delta(since)
		if err != nil {
			return File{}, err
		}
		if d != nil {
			return File{Data: d, Kind: hotlist.KindDelta, Version: cur.version, Base: since}, nil
		}
	}
	return File{Data: cur.full, Kind: hotlist.KindFull, Version: cur.version}, nil
}

// refresh implements Refresh; p.mu is held.
func (p *Hotlists) refresh(ctx context.Context) (bool, error) {
	now := p.opt.Now()
	p.checked = now
	fresh := p.cur != nil && now.Sub(p.cur.issued) < p.opt.Refresh
	if p.cur != nil {
		// One indexed row tells whether anything happened; the whole
		// list is read only then.
		evs, err := p.src.CardEvents(ctx, p.seen, 1)
		if err != nil {
			return false, fmt.Errorf("hotlist publisher: look for card events after %d: %w", p.seen, err)
		}
		if len(evs) == 0 && (fresh || p.seen == p.cur.version) {
			return false, nil
		}
	}
	bl, err := p.src.Blocked(ctx)
	if err != nil {
		return false, fmt.Errorf("hotlist publisher: read blocked cards: %w", err)
	}
	if bl.Version == 0 {
		if p.cur != nil {
			return false, nil
		}
		// A new registry: publish the empty list at once, so validators
		// hold a fresh, signed list instead of reporting none. Version 1
		// stays true: the first card event orders a card, which blocks
		// nothing, so the list after it is empty too.
		bl.Version = FirstVersion
	}
	if p.cur != nil && bl.Version < p.cur.version {
		return false, fmt.Errorf("hotlist publisher: the registry's card events end at %d, but version %d was published from this directory; "+
			"was the database restored from a backup? Validators refuse versions older than theirs", bl.Version, p.cur.version)
	}
	p.seen = bl.Version
	if p.cur != nil && bl.Version == p.cur.version {
		return false, nil
	}
	entries := p.entries(bl)
	var st *step
	if p.cur != nil {
		changes := diff(p.cur.entries, entries)
		if len(changes) == 0 && fresh {
			return false, nil
		}
		st = &step{Version: bl.Version, Base: p.cur.version, Issued: now, Changes: changes}
	}
	full, err := hotlist.Build(entries, bl.Version, now, p.opt.Signer, p.opt.KeyVersion)
	if err != nil {
		return false, fmt.Errorf("hotlist publisher: %w", err)
	}
	// Manifests keep milliseconds; keep the same here, so deltas built
	// later say the same time as the full file.
	next := &published{version: bl.Version, issued: now.Truncate(time.Millisecond), entries: entries, full: full}
	if err := p.store(st, next); err != nil {
		return false, err
	}
	if st != nil {
		p.steps = append(p.steps, *st)
	} else {
		p.steps = nil
	}
	p.cur = next
	clear(p.deltas)
	p.prune(now)
	changed := -1
	if st != nil {
		changed = len(st.Changes)
	}
	p.log.Info("hotlist published", "version", next.version, "cards", len(entries), "changed", changed, "deltas_from", len(p.steps))
	return true, nil
}

// entries turns a blocklist into hotlist entries, ascending by card.
func (p *Hotlists) entries(bl registry.Blocklist) []hotlist.Entry {
	out := make([]hotlist.Entry, len(bl.Cards))
	for i, b := range bl.Cards {
		r, err := Reason(b)
		if err != nil {
			// Never drop a card: that would unblock it. The status says
			// enough to block it for the right kind of reason.
			p.log.Warn("blocked card with a reason the hotlist does not know; listed by its status", "card", b.Card, "status", b.Status, "reason", b.Reason, "listed_as", r)
		}
		out[i] = hotlist.Entry{Card: uint64(b.Card), Reason: r}
	}
	slices.SortFunc(out, func(a, b hotlist.Entry) int { return cmp.Compare(a.Card, b.Card) })
	return out
}

// Reason returns the hotlist reason of a blocked card: its registry
// reason, whose names are the hotlist's. A reason the hotlist does not
// know gives the reason that goes with the card's status and an error
// saying so.
func Reason(b registry.BlockedCard) (hotlist.Reason, error) {
	r, err := hotlist.ParseReason(string(b.Reason))
	if err == nil {
		return r, nil
	}
	switch b.Status {
	case registry.StatusLost:
		r = hotlist.ReasonLost
	case registry.StatusStolen:
		r = hotlist.ReasonStolen
	case registry.StatusReplaced:
		r = hotlist.ReasonReplaced
	default:
		r = hotlist.ReasonBlockedByDesk
	}
	return r, fmt.Errorf("card %s: %w", b.Card, err)
}

// change is one card's entry before and after a step; reason 0 means not
// listed.
type change struct {
	Card uint64 `json:"card"`
	Was  uint8  `json:"was"`
	Now  uint8  `json:"now"`
}

// step is what changed from version Base to Version.
type step struct {
	Version uint64    `json:"version"`
	Base    uint64    `json:"base"`
	Issued  time.Time `json:"issued"`
	Changes []change  `json:"changes"` // ascending by card
}

// diff lists the cards whose entry differs between two ascending lists.
func diff(old, next []hotlist.Entry) []change {
	var out []change
	i, j := 0, 0
	for i < len(old) || j < len(next) {
		switch {
		case j == len(next) || (i < len(old) && old[i].Card < next[j].Card):
			out = append(out, change{Card: old[i].Card, Was: uint8(old[i].Reason)})
			i++
		case i == len(old) || next[j].Card < old[i].Card:
			out = append(out, change{Card: next[j].Card, Now: uint8(next[j].Reason)})
			j++
		default:
			if old[i].Reason != next[j].Reason {
				out = append(out, change{Card: old[i].Card, Was: uint8(old[i].Reason), Now: uint8(next[j].Reason)})
			}
			i, j = i+1, j+1
		}
	}
	return out
}

// delta returns the delta from base to the newest version, or nil when
// no chain of steps leads from base or the delta would not be smaller
// than the full list.
func (p *Hotlists) delta(base uint64) ([]byte, error) {
	if d, ok := p.deltas[base]; ok {
		return d, nil
	}
	i := sort.Search(len(p.steps), func(i int) bool { return p.steps[i].Base >= base })
	if i == len(p.steps) || p.steps[i].Base != base {
		return nil, nil // a version this publisher never published, or one whose steps are pruned
	}
	// For each card touched since base: its entry at base (the first
	// step's Was) and now (the last step's Now).
	type span struct{ was, now uint8 }
	touched := map[uint64]*span{}
	for _, s := range p.steps[i:] {
		for _, c := range s.Changes {
			if sp, ok := touched[c.Card]; ok {
				sp.now = c.Now
			} else {
				touched[c.Card] = &span{was: c.Was, now: c.Now}
			}
		}
	}
	var (
		add    []hotlist.Entry
		remove []uint64
	)
	for c, sp := range touched {
		switch {
		case sp.now == sp.was:
		case sp.now != 0:
			add = append(add, hotlist.Entry{Card: c, Reason: hotlist.Reason(sp.now)})
		default:
			remove = append(remove, c)
		}
	}
	d, err := hotlist.BuildDelta(add, remove, base, p.cur.version, p.cur.issued, p.opt.Signer, p.opt.KeyVersion)
	if err != nil {
		return nil, fmt.Errorf("hotlist publisher: %w", err)
	}
	if len(d) >= len(p.cur.full) {
		d = nil // the full list is no bigger: send that
	}
	if len(p.deltas) >= maxCachedDeltas {
		clear(p.deltas)
	}
	p.deltas[base] = d
	return d, nil
}

// validCard reports whether n can be listed; the store only holds valid
// numbers, and a step file read back is checked with it.
func validCard(n uint64) bool { return card.Number(n).Valid() }
