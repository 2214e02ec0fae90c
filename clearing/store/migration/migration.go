// Package migration reads the numbered SQL migrations a store embeds. It
// depends on the standard library only, so both the clearing and the
// registry stores share it without taking anything else along.
//
// A migration is a file NNNN_description.sql; versions run 1, 2, 3...
// without gaps. A released file is never edited: a database that applied
// it would not see the change.
package migration

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one schema step.
type Migration struct {
	Version int
	Name    string // the file name
	SQL     string
}

// Load returns the migrations in dir of fsys in version order, refusing
// badly named files and gaps.
func Load(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("embedded migration %q: name must be NNNN_description.sql", e.Name())
		}
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read embedded migration %s: %w", e.Name(), err)
		}
		ms = append(ms, Migration{Version: v, Name: e.Name(), SQL: string(body)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i := range ms {
		if ms[i].Version != i+1 {
			return nil, fmt.Errorf("embedded migration %s: versions must run 1, 2, 3... without gaps", ms[i].Name)
		}
	}
	return ms, nil
}
