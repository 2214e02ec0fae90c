// Package sqlitefile prepares the file of an embedded SQLite store, the
// clearing's and the registry's alike: it refuses an empty path (SQLite
// would silently open a temporary database that vanishes), refuses a
// missing file unless the caller means to create one, and keeps the
// database and its -wal and -shm files readable by their owner only
// (0600), whatever the umask: they hold personal data and public money.
//
// SQLite itself gives the -wal and -shm files the permissions of the
// database file, so a database created 0600 keeps them so; Prepare
// tightens files left wider by an older build.
package sqlitefile

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// Memory is the path of an in-memory database, which lives as long as
// its connection: for tests, never for a service's data.
const Memory = ":memory:"

// Mode is the permission of every file of a store.
const Mode fs.FileMode = 0o600

// ErrNoPath is returned for an empty path.
var ErrNoPath = errors.New("no database file given")

// Sidecars are the suffixes of the files SQLite keeps beside a database
// in WAL mode (and the rollback journal, should one be left over).
var Sidecars = []string{"-wal", "-shm", "-journal"}

// Prepare checks path before SQLite opens it. With create, a missing
// file is created empty with Mode; without, a missing file is an error
// wrapping fs.ErrNotExist. An existing file and its sidecars are given
// Mode if they have wider permissions. Memory is accepted as it is.
func Prepare(path string, create bool) error {
	switch path {
	case "":
		return ErrNoPath
	case Memory:
		return nil
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && create:
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, Mode)
		if errors.Is(err, fs.ErrExist) {
			return Prepare(path, create) // another process made it first
		}
		if err != nil {
			return fmt.Errorf("create %s: %w", path, err)
		}
		// The umask may have taken bits away (0277 leaves 0400, which
		// SQLite cannot write); set exactly Mode.
		err = f.Chmod(Mode)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return fmt.Errorf("create %s: %w", path, err)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s does not exist (%w): check the path", path, fs.ErrNotExist)
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s is a directory, not a database file", path)
	}
	for _, p := range append([]string{path}, sidecars(path)...) {
		if err := tighten(p); err != nil {
			return err
		}
	}
	return nil
}

func sidecars(path string) []string {
	out := make([]string, len(Sidecars))
	for i, s := range Sidecars {
		out[i] = path + s
	}
	return out
}

// tighten gives an existing file Mode when it allows more.
func tighten(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&^Mode == 0 {
		return nil
	}
	if err := os.Chmod(path, Mode); err != nil {
		return fmt.Errorf("%s is readable by others (%v) and cannot be made private: %w", path, fi.Mode().Perm(), err)
	}
	return nil
}

// DSN returns the modernc.org/sqlite data source name of path with the
// query params (without "?"). A file that must exist is opened with
// mode=rw, so that SQLite never creates it either.
func DSN(path string, create bool, params string) string {
	dsn := "file:" + url.PathEscape(path) + "?" + params
	if path != Memory && !create {
		dsn += "&mode=rw"
	}
	return dsn
}
