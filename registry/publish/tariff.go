package publish

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/citycard/transit/validator/tariff"
)

// Limits on the tariff directory, well above any city's (kilobytes) and
// at most what validators unpack (validator/update.MaxTariff).
const (
	maxTariffFiles = 64
	maxTariffBytes = 16 << 20
)

// Tariff publishes a signed tariff directory as the zip archive
// validators fetch. It re-reads the directory when its tariff.sig
// changes, so a newly signed tariff is published without a restart; a
// directory that does not verify, or holds an older version than the one
// published, is refused and the published one stays. It is safe for
// concurrent use.
type Tariff struct {
	dir  string
	keys tariff.PublicKeys
	log  *slog.Logger

	mu    sync.Mutex
	cur   *tariffZip
	stamp sigStamp // of the directory's tariff.sig when last read
}

type tariffZip struct {
	version uint32
	zip     []byte
}

// sigStamp identifies a version of tariff.sig without reading it.
type sigStamp struct {
	mod  time.Time
	size int64
}

// OpenTariff reads, verifies and packs the signed tariff in dir. keys
// holds the sign-tariff verify keys (the registry's HSM).
func OpenTariff(ctx context.Context, dir string, keys tariff.PublicKeys, log *slog.Logger) (*Tariff, error) {
	if keys == nil {
		return nil, errors.New("tariff publisher: no verify keys")
	}
	if log == nil {
		log = slog.Default()
	}
	t := &Tariff{dir: dir, keys: keys, log: log.With("component", "tariff publisher", "dir", dir)}
	st, err := t.sigStamp()
	if err != nil {
		return nil, err
	}
	z, err := t.read(ctx)
	if err != nil {
		return nil, err
	}
	t.cur, t.stamp = z, st
	t.log.Info("tariff published", "version", z.version, "bytes", len(z.zip))
	return t, nil
}

// Version returns the published tariff version.
func (t *Tariff) Version() uint32 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur.version
}

// Get returns the zip of the published tariff and its version, or
// notModified when since is that version. A since above it is an error:
// the validator holds a newer tariff than the registry publishes.
func (t *Tariff) Get(ctx context.Context, since uint32) (zip []byte, version uint32, notModified bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.reloadIfChanged(ctx)
	switch {
	case since == t.cur.version:
		return nil, t.cur.version, true, nil
	case since > t.cur.version:
		return nil, 0, false, fmt.Errorf("%w: the validator holds tariff version %d, the registry publishes %d; sign and publish a tariff of version %d or later",
			ErrAhead, since, t.cur.version, since+1)
	}
	return t.cur.zip, t.cur.version, false, nil
}

// reloadIfChanged re-reads the directory when tariff.sig changed since
// the last read; t.mu is held.
func (t *Tariff) reloadIfChanged(ctx context.Context) {
	st, err := t.sigStamp()
	if err != nil || st == t.stamp {
		if err != nil {
			t.log.Error("tariff directory unreadable; publishing the tariff read before", "version", t.cur.version, "err", err)
		}
		return
	}
	z, err := t.read(ctx)
	if err == nil && z.version < t.cur.version {
		err = fmt.Errorf("version %d is older than the published %d, and validators refuse older tariffs", z.version, t.cur.version)
	}
	if err != nil {
		// Mark it read so the same broken directory is not re-read on
		// every request; the next change of tariff.sig tries again.
		t.stamp = st
		t.log.Error("new tariff refused; publishing the previous one", "version", t.cur.version, "err", err)
		return
	}
	t.cur, t.stamp = z, st
	t.log.Info("tariff published", "version", z.version, "bytes", len(z.zip))
}

func (t *Tariff) sigStamp() (sigStamp, error) {
	fi, err := os.Stat(filepath.Join(t.dir, tariff.SignatureFile))
	if err != nil {
		return sigStamp{}, fmt.Errorf("tariff publisher: %w; sign the tariff first (transit tariff sign %s)", err, t.dir)
	}
	return sigStamp{fi.ModTime(), fi.Size()}, nil
}

// read packs the directory into a zip and verifies the zip as a validator
// will, so what is published is exactly what was verified.
func (t *Tariff) read(ctx context.Context) (*tariffZip, error) {
	entries, err := os.ReadDir(t.dir)
	if err != nil {
		return nil, fmt.Errorf("tariff publisher: %w", err)
	}
	if len(entries) > maxTariffFiles {
		return nil, fmt.Errorf("tariff publisher: %s holds %d files; a tariff has at most %d", t.dir, len(entries), maxTariffFiles)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	total := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("tariff publisher: %s in %s is not a plain file; a tariff is one flat directory of files", e.Name(), t.dir)
		}
		data, err := readLimited(filepath.Join(t.dir, e.Name()), maxTariffBytes-total)
		if err != nil {
			return nil, fmt.Errorf("tariff publisher: %w", err)
		}
		total += len(data)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.Name(), Method: zip.Deflate})
		if err != nil {
			return nil, fmt.Errorf("tariff publisher: pack %s: %w", e.Name(), err)
		}
		if _, err := w.Write(data); err != nil {
			return nil, fmt.Errorf("tariff publisher: pack %s: %w", e.Name(), err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("tariff publisher: pack: %w", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		return nil, fmt.Errorf("tariff publisher: read back the archive: %w", err)
	}
	tf, err := tariff.Open(ctx, zr, t.keys, 0)
	if err != nil {
		return nil, fmt.Errorf("tariff publisher: %s: %w; publish only a tariff signed with the city's sign-tariff key (transit tariff sign)", t.dir, err)
	}
	return &tariffZip{version: tf.Version, zip: buf.Bytes()}, nil
}

// readLimited reads a file of at most limit bytes.
func readLimited(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s: the tariff is larger than %d bytes", path, maxTariffBytes)
	}
	return data, nil
}
