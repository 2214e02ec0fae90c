package publish

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/citycard/transit/validator/hotlist"
)

// Files in Options.Dir: <version>.full is the newest full hotlist as
// served, <version>.step the step that led to that version (JSON).
// Versions are zero-padded so that names sort by version.
const (
	fullSuffix = ".full"
	stepSuffix = ".step"
	tempPrefix = ".tmp-"
)

func fileName(version uint64, suffix string) string { return fmt.Sprintf("%020d%s", version, suffix) }

func (p *Hotlists) path(version uint64, suffix string) string {
	return filepath.Join(p.opt.Dir, fileName(version, suffix))
}

// load restores the newest version and its chain of steps from the
// directory. What cannot be used is logged and removed, except full files
// that do not verify, which are left for a person to look at.
func (p *Hotlists) load(ctx context.Context) error {
	if err := os.MkdirAll(p.opt.Dir, 0o755); err != nil {
		return fmt.Errorf("hotlist publisher: directory: %w", err)
	}
	entries, err := os.ReadDir(p.opt.Dir)
	if err != nil {
		return fmt.Errorf("hotlist publisher: %w", err)
	}
	var fulls, steps []uint64
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, tempPrefix) {
			p.remove(name, "an interrupted write")
			continue
		}
		for _, suffix := range []string{fullSuffix, stepSuffix} {
			num, ok := strings.CutSuffix(name, suffix)
			if !ok {
				continue
			}
			v, err := strconv.ParseUint(num, 10, 64)
			if err != nil || v == 0 || name != fileName(v, suffix) {
				continue // not ours
			}
			if suffix == fullSuffix {
				fulls = append(fulls, v)
			} else {
				steps = append(steps, v)
			}
		}
	}
	slices.Sort(fulls)
	var cur *published
	for i := len(fulls) - 1; i >= 0 && cur == nil; i-- {
		if err := ctx.Err(); err != nil {
			return err
		}
		v := fulls[i]
		data, err := os.ReadFile(p.path(v, fullSuffix))
		if err != nil {
			return fmt.Errorf("hotlist publisher: %w", err)
		}
		f, err := hotlist.Decode(data, p.opt.Keys)
		switch {
		case err != nil:
			p.log.Warn("published hotlist skipped: it does not verify", "file", fileName(v, fullSuffix), "err", err)
			continue
		case f.Kind != hotlist.KindFull || f.Version != v:
			p.log.Warn("published hotlist skipped: not the full list its name says", "file", fileName(v, fullSuffix), "kind", f.Kind, "version", f.Version)
			continue
		}
		cur = &published{version: v, issued: f.Issued, entries: f.Add, full: data}
		for _, older := range fulls[:i] {
			p.remove(fileName(older, fullSuffix), "superseded")
		}
	}
	if cur == nil {
		for _, v := range steps {
			p.remove(fileName(v, stepSuffix), "no published list to lead to")
		}
		return nil
	}
	chain := p.loadChain(cur, steps)
	p.cur, p.steps, p.seen = cur, chain, cur.version
	p.log.Info("hotlist publisher resumed", "version", cur.version, "cards", len(cur.entries), "deltas_from", len(chain))
	return nil
}

// loadChain reads the steps that lead to cur, newest first back to the
// first gap, and removes every other step file.
func (p *Hotlists) loadChain(cur *published, versions []uint64) []step {
	byVersion := map[uint64]step{}
	for _, v := range versions {
		if v > cur.version {
			continue // written before a crash that kept its full file from being written
		}
		s, err := p.readStep(v)
		if err != nil {
			p.log.Warn("hotlist step skipped", "file", fileName(v, stepSuffix), "err", err)
			continue
		}
		byVersion[v] = s
	}
	var chain []step
	for v := cur.version; ; {
		s, ok := byVersion[v]
		if !ok {
			break
		}
		chain = append(chain, s)
		delete(byVersion, v)
		v = s.Base
	}
	slices.Reverse(chain)
	if !chainEndsAt(chain, cur.entries) {
		p.log.Warn("hotlist steps do not lead to the published list; deltas start from the next version", "version", cur.version)
		chain = nil
	}
	keep := map[uint64]bool{}
	for _, s := range chain {
		keep[s.Version] = true
	}
	for _, v := range versions {
		if !keep[v] {
			p.remove(fileName(v, stepSuffix), "not on the chain to the published list")
		}
	}
	return chain
}

// chainEndsAt checks that the last entry each step gives a card is the
// card's entry in the list: a damaged or foreign step file must not make
// deltas that say something else than the full list.
func chainEndsAt(chain []step, entries []hotlist.Entry) bool {
	last := map[uint64]uint8{}
	for _, s := range chain {
		for _, c := range s.Changes {
			last[c.Card] = c.Now
		}
	}
	for c, now := range last {
		i, found := slices.BinarySearchFunc(entries, c, func(e hotlist.Entry, c uint64) int { return cmp.Compare(e.Card, c) })
		var have uint8
		if found {
			have = uint8(entries[i].Reason)
		}
		if have != now {
			return false
		}
	}
	return true
}

// readStep reads and checks one step file.
func (p *Hotlists) readStep(v uint64) (step, error) {
	data, err := os.ReadFile(p.path(v, stepSuffix))
	if err != nil {
		return step{}, err
	}
	var s step
	if err := json.Unmarshal(data, &s); err != nil {
		return step{}, err
	}
	switch {
	case s.Version != v:
		return step{}, fmt.Errorf("holds version %d", s.Version)
	case s.Base == 0 || s.Base >= s.Version:
		return step{}, fmt.Errorf("base %d does not precede version %d", s.Base, s.Version)
	}
	for i, c := range s.Changes {
		switch {
		case !validCard(c.Card):
			return step{}, fmt.Errorf("change %d: %d is not a card number", i, c.Card)
		case i > 0 && s.Changes[i-1].Card >= c.Card:
			return step{}, fmt.Errorf("change %d: cards out of order", i)
		case c.Was == c.Now:
			return step{}, fmt.Errorf("change %d: card %d does not change", i, c.Card)
		case (c.Was != 0 && !hotlist.Reason(c.Was).Known()) || (c.Now != 0 && !hotlist.Reason(c.Now).Known()):
			return step{}, fmt.Errorf("change %d: unknown reason", i)
		}
	}
	return s, nil
}

// store writes the step (if any), then the new full file, then drops the
// old full file. A crash between the writes leaves a step beyond the
// newest full file, which load removes: the version was never served.
func (p *Hotlists) store(st *step, next *published) error {
	if st != nil {
		js, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("hotlist publisher: encode step to %d: %w", st.Version, err)
		}
		if err := writeAtomic(p.opt.Dir, p.path(st.Version, stepSuffix), js); err != nil {
			return fmt.Errorf("hotlist publisher: store step to %d: %w; check the hotlist directory", st.Version, err)
		}
	}
	if err := writeAtomic(p.opt.Dir, p.path(next.version, fullSuffix), next.full); err != nil {
		return fmt.Errorf("hotlist publisher: store version %d: %w; check the hotlist directory", next.version, err)
	}
	if p.cur != nil {
		p.remove(fileName(p.cur.version, fullSuffix), "superseded")
	}
	return nil
}

// prune drops the oldest steps beyond Options.KeepFor and MaxSteps.
func (p *Hotlists) prune(now time.Time) {
	n := 0
	for n < len(p.steps) && (len(p.steps)-n > p.opt.MaxSteps || now.Sub(p.steps[n].Issued) > p.opt.KeepFor) {
		p.remove(fileName(p.steps[n].Version, stepSuffix), "older than the deltas kept")
		n++
	}
	p.steps = slices.Delete(p.steps, 0, n)
}

// remove deletes a file of the directory; a failure costs disk space,
// not correctness, so it is logged.
func (p *Hotlists) remove(name, why string) {
	if err := os.Remove(filepath.Join(p.opt.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		p.log.Warn("could not remove an old hotlist file", "file", name, "why", why, "err", err)
	}
}

// writeAtomic writes data to path through a synced temporary file and a
// rename, so a reader or a restart sees the old file or the new one.
func writeAtomic(dir, path string, data []byte) error {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
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
