// Package tariffs gives clearing the signed tariffs it re-rates rides
// with (clearing/rerate). Every tariff is verified with the city's
// sign-tariff verify keys before it is kept, exactly as a validator
// verifies one (validator/tariff.Open), and kept as the zip archive the
// registry publishes, so that what clearing re-rates with is what was
// signed. A tariff comes from a signed directory (AddDir, `transit
// clearing tariff add DIR`) or from the registry's publishing endpoint
// (Fetcher, which clearing serve polls), and clearing keeps every version
// it is given: old rides name old versions.
package tariffs

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/validator/tariff"
)

// Store is the part of a clearing store that keeps tariffs.
type Store interface {
	AddTariff(ctx context.Context, t store.TariffFile) (added bool, err error)
	Tariffs(ctx context.Context, withFiles bool) ([]store.TariffFile, error)
}

// Limits of one tariff, as the registry publishes it.
const (
	maxFiles = 64
	maxBytes = store.MaxTariffBytes
)

// Verify checks that zb is a signed tariff that keys verify, and returns
// it as clearing keeps it (Version, Digest, KeyRef and Zip set).
func Verify(ctx context.Context, zb []byte, keys tariff.PublicKeys) (store.TariffFile, error) {
	if len(zb) > maxBytes {
		return store.TariffFile{}, fmt.Errorf("tariff archive of %d bytes: at most %d", len(zb), maxBytes)
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		return store.TariffFile{}, fmt.Errorf("tariff archive: %w", err)
	}
	if len(zr.File) > maxFiles {
		return store.TariffFile{}, fmt.Errorf("tariff archive of %d files: a tariff has at most %d", len(zr.File), maxFiles)
	}
	t, err := tariff.Open(ctx, zr, keys, 0)
	if err != nil {
		return store.TariffFile{}, fmt.Errorf("tariff: %w", err)
	}
	digest, err := tariff.Digest(zr)
	if err != nil {
		return store.TariffFile{}, fmt.Errorf("tariff: %w", err)
	}
	sig, err := zr.Open(tariff.SignatureFile)
	if err != nil {
		return store.TariffFile{}, fmt.Errorf("tariff: %w", err)
	}
	defer sig.Close()
	mb, err := io.ReadAll(io.LimitReader(sig, 4096))
	if err != nil {
		return store.TariffFile{}, fmt.Errorf("tariff: %w", err)
	}
	m, err := tariff.ParseManifest(mb)
	if err != nil {
		return store.TariffFile{}, err
	}
	return store.TariffFile{Version: t.Version, Digest: digest, KeyRef: m.Key.String(), Zip: zb}, nil
}

// Pack packs the flat tariff directory at dir into a zip archive, files
// in name order, as the registry publishes it.
func Pack(dir string) ([]byte, error) {
	zb, err := PackFS(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("tariff %s: %w", dir, err)
	}
	return zb, nil
}

// PackFS is Pack of the tariff at the root of fsys (an embedded one, say).
func PackFS(fsys fs.FS) ([]byte, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	if len(entries) > maxFiles {
		return nil, fmt.Errorf("%d files; a tariff has at most %d", len(entries), maxFiles)
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	total := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("%s is not a plain file; a tariff is one flat directory of files", e.Name())
		}
		data, err := readLimited(fsys, e.Name(), maxBytes-total)
		if err != nil {
			return nil, err
		}
		total += len(data)
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e.Name(), Method: zip.Deflate})
		if err != nil {
			return nil, fmt.Errorf("pack %s: %w", e.Name(), err)
		}
		if _, err := w.Write(data); err != nil {
			return nil, fmt.Errorf("pack %s: %w", e.Name(), err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("pack: %w", err)
	}
	return buf.Bytes(), nil
}

func readLimited(fsys fs.FS, name string, limit int) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("%s makes the tariff larger than %d bytes", name, maxBytes)
	}
	return data, nil
}

// AddDir verifies the signed tariff directory at dir and keeps it;
// added is false when clearing kept that version already.
func AddDir(ctx context.Context, st Store, keys tariff.PublicKeys, dir string, now time.Time) (store.TariffFile, bool, error) {
	zb, err := Pack(dir)
	if err != nil {
		return store.TariffFile{}, false, err
	}
	tf, err := Verify(ctx, zb, keys)
	if err != nil {
		return store.TariffFile{}, false, fmt.Errorf("%s: %w; clearing keeps only tariffs signed with the city's sign-tariff key (transit tariff sign)", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		abs = dir
	}
	tf.Source, tf.Added = "dir:"+filepath.Base(abs), now.UTC()
	added, err := st.AddTariff(ctx, tf)
	return tf, added, err
}

// Newest returns the newest version st keeps, 0 when none.
func Newest(ctx context.Context, st Store) (uint32, error) {
	ts, err := st.Tariffs(ctx, false)
	if err != nil {
		return 0, err
	}
	if len(ts) == 0 {
		return 0, nil
	}
	return ts[len(ts)-1].Version, nil
}

// Fetcher keeps the tariff the registry publishes (GET {URL}/tariff,
// registry/publish): when the registry publishes a version clearing does
// not keep, it is fetched, verified and kept.
type Fetcher struct {
	// URL is the base under which the registry serves the tariff to
	// clearing's service token, https://registry.example/v1 (GET
	// /v1/tariff; validators fetch the same file under /v1/validator with
	// a device signature).
	URL string
	// Keys verifies tariffs. Required.
	Keys tariff.PublicKeys
	// Store keeps them. Required.
	Store Store
	// Client makes the requests; nil is a client with a 30 s timeout.
	Client *http.Client
	// Token is sent as a bearer token: clearing's service token, which
	// the registry requires.
	Token string
	// Log gets a line per tariff kept and per failure; nil is
	// slog.Default().
	Log *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

// ErrRegistry is wrapped by a fetch the registry answered with an error.
var ErrRegistry = errors.New("the registry refused the tariff request")

// Fetch asks the registry for a tariff newer than the newest kept and
// keeps it; version is what the registry publishes and added whether it
// was new to clearing.
func (f *Fetcher) Fetch(ctx context.Context) (version uint32, added bool, err error) {
	since, err := Newest(ctx, f.Store)
	if err != nil {
		return 0, false, err
	}
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return 0, false, fmt.Errorf("registry URL %q: want http(s)://host/path", f.URL)
	}
	u = u.JoinPath("tariff")
	q := u.Query()
	q.Set("since", strconv.FormatUint(uint64(since), 10))
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, false, err
	}
	if f.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.Token)
	}
	client := f.Client
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, false, fmt.Errorf("fetch the tariff from %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return since, false, nil
	case http.StatusConflict:
		// Clearing keeps a newer version than the registry publishes
		// (added by hand): nothing to fetch.
		return since, false, nil
	case http.StatusOK:
	default:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, false, fmt.Errorf("%w: %s answered %s: %s", ErrRegistry, u.Redacted(), resp.Status, bytes.TrimSpace(msg))
	}
	zb, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return 0, false, fmt.Errorf("fetch the tariff from %s: %w", u.Redacted(), err)
	}
	tf, err := Verify(ctx, zb, f.Keys)
	if err != nil {
		return 0, false, fmt.Errorf("the tariff %s publishes: %w", u.Redacted(), err)
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	tf.Source, tf.Added = "registry:"+u.Host, now().UTC()
	added, err = f.Store.AddTariff(ctx, tf)
	if err != nil {
		return 0, false, err
	}
	if added {
		f.log().Info("tariff kept", "version", tf.Version, "key", tf.KeyRef, "from", u.Host)
	}
	return tf.Version, added, nil
}

// Run fetches every interval until ctx ends, logging failures; it
// returns ctx's error.
func (f *Fetcher) Run(ctx context.Context, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, _, err := f.Fetch(ctx); err != nil && ctx.Err() == nil {
			f.log().Error("fetching the registry's tariff failed; trying again", "err", err, "in", every)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (f *Fetcher) log() *slog.Logger {
	if f.Log != nil {
		return f.Log
	}
	return slog.Default()
}
