package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/citycard/transit/clearing/store/sqlitefile"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
)

// TestFile: an empty path is no temporary store, a report's open never
// creates a file, and the file is the owner's only.
func TestFile(t *testing.T) {
	ctx := context.Background()
	if _, err := sqlite.Open(ctx, "", store.Options{}); !errors.Is(err, sqlitefile.ErrNoPath) {
		t.Errorf(`Open("") = %v, want ErrNoPath`, err)
	}
	path := filepath.Join(t.TempDir(), "registry.db")
	if _, err := sqlite.OpenExisting(ctx, path, store.Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenExisting(missing) = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenExisting created %s", path)
	}
	s, err := sqlite.Open(ctx, path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != sqlitefile.Mode {
		t.Errorf("new store file: %v, %v; want %v", fi.Mode().Perm(), err, sqlitefile.Mode)
	}
	s, err = sqlite.OpenExisting(ctx, path, store.Options{})
	if err != nil {
		t.Fatalf("OpenExisting(existing) = %v", err)
	}
	s.Close()
}
