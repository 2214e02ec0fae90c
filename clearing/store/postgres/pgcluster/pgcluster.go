// Package pgcluster starts a throwaway PostgreSQL cluster of a test's
// own, for the tests that crash and restart the server: restarting the
// shared test server would break every other test using it.
//
// It runs initdb and pg_ctl from the newest /usr/lib/postgresql/*/bin (or
// $TRANSIT_TEST_PG_BIN), as the user postgres when the test runs as root
// (initdb refuses root), in a temporary directory the cluster owns. The
// cluster listens on 127.0.0.1 on a free port and trusts local users.
package pgcluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/citycard/transit/simulator/testenv"
)

// BinVar overrides where the server binaries are.
const BinVar = "TRANSIT_TEST_PG_BIN"

// Cluster is a running throwaway cluster.
type Cluster struct {
	Bin  string // directory of initdb, pg_ctl
	Dir  string // holds data/, the socket and the log
	Port int
	// DSN connects to the database "postgres" as user postgres.
	DSN string
	t   testing.TB
}

// binDir finds the PostgreSQL server binaries, or "".
func binDir() string {
	if d := os.Getenv(BinVar); d != "" {
		return d
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return va - vb
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(dirs[i], "initdb")); err == nil {
			return dirs[i]
		}
	}
	return ""
}

// Start initialises and starts a cluster with the given postgresql.conf
// settings (e.g. "synchronous_commit = off") added, and stops it when the
// test ends. Without the server binaries the test is skipped (failed
// under CI or TRANSIT_TEST_REQUIRE=1).
func Start(t testing.TB, settings ...string) *Cluster {
	t.Helper()
	bin := binDir()
	if bin == "" {
		msg := "the PostgreSQL server binaries are not installed (no /usr/lib/postgresql/*/bin/initdb): install postgresql"
		if testenv.Required() {
			t.Fatal(msg + "; CI must not skip this test")
		}
		t.Skip(msg)
	}
	dir, err := os.MkdirTemp("", "pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	// The server runs as postgres: it must reach its directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Bin: bin, Dir: dir, Port: freePort(t), t: t}
	c.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.Port)
	t.Cleanup(func() {
		c.pgctl("-m", "immediate", "stop") //nolint:errcheck // may be stopped already
		if !t.Failed() || os.Getenv("TRANSIT_TEST_KEEP") == "" {
			os.RemoveAll(dir)
		} else {
			t.Logf("PostgreSQL cluster kept in %s", dir)
		}
	})
	if err := c.chown(dir); err != nil {
		t.Fatal(err)
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	conf := []string{"listen_addresses = '127.0.0.1'", fmt.Sprintf("port = %d", c.Port),
		fmt.Sprintf("unix_socket_directories = '%s'", dir), "max_connections = 100", "shared_buffers = 32MB"}
	conf = append(conf, settings...)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\n" + strings.Join(conf, "\n") + "\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	c.Up()
	return c
}

func (c *Cluster) data() string { return filepath.Join(c.Dir, "data") }

// run runs a server binary, as postgres when this process is root.
func (c *Cluster) run(name string, args ...string) ([]byte, error) {
	path := filepath.Join(c.Bin, name)
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.Bytes(), err
}

func (c *Cluster) pgctl(args ...string) ([]byte, error) {
	return c.run("pg_ctl", append([]string{"-D", c.data(), "-w", "-t", "60"}, args...)...)
}

func (c *Cluster) chown(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("the cluster runs as user postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// Up starts the server and waits until it accepts connections.
func (c *Cluster) Up() {
	c.t.Helper()
	if out, err := c.pgctl("-l", filepath.Join(c.Dir, "server.log"), "start"); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.Dir, "server.log"))
		c.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.DSN)
		if err == nil {
			conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			c.t.Fatalf("the restarted cluster does not answer: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Crash stops the server in immediate mode: every server process quits
// at once, as in a crash, without a checkpoint; what was not in the WAL
// on disk is gone. The next Up recovers from the WAL.
func (c *Cluster) Crash() {
	c.t.Helper()
	if out, err := c.pgctl("-m", "immediate", "stop"); err != nil {
		c.t.Fatalf("pg_ctl stop -m immediate: %v\n%s", err, out)
	}
}

// Restart crashes the server, waits down for the given time, and starts
// it again.
func (c *Cluster) Restart(down time.Duration) {
	c.t.Helper()
	c.Crash()
	time.Sleep(down)
	c.Up()
}

// CreateDB creates a database and returns its DSN.
func (c *Cluster) CreateDB(name string) string {
	c.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.DSN)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		c.t.Fatalf("create database %s: %v", name, err)
	}
	return strings.Replace(c.DSN, "/postgres?", "/"+name+"?", 1)
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
