// Package smtptest starts a real SMTP server on loopback for a test:
// aiosmtpd (Debian's python3-aiosmtpd, which the test script installs)
// keeping every message it accepts in a maildir. A test whose machine
// lacks it is skipped, or fails under CI and TRANSIT_TEST_REQUIRE=1 like
// every integration test (simulator/testenv).
package smtptest

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/citycard/transit/simulator/testenv"
)

// Server is a running SMTP server.
type Server struct {
	// Addr is host:port to send to.
	Addr string
	// TLS, for a server from StartTLS, trusts its certificate.
	TLS *tls.Config
	dir string
	t   testing.TB
}

// python finds an interpreter with the aiosmtpd module: Debian's, then
// whatever python3 the PATH has.
func python() (string, error) {
	candidates := []string{"/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if err := exec.Command(p, "-c", "import aiosmtpd").Run(); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no python3 with aiosmtpd (apt-get install python3-aiosmtpd)")
}

// Start starts a server for t; it stops when t ends. Under CI a missing
// aiosmtpd fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "maildir")
	return start(t, dir, nil, func(addr string) []string {
		return []string{"-m", "aiosmtpd", "-n", "-l", addr, "-c", "aiosmtpd.handlers.Mailbox", dir}
	})
}

// tlsServer is aiosmtpd as a submission server: STARTTLS required before
// anything else, then AUTH PLAIN or LOGIN as one user.
const tlsServer = `
import asyncio, os, signal, ssl, sys
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
host, port, maildir, cert, key, user = sys.argv[1:7]
password = os.environ["SMTPTEST_PASSWORD"].encode()
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == user.encode() and data.password == password
    return AuthResult(success=ok, handled=False)
handler = Mailbox(maildir)
loop = asyncio.new_event_loop()
loop.run_until_complete(loop.create_server(lambda: SMTP(handler, hostname="localhost", tls_context=ctx,
    require_starttls=True, auth_required=True, authenticator=check), host, int(port)))
loop.add_signal_handler(signal.SIGTERM, loop.stop)
loop.run_forever()
`

// StartTLS starts a server that requires STARTTLS and then AUTH as user
// with password, with a certificate for 127.0.0.1 made for the test;
// the server's TLS is the client configuration that trusts it.
func StartTLS(t testing.TB, user, password string) *Server {
	t.Helper()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "maildir")
	certFile, keyFile := filepath.Join(tmp, "cert.pem"), filepath.Join(tmp, "key.pem")
	pool := selfSigned(t, certFile, keyFile)
	s := start(t, dir, []string{"SMTPTEST_PASSWORD=" + password}, func(addr string) []string {
		host, port, _ := net.SplitHostPort(addr)
		return []string{"-c", tlsServer, host, port, dir, certFile, keyFile, user}
	})
	s.TLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return s
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns a
// pool that trusts it.
func selfSigned(t testing.TB, certFile, keyFile string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smtptest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return pool
}

func start(t testing.TB, dir string, env []string, args func(addr string) []string) *Server {
	t.Helper()
	py, err := python()
	if err != nil {
		if testenv.Required() {
			t.Fatalf("the local SMTP server: %v", err)
		}
		t.Skipf("the local SMTP server: %v", err)
	}
	// A free port: take one, give it back, and have the server bind it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var log bytes.Buffer
	cmd := exec.Command(py, args(addr)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start aiosmtpd: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM) //nolint:errcheck // it may have exited
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }() //nolint:errcheck // stopped on purpose
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill() //nolint:errcheck // best effort
			<-done
		}
	})
	// Ready when it greets.
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second)) //nolint:errcheck // the read below fails instead
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("QUIT\r\n")) //nolint:errcheck // only a probe
			c.Close()
			if rerr == nil && strings.HasPrefix(line, "220") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("aiosmtpd on %s did not greet within 20 s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Server{Addr: addr, dir: dir, t: t}
}

// Message is one message the server accepted.
type Message struct {
	From, To, Subject string
	MessageID         string
	Header            mail.Header
	// Text is the body, decoded.
	Text string
}

// Messages returns what the server holds, oldest first.
func (s *Server) Messages() []Message {
	s.t.Helper()
	files, err := filepath.Glob(filepath.Join(s.dir, "new", "*"))
	if err != nil {
		s.t.Fatal(err)
	}
	type file struct {
		name string
		mod  time.Time
	}
	var fs []file
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			s.t.Fatal(err)
		}
		fs = append(fs, file{f, fi.ModTime()})
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].mod.Before(fs[j].mod) })
	var out []Message
	for _, f := range fs {
		raw, err := os.ReadFile(f.name)
		if err != nil {
			s.t.Fatal(err)
		}
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			s.t.Fatalf("message %s: %v", f.name, err)
		}
		var body io.Reader = m.Body
		if strings.EqualFold(m.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(body)
		}
		text, err := io.ReadAll(body)
		if err != nil {
			s.t.Fatalf("message %s: %v", f.name, err)
		}
		subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			s.t.Fatalf("message %s: subject: %v", f.name, err)
		}
		out = append(out, Message{From: m.Header.Get("From"), To: m.Header.Get("To"), Subject: subject,
			MessageID: m.Header.Get("Message-ID"), Header: m.Header, Text: strings.ReplaceAll(string(text), "\r\n", "\n")})
	}
	return out
}

// Wait returns the messages once there are at least n, or fails after
// 15 s.
func (s *Server) Wait(n int) []Message {
	s.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ms := s.Messages()
		if len(ms) >= n {
			return ms
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the SMTP server holds %d messages after 15 s, want %d", len(ms), n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
