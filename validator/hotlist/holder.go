package hotlist

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/citycard/transit/validator/fare"
)

// DefaultMaxAge is the MaxAge of a zero Config: two missed daily
// publications.
const DefaultMaxAge = 48 * time.Hour

const (
	fileSuffix = ".hotlist"
	tempPrefix = ".hotlist-"
	tempSuffix = ".tmp"
	// versionDigits zero-pads names so that they sort by version.
	versionDigits = 20
)

// Config says where a Holder keeps its files and when its list is stale.
type Config struct {
	// Dir holds every accepted file since the newest full one, named
	// <version>.hotlist. It is created if missing.
	Dir string
	// MaxAge is how old a list may be before Stale reports it
	// (DefaultMaxAge if zero). A stale list is still used; see the package
	// comment.
	MaxAge time.Duration
	// Log receives what Open skipped and why (slog.Default() if nil).
	Log *slog.Logger
}

// Holder holds the validator's current hotlist. Readers never block:
// Contains, Lookup and Current read an atomic pointer, and Apply swaps in
// a complete new List. It implements fare.Hotlist.
type Holder struct {
	dir    string
	maxAge time.Duration
	log    *slog.Logger

	cur atomic.Pointer[List]
	mu  sync.Mutex // serialises Apply, so each file is checked against the list it will replace
}

// Open loads the newest list from cfg.Dir, verifying every file again with
// keys: the newest full file that verifies, then the deltas that follow
// it. Files that do not verify or do not fit are logged and skipped, so a
// damaged file costs an older list, not the validator. With no usable
// file the Holder holds no list (version 0, blocks nothing) until Apply.
func Open(ctx context.Context, cfg Config, keys KeyLookup) (*Holder, error) {
	if cfg.Dir == "" {
		return nil, errors.New("hotlist: no directory configured for hotlist files")
	}
	if cfg.MaxAge < 0 {
		return nil, fmt.Errorf("hotlist: max age %v is negative", cfg.MaxAge)
	}
	h := &Holder{dir: cfg.Dir, maxAge: cfg.MaxAge, log: cfg.Log}
	if h.maxAge == 0 {
		h.maxAge = DefaultMaxAge
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return nil, fmt.Errorf("hotlist directory: %w", err)
	}
	versions, err := h.scan()
	if err != nil {
		return nil, err
	}
	var cur *List
	start := len(versions)
	for start > 0 && cur == nil {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		start--
		data, err := h.read(versions[start])
		if err == nil && len(data) > 10 && Kind(data[10]) != KindFull {
			continue // a delta, used below if its base is loaded
		}
		if err == nil {
			cur, err = Load(data, keys)
		}
		if err != nil {
			h.log.Warn("hotlist file skipped", "file", h.path(versions[start]), "err", err)
		}
	}
	if cur == nil {
		h.log.Warn("no usable hotlist file; blocking no card until one is applied", "dir", h.dir)
		return h, nil
	}
	for _, v := range versions[start+1:] {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		data, err := h.read(v)
		if err == nil {
			var next *List
			if next, err = cur.Apply(data, keys); err == nil {
				cur = next
			}
		}
		if err != nil {
			h.log.Warn("hotlist file skipped", "file", h.path(v), "err", err)
		}
	}
	h.cur.Store(cur)
	h.prune(cur)
	return h, nil
}

// Apply verifies a full or delta file against the loaded list (see
// [List.Apply]), stores it in the directory and makes it current. The file
// is on disk before any tap sees the new list, so a restart comes back to
// the same list. An ErrRollback for a file of the same version as the
// loaded one means there is nothing new.
func (h *Holder) Apply(ctx context.Context, data []byte, keys KeyLookup) (Manifest, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next, err := h.cur.Load().Apply(data, keys)
	if err != nil {
		return Manifest{}, err
	}
	if err := ctx.Err(); err != nil {
		return Manifest{}, err
	}
	if err := writeAtomic(h.dir, h.path(next.m.Version), data); err != nil {
		return Manifest{}, fmt.Errorf("store hotlist version %d: %w", next.m.Version, err)
	}
	h.cur.Store(next)
	h.prune(next)
	return next.m, nil
}

// Current returns the list in use now. A caller that both decides and
// records the version (the tap) takes one Current and uses it for both,
// so the recorded version is the one that decided.
func (h *Holder) Current() *List { return h.cur.Load() }

// Contains reports whether card is on the current list.
func (h *Holder) Contains(card uint64) bool { return h.cur.Load().Contains(card) }

// Listing says how the current list treats card's rides. It implements
// fare.Hotlist.
func (h *Holder) Listing(card uint64) fare.Listing { return h.cur.Load().Listing(card) }

// Lookup returns why card is on the current list, and false if it is not.
func (h *Holder) Lookup(card uint64) (Reason, bool) { return h.cur.Load().Lookup(card) }

// Version returns the current list's version, 0 if none is loaded.
func (h *Holder) Version() uint64 { return h.cur.Load().Version() }

// IssuedAt returns when the current list was issued, the zero time if
// none is loaded.
func (h *Holder) IssuedAt() time.Time { return h.cur.Load().IssuedAt() }

// MaxAge returns the age beyond which the list is stale.
func (h *Holder) MaxAge() time.Duration { return h.maxAge }

// Age returns how long before now the current list was issued. With no
// list it returns the largest Duration, so that every age check fires.
func (h *Holder) Age(now time.Time) time.Duration { return age(h.cur.Load(), now) }

func age(l *List, now time.Time) time.Duration {
	if l == nil {
		return math.MaxInt64
	}
	return now.Sub(l.IssuedAt())
}

// Stale reports whether the current list is older than MaxAge, or whether
// there is none. The validator keeps deciding with a stale list; see the
// package comment.
func (h *Holder) Stale(now time.Time) bool { return age(h.cur.Load(), now) > h.maxAge }

func (h *Holder) path(version uint64) string {
	return filepath.Join(h.dir, fmt.Sprintf("%0*d%s", versionDigits, version, fileSuffix))
}

// scan returns the versions of the files in the directory, ascending, and
// removes temp files a crash left behind.
func (h *Holder) scan() ([]uint64, error) {
	ents, err := os.ReadDir(h.dir)
	if err != nil {
		return nil, fmt.Errorf("hotlist directory: %w", err)
	}
	var versions []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) && strings.HasSuffix(name, tempSuffix) {
			if err := os.Remove(filepath.Join(h.dir, name)); err != nil {
				h.log.Warn("hotlist temp file not removed", "file", name, "err", err)
			}
			continue
		}
		digits, ok := strings.CutSuffix(name, fileSuffix)
		if !ok || len(digits) != versionDigits || !e.Type().IsRegular() {
			continue
		}
		if v, err := strconv.ParseUint(digits, 10, 64); err == nil && v > 0 {
			versions = append(versions, v)
		}
	}
	slices.Sort(versions)
	return versions, nil
}

// maxFileSize bounds what read takes into memory: the largest file
// MaxEntries adds and removes could need.
// It is an int64: it exceeds a 32-bit int (the validator also runs on
// 32-bit ARM).
const maxFileSize int64 = headerSize + 2*10*MaxEntries + MaxEntries

func (h *Holder) read(version uint64) ([]byte, error) {
	f, err := os.Open(h.path(version))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > maxFileSize {
		return nil, fmt.Errorf("%w: file larger than %d bytes", ErrMalformed, maxFileSize)
	}
	return data, nil
}

// prune removes files the current list no longer needs: everything older
// than the full file it grew from.
func (h *Holder) prune(cur *List) {
	versions, err := h.scan()
	if err != nil {
		h.log.Warn("hotlist files not pruned", "err", err)
		return
	}
	for _, v := range versions {
		if v >= cur.full {
			break
		}
		if err := os.Remove(h.path(v)); err != nil {
			h.log.Warn("old hotlist file not removed", "file", h.path(v), "err", err)
		}
	}
}

// writeAtomic replaces dir/path with data so that a power cut leaves the
// old file or the new one, never a part: temp file, fsync, rename, fsync
// of the directory.
func writeAtomic(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, tempPrefix+"*"+tempSuffix)
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
