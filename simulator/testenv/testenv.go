// Package testenv tells integration tests where the real servers started by
// the test harness (`make test`, .ci/run) are listening.
//
// A test asks for a server by name. When the harness did not start it, the
// test is skipped with a message that names the missing server, except
// under CI (CI=true) or TRANSIT_TEST_REQUIRE=1, where a missing server fails
// the test: CI must never skip an integration test.
package testenv

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Environment variables the harness exports.
const (
	// PostgreSQL connection string of a database the test may freely use.
	PostgresVar = "TRANSIT_TEST_PG"
	// host:port of the Kafka-protocol broker.
	KafkaVar = "TRANSIT_TEST_KAFKA"
	// host:port where pcscd's vpcd driver listens for virtual card 0; the
	// reader it serves is named by PCSCReaderVar.
	VPCDVar       = "TRANSIT_TEST_VPCD"
	PCSCReaderVar = "TRANSIT_TEST_PCSC_READER"
	// Second vpcd slot and reader ("Virtual PCD 00 01").
	VPCD2Var       = "TRANSIT_TEST_VPCD2"
	PCSCReader2Var = "TRANSIT_TEST_PCSC_READER2"
	// PKCS#11 module path, token label, user PIN and SO PIN of a throwaway
	// SoftHSM2 token. SOFTHSM2_CONF is exported alongside.
	PKCS11ModuleVar = "TRANSIT_TEST_PKCS11_MODULE"
	PKCS11TokenVar  = "TRANSIT_TEST_PKCS11_TOKEN"
	PKCS11PINVar    = "TRANSIT_TEST_PKCS11_PIN"
	PKCS11SOPINVar  = "TRANSIT_TEST_PKCS11_SOPIN"
	// Path of a headless-capable Chromium for browser tests.
	ChromiumVar = "TRANSIT_TEST_CHROMIUM"
	// Path of axe-core's axe.min.js (the npm package axe-core), which
	// browser tests run in the page to check its accessibility.
	AxeVar = "TRANSIT_TEST_AXE"
)

// Required reports whether a missing server must fail the test instead of
// skipping it.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("TRANSIT_TEST_REQUIRE") == "1"
}

// Need returns the value of the environment variable that locates server,
// or skips (fails under CI) the test when it is unset.
func Need(t testing.TB, server, variable string) string {
	t.Helper()
	v := os.Getenv(variable)
	if v != "" {
		return v
	}
	msg := server + " is not available (" + variable + " is unset): run `make test`, which installs and starts it"
	if Required() {
		t.Fatal(msg + "; CI must not skip this test")
	}
	t.Skip(msg)
	return ""
}

// Postgres returns the connection string of the test database.
func Postgres(t testing.TB) string { return Need(t, "PostgreSQL", PostgresVar) }

// Kafka returns the address of the test broker.
func Kafka(t testing.TB) string { return Need(t, "the Kafka-protocol broker", KafkaVar) }

// PCSC returns the vpcd address for a virtual card and the name of the
// PC/SC reader in which that card appears. slot is 0 or 1.
func PCSC(t testing.TB, slot int) (vpcdAddr, reader string) {
	t.Helper()
	if slot == 1 {
		return Need(t, "pcscd with vpcd", VPCD2Var), Need(t, "pcscd with vpcd", PCSCReader2Var)
	}
	return Need(t, "pcscd with vpcd", VPCDVar), Need(t, "pcscd with vpcd", PCSCReaderVar)
}

// PKCS11 describes the SoftHSM2 token made for the test run.
type PKCS11 struct {
	Module, Token, PIN, SOPIN string
}

// SoftHSM returns the throwaway SoftHSM2 token.
func SoftHSM(t testing.TB) PKCS11 {
	t.Helper()
	return PKCS11{
		Module: Need(t, "SoftHSM2", PKCS11ModuleVar),
		Token:  Need(t, "SoftHSM2", PKCS11TokenVar),
		PIN:    Need(t, "SoftHSM2", PKCS11PINVar),
		SOPIN:  Need(t, "SoftHSM2", PKCS11SOPINVar),
	}
}

// Chromium returns the path of the Chromium binary browser tests drive.
func Chromium(t testing.TB) string { return Need(t, "Chromium", ChromiumVar) }

// Axe returns the path of axe-core's axe.min.js.
func Axe(t testing.TB) string { return Need(t, "axe-core (npm install axe-core)", AxeVar) }

// PostgresSchema gives the test an empty PostgreSQL schema of its own in
// the test database, dropped when the test ends, and returns a DSN whose
// search_path selects it (pgx sends unknown URL parameters as run-time
// settings), so tests sharing the database cannot see each other.
func PostgresSchema(t testing.TB) string {
	t.Helper()
	dsn := Postgres(t)
	schema := fmt.Sprintf("t_%016x", rand.Uint64())
	ctx := context.Background()
	exec := func(sql string) error {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return fmt.Errorf("connect to the test database: %w", err)
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema %s: %v", schema, err)
	}
	t.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	if !strings.Contains(dsn, "://") { // key=value form
		return dsn + " search_path=" + schema
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %s: %v", PostgresVar, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
