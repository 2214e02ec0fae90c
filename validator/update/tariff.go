package update

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/tariff"
)

// MaxTariff bounds a tariff once unpacked: a city's tariff is kilobytes.
const MaxTariff = 16 << 20

// TariffUser is the validator that prices rides (*agent.Agent).
type TariffUser interface {
	CurrentTariff() *fare.Tariff
	SetTariff(*fare.Tariff)
}

// TariffFetcher polls the publisher for a newer signed tariff, verifies
// it, stores it in Dir (so a restart uses it) and puts it in force.
type TariffFetcher struct {
	Base   string
	Client *http.Client
	// Auth signs each request (see Fetcher.Auth).
	Auth RequestSigner
	// Dir is the validator's tariff directory (its configuration's
	// "tariff"); it is replaced as a whole.
	Dir  string
	Keys tariff.PublicKeys
	User TariffUser
	// Interval, MinBackoff and MaxBackoff are the polling schedule, as
	// for Fetcher.
	Interval   time.Duration
	MinBackoff time.Duration
	MaxBackoff time.Duration
	Log        *slog.Logger
}

// Once fetches and applies a newer tariff; it returns whether one was
// applied.
func (f *TariffFetcher) Once(ctx context.Context) (bool, error) {
	cur := f.User.CurrentTariff()
	var loaded uint32
	if cur != nil {
		loaded = cur.Version
	}
	q := url.Values{"since": {strconv.FormatUint(uint64(loaded), 10)}}
	data, err := get(ctx, f.Client, f.Auth, f.Base, "tariff", q)
	if err != nil || data == nil {
		return false, err
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return false, fmt.Errorf("tariff from %s is not a zip archive: %w", f.Base, err)
	}
	var size uint64
	for _, zf := range zr.File {
		size += zf.UncompressedSize64
	}
	if size > MaxTariff {
		return false, fmt.Errorf("tariff from %s unpacks to %d bytes, more than %d: %w", f.Base, size, MaxTariff, ErrStatus)
	}
	tf, err := tariff.Open(ctx, zr, f.Keys, loaded)
	if err != nil {
		return false, fmt.Errorf("tariff from %s: %w", f.Base, err)
	}
	if tf.Version == loaded {
		return false, nil
	}
	if err := replaceDir(f.Dir, zr); err != nil {
		return false, fmt.Errorf("store tariff version %d: %w", tf.Version, err)
	}
	f.User.SetTariff(tf)
	f.log().Info("tariff updated", "version", tf.Version, "previous", loaded)
	return true, nil
}

// Run polls until ctx ends and returns ctx's error.
func (f *TariffFetcher) Run(ctx context.Context) error {
	return poll(ctx, "tariff", f.Once, newSchedule(f.Interval, f.MinBackoff, f.MaxBackoff), f.log())
}

func (f *TariffFetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}

// replaceDir writes the files of zr into a new directory beside dir and
// swaps it in with renames, so dir is always a whole tariff: the old one or
// the new one. RecoverDir finishes a swap a crash interrupted.
func replaceDir(dir string, zr *zip.Reader) error {
	next, old := dir+".next", dir+".old"
	if err := os.RemoveAll(next); err != nil {
		return err
	}
	if err := os.MkdirAll(next, 0o755); err != nil {
		return err
	}
	for _, zf := range zr.File {
		name := filepath.Base(zf.Name)
		if zf.FileInfo().IsDir() || name != zf.Name || !filepath.IsLocal(name) {
			return fmt.Errorf("tariff archive entry %q: want plain files at the top level", zf.Name)
		}
		if err := writeSynced(filepath.Join(next, name), zf); err != nil {
			return err
		}
	}
	if err := syncDir(next); err != nil {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		return err
	}
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Rename(next, dir); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(dir)); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// RecoverDir completes a tariff swap that a power cut interrupted between
// its two renames: dir is missing and dir.next is whole.
func RecoverDir(dir string) error {
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, cand := range []string{dir + ".next", dir + ".old"} {
		if _, err := os.Stat(cand); err == nil {
			return os.Rename(cand, dir)
		}
	}
	return nil
}

func writeSynced(path string, zf *zip.File) error {
	r, err := zf.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, io.LimitReader(r, MaxTariff)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
