// Package tariff reads the tariff a validator prices rides with: a
// directory of CSV files modelled on GTFS-Fares v2 (networks.txt,
// fare_products.txt, fare_leg_rules.txt, fare_transfer_rules.txt,
// timeframes.txt, calendar.txt, rider_categories.txt) plus extension files
// prefixed x_ for what GTFS lacks (x_tariff.txt, x_carriers.txt,
// x_routes.txt, x_benefits.txt, x_passes.txt). FORMAT.md in this directory
// documents every file and column.
//
// Parse and Load turn a directory into a fare.Tariff, refusing anything
// that cannot be right with an *Error naming the file, line and column;
// every such error wraps ErrInvalid.
//
// A tariff from outside is signed: tariff.sig in the directory is a
// manifest with the tariff's version and the SHA-256 Digest of its files,
// signed with the hsm key sign-tariff@N (Sign). Open and LoadSigned verify
// it (Verify) before they parse anything and refuse a version older than
// the one in use (ErrRollback); Load refuses a signed directory, so a
// signature is never skipped by mistake.
package tariff

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/citycard/transit/validator/fare"
)

// Errors a caller can test with errors.Is.
var (
	// ErrInvalid is wrapped by every error about the tariff's content.
	ErrInvalid = errors.New("invalid tariff")
	// ErrSigned: Load was given a signed tariff; use LoadSigned, which
	// checks the signature.
	ErrSigned = errors.New("the tariff is signed: load it with its verify keys so that the signature is checked")
	// ErrSignature: tariff.sig is missing, does not match the files, or is
	// not a valid signature by a known sign-tariff key.
	ErrSignature = errors.New("tariff signature does not verify")
	// ErrRollback: the tariff is older than the one in use.
	ErrRollback = errors.New("tariff is older than the loaded one")
)

// file is one file of a tariff directory.
type file struct {
	name string
	data []byte
}

// readDir reads every file of the tariff directory at the root of fsys,
// sorted by name. A tariff is flat: a subdirectory is an error.
func readDir(fsys fs.FS) ([]file, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("read tariff directory: %w", err)
	}
	if len(entries) > maxFiles {
		return nil, &Error{File: ".", Msg: fmt.Sprintf("%d files: a tariff has at most %d", len(entries), maxFiles)}
	}
	files := make([]file, 0, len(entries))
	for _, e := range entries { // fs.ReadDir sorts by name
		if e.IsDir() {
			return nil, fileErr(e.Name(), "a directory: a tariff is one flat directory of files")
		}
		data, err := readFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		files = append(files, file{e.Name(), data})
	}
	return files, nil
}

func readFile(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read tariff file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read tariff file %s: %w", name, err)
	}
	if len(data) > maxFileBytes {
		return nil, fileErr(name, "larger than %d bytes", maxFileBytes)
	}
	return data, nil
}

// Parse reads and checks the tariff directory at the root of fsys. It
// ignores tariff.sig and does not check signatures: use Open for a tariff
// from outside.
func Parse(fsys fs.FS) (*fare.Tariff, error) {
	files, err := readDir(fsys)
	if err != nil {
		return nil, err
	}
	return build(files)
}

// Load reads and checks the unsigned tariff directory at path, for
// development and the demo. A directory holding tariff.sig is refused
// with ErrSigned: load it with LoadSigned.
func Load(path string) (*fare.Tariff, error) {
	files, err := readPath(path)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.name == SignatureFile {
			return nil, fmt.Errorf("tariff %s: %w", path, ErrSigned)
		}
	}
	t, err := build(files)
	if err != nil {
		return nil, fmt.Errorf("tariff %s: %w", path, err)
	}
	return t, nil
}

func readPath(path string) ([]file, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tariff: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("tariff %s: not a directory: a tariff is a directory of CSV files (validator/tariff/FORMAT.md): %w",
			path, ErrInvalid)
	}
	files, err := readDir(os.DirFS(path))
	if err != nil {
		return nil, fmt.Errorf("tariff %s: %w", path, err)
	}
	return files, nil
}
