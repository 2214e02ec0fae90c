// Package smtptest starts a real SMTP server on loopback for a test:
// aiosmtpd (Debian's python3-aiosmtpd, which the test script installs)
// keeping every message it accepts in a maildir. A test whose machine
// lacks it is skipped, or fails under CI and TRANSIT_TEST_REQUIRE=1 like
// every integration test (simulator/testenv).
package smtptest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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
	dir  string
	t    testing.TB
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
	py, err := python()
	if err != nil {
		if testenv.Required() {
			t.Fatalf("the local SMTP server: %v", err)
		}
		t.Skipf("the local SMTP server: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "maildir")
	// A free port: take one, give it back, and have the server bind it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var log bytes.Buffer
	cmd := exec.Command(py, "-m", "aiosmtpd", "-n", "-l", addr, "-c", "aiosmtpd.handlers.Mailbox", dir)
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
