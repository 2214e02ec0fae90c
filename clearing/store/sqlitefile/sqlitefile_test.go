//go:build unix

package sqlitefile_test

import (
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/citycard/transit/clearing/store/sqlitefile"
)

// TestModeWhateverTheUmask creates and writes a WAL database under
// several umasks (none of these tests is parallel: the umask is the
// process's) and checks that the database, -wal and -shm are all 0600.
func TestModeWhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0, 0o022, 0o002, 0o277} {
		old := syscall.Umask(umask)
		path := filepath.Join(t.TempDir(), "x.db")
		if err := sqlitefile.Prepare(path, true); err != nil {
			syscall.Umask(old)
			t.Fatalf("umask %#o: Prepare: %v", umask, err)
		}
		db, err := sql.Open("sqlite", sqlitefile.DSN(path, true, "_pragma=journal_mode(WAL)"))
		if err == nil {
			_, err = db.Exec("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('personal data')")
		}
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("umask %#o: write: %v", umask, err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("umask %#o: %v", umask, err)
			}
			if fi.Mode().Perm() != sqlitefile.Mode {
				t.Errorf("umask %#o: %s is %v, want %v", umask, filepath.Base(p), fi.Mode().Perm(), sqlitefile.Mode)
			}
		}
		db.Close()
	}
}

func TestTightensOlderFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := sqlitefile.Prepare(path, false); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if fi, _ := os.Stat(p); fi.Mode().Perm() != sqlitefile.Mode {
			t.Errorf("%s is %v after Prepare, want %v", filepath.Base(p), fi.Mode().Perm(), sqlitefile.Mode)
		}
	}
}

func TestRefusals(t *testing.T) {
	if err := sqlitefile.Prepare("", true); !errors.Is(err, sqlitefile.ErrNoPath) {
		t.Errorf("Prepare(\"\") = %v, want ErrNoPath", err)
	}
	missing := filepath.Join(t.TempDir(), "does", "not", "exist.db")
	if err := sqlitefile.Prepare(missing, false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Prepare(missing, false) = %v, want fs.ErrNotExist", err)
	}
	missing = filepath.Join(t.TempDir(), "exist.db")
	if err := sqlitefile.Prepare(missing, false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Prepare(missing, false) = %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Prepare(missing, false) created the file: %v", err)
	}
	if err := sqlitefile.Prepare(t.TempDir(), true); err == nil {
		t.Error("Prepare(a directory) succeeded")
	}
	// SQLite must not create a file that the DSN says exists either.
	db, err := sql.Open("sqlite", sqlitefile.DSN(missing, false, "_pragma=busy_timeout(1000)"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Ping(); err == nil {
		t.Error("a mode=rw DSN opened a missing file")
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a mode=rw DSN created the file: %v", err)
	}
}
