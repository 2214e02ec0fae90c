package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/citycard/transit/clearing/store/sqlitefile"
)

// sqlitePath returns the file of a sqlite:FILE database flag. An empty
// file or ":memory:" is a usage error: either would be a temporary
// database that vanishes with the process, and a report over it says
// zero.
func sqlitePath(flag, db string) (string, error) {
	path := strings.TrimPrefix(db, "sqlite:")
	switch path {
	case "":
		return "", usagef("%s %q names no file: give %s sqlite:FILE, e.g. sqlite:clearing.db", flag, db, flag)
	case sqlitefile.Memory:
		return "", usagef("%s %q is a database that vanishes when the command ends: give a file, sqlite:FILE", flag, db)
	}
	return path, nil
}

// missingDB turns the error of opening a database file that does not
// exist into one line that says what to do; other errors pass as they
// are.
func missingDB(flag, db string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s %s: the file does not exist; check the path (this command never creates a database)", flag, db)
	}
	return err
}
