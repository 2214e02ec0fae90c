package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	cstore "github.com/citycard/transit/clearing/store"
	csqlite "github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/validator/devauth"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/update"
)

// testCA makes a certificate authority and a server certificate for
// 127.0.0.1 signed by it, in dir: ca.pem, server.pem, server.key (0600).
func testCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "City test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "registry"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER, 0o644), write("server.pem", "CERTIFICATE", srvDER, 0o644),
		write("server.key", "EC PRIVATE KEY", keyDER, 0o600)
}

// waitTLS waits until addr answers a TLS handshake with pool's trust.
func waitTLS(t *testing.T, addr string, pool *x509.CertPool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no TLS on %s after 30 s: %v", addr, err)
		}
	}
}

// TestRegistryOverTLS runs the registry with a certificate from a city
// CA: staff sign in, the desk and a validator reach it over TLS with the
// CA, and nothing reaches it without.
func TestRegistryOverTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	caFile, certFile, keyFile := testCA(t, dir)
	pem, _ := os.ReadFile(caFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "city pass")
	keys := filepath.Join(dir, "city.keys")
	transit(t, ctx, 0, "hsm", "init", "--keystore", keys)
	db := "sqlite:" + filepath.Join(dir, "registry.db")
	t.Setenv("TRANSIT_STAFF_PASSWORD", "a long desk password")
	transit(t, ctx, 0, "registry", "staff", "add", "olena.k", "--role", "desk", "--db", db)

	// Plain HTTP beyond loopback is refused.
	if code, _, stderr := deskCLI(ctx, "registry", "serve", "--db", db, "--issuer", "1001", "--listen", "0.0.0.0:0"); code != 2 || !strings.Contains(stderr, "--tls-cert") {
		t.Fatalf("plain HTTP on 0.0.0.0: exit %d, %s", code, stderr)
	}
	addr := freePort(t)
	background(t, ctx, "registry serve", "registry", "serve", "--db", db, "--issuer", "1001", "--listen", addr,
		"--tls-cert", certFile, "--tls-key", keyFile, "--keystore", keys, "--hotlist-dir", filepath.Join(dir, "hotlists"))
	waitTLS(t, addr, pool)
	base := "https://" + addr

	trusting := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if _, err := http.Get(base + "/v1/cards/blocked"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("without the city CA: %v; want a certificate error", err)
	}
	if resp, err := http.Get("http://" + addr + "/v1/cards/blocked"); err == nil && resp.StatusCode < 400 {
		t.Errorf("plain HTTP to the TLS port answered %d", resp.StatusCode)
	}
	call := func(method, path, token string, body any, out any) int {
		t.Helper()
		js, _ := json.Marshal(body)
		req, _ := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(js))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := trusting.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil && resp.StatusCode < 300 {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: %s", method, path, b)
			}
		}
		return resp.StatusCode
	}
	var s struct{ Token string }
	if code := call("POST", "/v1/auth/login", "", map[string]string{"user": "olena.k", "password": "a long desk password"}, &s); code != 200 {
		t.Fatalf("staff sign-in: %d", code)
	}
	var res registry.Resident
	if code := call("POST", "/v1/residents", s.Token, map[string]string{"registry_number": storetest.RegistryNumber(3), "name": "Мельник Олег",
		"birth_date": "1950-01-02", "contact": "+380501112233"}, &res); code != 201 {
		t.Fatalf("register: %d", code)
	}
	var c registry.Card
	call("POST", fmt.Sprintf("/v1/residents/%d/cards", res.ID), s.Token, nil, &c)
	call("POST", "/v1/cards/"+c.Number.String()+"/status", s.Token, map[string]string{"status": "personalised"}, nil)
	call("POST", "/v1/cards/"+c.Number.String()+"/status", s.Token, map[string]string{"status": "active"}, nil)

	// The desk signs in with its account and keeps the token in a file.
	tokenFile := filepath.Join(dir, "desk.token")
	t.Setenv(tokenEnv, "")
	if code, out, stderr := deskCLI(ctx, "desk", "login", "--user", "olena.k", "--out", tokenFile, "--registry", base, "--registry-ca", caFile); code != 0 || !strings.Contains(out, "signed in as olena.k") {
		t.Fatalf("desk login: exit %d, %s %s", code, out, stderr)
	}
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the token file: %v, %v; want 0600", fi, err)
	}
	code, out, stderr := deskCLI(ctx, "desk", "block", "--card", c.Number.String(), "--reason", "lost", "--registry", base,
		"--registry-ca", caFile, "--token-file", tokenFile)
	if code != 0 || !strings.Contains(out, "lost") || strings.Contains(stderr, "warning") {
		t.Fatalf("desk block over TLS: exit %d, %s %s", code, out, stderr)
	}
	if code, _, stderr := deskCLI(ctx, "desk", "block", "--card", c.Number.String(), "--reason", "lost", "--registry", base,
		"--token-file", tokenFile); code != 1 || !strings.Contains(stderr, "certificate") {
		t.Errorf("desk without the CA: exit %d, %s", code, stderr)
	}

	// A validator: its role keystore signs the request, the CA file
	// checks the registry.
	t.Setenv("TRANSIT_ROLE_PASSPHRASE", "bus pass")
	transit(t, ctx, 0, "hsm", "export-role", "validator", "--device", "bus-9", "--out", filepath.Join(dir, "bus.keys"), "--keystore", keys)
	bus, err := hsm.OpenKeystore(filepath.Join(dir, "bus.keys"), []byte("bus pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer bus.Close()
	lookup, err := hotlist.HSMKeys(ctx, bus)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hotlist.Open(ctx, hotlist.Config{Dir: filepath.Join(dir, "bus-hotlist")}, lookup)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := update.NewClient(caFile)
	if err != nil {
		t.Fatal(err)
	}
	f := &update.Fetcher{Base: base + "/v1/validator", Client: hc, Auth: &devauth.Signer{Device: "bus-9", Keys: bus}, Hotlist: h, Keys: lookup}
	for deadline := time.Now().Add(30 * time.Second); !h.Contains(uint64(c.Number)); time.Sleep(200 * time.Millisecond) {
		if _, err := f.Once(ctx); err != nil {
			t.Fatalf("validator fetch over TLS: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the lost card did not reach the validator over TLS")
		}
	}
	plain, _ := update.NewClient("")
	if _, err := (&update.Fetcher{Base: base + "/v1/validator", Client: plain, Auth: f.Auth, Hotlist: h, Keys: lookup}).Once(ctx); err == nil {
		t.Error("a validator without the city's CA fetched from the registry")
	}
}

// TestAuditTamperedByHand edits the registry's database around the
// store, as someone with the file would: audit verify names the entry,
// registry serve refuses to start, and with --allow-broken-audit serves
// it saying so, and the resident's access log shows it.
func TestAuditTamperedByHand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.db")
	db := "sqlite:" + path
	st, err := sqlite.Open(ctx, path, store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	desk := registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "phone call, ticket 7"}
	r, err := st.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Гнатюк Ольга",
		BirthDate: registry.Date{Year: 1951, Month: 3, Day: 3}, Contact: "olga@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := st.Resident(ctx, desk, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	// With the HSM, serving signs a checkpoint of the chain's head.
	t.Setenv("TRANSIT_KEYSTORE_PASSPHRASE", "city pass")
	keys := filepath.Join(dir, "city.keys")
	transit(t, ctx, 0, "hsm", "init", "--keystore", keys)
	addr := freePort(t)
	stop, _ := background(t, ctx, "registry serve", "registry", "serve", "--db", db, "--issuer", "1001", "--listen", addr,
		"--keystore", keys, "--hotlist-dir", filepath.Join(dir, "hotlists"))
	waitListen(t, addr)
	stop()
	out := transit(t, ctx, 0, "registry", "audit", "verify", "--db", db, "--keystore", keys)
	if !strings.Contains(out, "the audit log verified") || !strings.Contains(out, "checkpoints: 1 passed") || !strings.Contains(out, "entries:     4") {
		t.Fatalf("audit verify of a good log:\n%s", out)
	}

	// The seeded reads are edited by hand, triggers set aside.
	raw, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_log_no_update",
		"UPDATE audit_log SET purpose = 'routine check' WHERE seq = 3",
		"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused'); END"} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	raw.Close()
	code, out, stderr := deskCLI(ctx, "registry", "audit", "verify", "--db", db)
	if code != 1 || !strings.Contains(out, "BROKEN") || !strings.Contains(stderr, "audit entry 3") || !strings.Contains(stderr, "edited") {
		t.Fatalf("audit verify after the edit: exit %d\n%s\n%s", code, out, stderr)
	}
	code, _, stderr = deskCLI(ctx, "registry", "serve", "--db", db, "--issuer", "1001", "--listen", freePort(t))
	if code != 1 || !strings.Contains(stderr, "refusing to serve") || !strings.Contains(stderr, "audit entry 3") || !strings.Contains(stderr, "--allow-broken-audit") {
		t.Fatalf("registry serve on an altered log: exit %d, %s", code, stderr)
	}

	// Told to, it serves, loudly; the resident sees the log failed.
	st, err = sqlite.Open(ctx, path, store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	secret, tok, _ := registry.NewToken(registry.Actor{User: "olga", Role: registry.RoleResident, Resident: r.ID}, time.Now())
	if err := st.AddToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	st.Close()
	addr = freePort(t)
	errb := &syncBuffer{}
	sctx, scancel := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(sctx, []string{"registry", "serve", "--db", db, "--issuer", "1001", "--listen", addr, "--allow-broken-audit"}, io.Discard, errb)
	}()
	defer func() { scancel(); <-done }()
	var log struct {
		Entries      []struct{ Verified bool }
		Verification struct {
			Checked, OK bool
			Problem     string
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/me/audit", nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&log) //nolint:errcheck // checked below
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry serve --allow-broken-audit did not come up: %s", errb.String())
		}
	}
	if !strings.Contains(errb.String(), "WARNING: SERVING AN ALTERED AUDIT LOG") {
		t.Errorf("no loud warning:\n%s", errb.String())
	}
	if !log.Verification.Checked || log.Verification.OK || !strings.Contains(log.Verification.Problem, "audit entry 3") {
		t.Errorf("the resident's access log says %+v; want it to show the log failed at entry 3", log.Verification)
	}
	for _, e := range log.Entries {
		if e.Verified {
			t.Error("an entry is marked verified in a broken log")
		}
	}
}

// waitListen waits until something accepts connections on addr.
func waitListen(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s after 30 s", addr)
		}
	}
}

// TestTokenCommands: tokens end, are listed with their last use, and are
// revoked from the command line; residents get none.
func TestTokenCommands(t *testing.T) {
	ctx := context.Background()
	db := "sqlite:" + filepath.Join(t.TempDir(), "registry.db")
	secret := strings.TrimSpace(transit(t, ctx, 0, "registry", "token", "create", "--db", db, "--user", "prometheus", "--role", "operator",
		"--expires", "30d", "--note", "metrics scraper"))
	if !strings.HasPrefix(secret, "rgt_") {
		t.Fatalf("token create printed %q", secret)
	}
	out := transit(t, ctx, 0, "registry", "token", "list", "--db", db)
	id := registry.TokenID(registry.HashToken(secret))
	if !strings.Contains(out, id) || !strings.Contains(out, "metrics scraper") || !strings.Contains(out, "live") || strings.Contains(out, secret) {
		t.Fatalf("token list:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "citizen", "--role", "resident"}, "one-time code"},
		{[]string{"--user", "x", "--role", "desk", "--expires", "400d"}, "at most 366 days"},
		{[]string{"--user", "x", "--role", "desk", "--expires", "forever"}, "--expires"},
	} {
		if code, _, stderr := deskCLI(ctx, append([]string{"registry", "token", "create", "--db", db}, tc.args...)...); code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("token create %v: exit %d, %s; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	transit(t, ctx, 0, "registry", "token", "revoke", id, "--yes", "--db", db)
	out = transit(t, ctx, 0, "registry", "token", "list", "--db", db, "--all")
	if !regexp.MustCompile(id + `.*revoked .* by cli:`).MatchString(out) {
		t.Fatalf("token list after revoke:\n%s", out)
	}
	if code, _, stderr := deskCLI(ctx, "registry", "token", "revoke", id, "--yes", "--db", db); code != 1 || !strings.Contains(stderr, "already revoked") {
		t.Errorf("revoke twice: exit %d, %s", code, stderr)
	}
	t.Setenv("TRANSIT_STAFF_PASSWORD", "short")
	if code, _, stderr := deskCLI(ctx, "registry", "staff", "add", "o.k", "--role", "desk", "--db", db); code != 2 || !strings.Contains(stderr, "at least 12") {
		t.Errorf("a short password: exit %d, %s", code, stderr)
	}
}

// Issue 16, 9: `transit desk --token` showed the token in ps. The token
// comes from the environment or a file; on the command line it is
// warned about.
func TestDeskTokenNotOnCommandLine(t *testing.T) {
	reg := newDeskRegistry(t)
	n := reg.order()
	ctx := context.Background()
	t.Setenv(tokenEnv, "")
	code, _, stderr := deskCLI(ctx, "desk", "activate", "--card", n.String(), "--registry", reg.url, "--token", reg.token)
	if !strings.Contains(stderr, "visible to every user of this machine") || strings.Contains(stderr, reg.token) {
		t.Errorf("--token on the command line: exit %d, %s; want a warning that does not repeat it", code, stderr)
	}
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte(reg.token+"\n"), 0o644) //nolint:errcheck // checked by the command
	_, _, stderr = deskCLI(ctx, "desk", "activate", "--card", n.String(), "--registry", reg.url, "--token-file", file)
	if !strings.Contains(stderr, "readable by others") || strings.Contains(stderr, "visible to every user") {
		t.Errorf("--token-file 0644: %s; want a warning about its mode", stderr)
	}
	if code, _, stderr := deskCLI(ctx, "desk", "activate", "--card", n.String(), "--token", "x", "--token-file", file); code != 2 || !strings.Contains(stderr, "not both") {
		t.Errorf("both: exit %d, %s", code, stderr)
	}
}

// TestClearingAPIAsksTheRegistry runs `transit clearing api` against a
// registry: it will not start without one, an unauthenticated close gets
// 401, a finance close 403.
func TestClearingAPIAsksTheRegistry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	cdb := "sqlite:" + filepath.Join(dir, "clearing.db")
	newClearingFile(t, filepath.Join(dir, "clearing.db")) // the API serves an existing store
	if code, _, stderr := deskCLI(ctx, "clearing", "api", "--db", cdb, "--http", freePort(t)); code != 2 || !strings.Contains(stderr, "--registry") {
		t.Fatalf("clearing api without a registry: exit %d, %s", code, stderr)
	}
	tokenFile := filepath.Join(dir, "clearing.token")
	if code, _, stderr := deskCLI(ctx, "clearing", "api", "--db", cdb, "--http", freePort(t), "--registry", "http://127.0.0.1:1",
		"--registry-token-file", tokenFile); code != 2 || !strings.Contains(stderr, "registry-token-file") {
		t.Fatalf("clearing api without its token: exit %d, %s", code, stderr)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "registry.db"), store.Options{Issuer: 1001})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	reg := httptest.NewServer(api.New(st, api.Options{Logger: slog.New(slog.DiscardHandler)}))
	defer reg.Close()
	mk := func(a registry.Actor) string {
		s, tok, _ := registry.NewToken(a, time.Now())
		if err := st.AddToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		return s
	}
	os.WriteFile(tokenFile, []byte(mk(registry.Actor{User: "clearing", Role: registry.RoleService})), 0o600) //nolint:errcheck // read by the command
	finance := mk(registry.Actor{User: "iryna", Role: registry.RoleFinance})
	if code, _, stderr := deskCLI(ctx, "clearing", "api", "--db", cdb, "--http", "0.0.0.0:0", "--registry", reg.URL,
		"--registry-token-file", tokenFile); code != 2 || !strings.Contains(stderr, "--tls-cert") {
		t.Fatalf("clearing api on 0.0.0.0 without TLS: exit %d, %s", code, stderr)
	}
	addr := freePort(t)
	background(t, ctx, "clearing api", "clearing", "api", "--db", cdb, "--http", addr, "--registry", reg.URL, "--registry-token-file", tokenFile)
	do := func(token string) int {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/statements/2026-11/close?early=true", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
		}
	}
	if got := do(""); got != http.StatusUnauthorized {
		t.Errorf("unauthenticated close: %d, want 401", got)
	}
	if got := do(finance); got != http.StatusForbidden {
		t.Errorf("finance close: %d, want 403", got)
	}
}

// newClearingFile makes an empty embedded clearing store at path, set up
// for Europe/Kyiv, for commands that never create one.
func newClearingFile(t *testing.T, path string) {
	t.Helper()
	kyiv, err := time.LoadLocation("Europe/Kyiv")
	if err != nil {
		t.Fatal(err)
	}
	st, err := csqlite.Open(context.Background(), path, cstore.Options{Location: kyiv})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
