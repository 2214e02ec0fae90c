package notify_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/simulator/testenv/smtptest"
)

// TestSMTPReachesServer sends through a real SMTP server (aiosmtpd, which
// the test script installs) and reads back what it stored.
func TestSMTPReachesServer(t *testing.T) {
	srv := smtptest.Start(t)
	s := &notify.SMTP{Addr: srv.Addr, From: "registry@city.example", Now: func() time.Time { return time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC) }}
	text := "Шановна Оксано!\nВаша пільга «пенсіонер» закінчується 31.12.2026.\n" + strings.Repeat("довгий рядок ", 20)
	m := notify.Message{To: "oksana@example.org", Subject: "Пільга закінчується 31.12.2026", Text: text, ID: "notice-7"}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Wait(1)[0]
	if got.Subject != m.Subject || got.Text != text+"\n" || got.To != "<oksana@example.org>" || got.MessageID != "<notice-7@city.example>" {
		t.Errorf("stored %+v", got)
	}
	// A header cannot be injected through the subject or the contact.
	if err := s.Send(context.Background(), notify.Message{To: "a@example.org", Subject: "x\r\nBcc: all@example.org", Text: "t"}); err == nil {
		t.Error("a subject with a line break was sent")
	}
	if err := s.Send(context.Background(), notify.Message{To: "a@example.org\r\nBcc: all@example.org", Subject: "s", Text: "t"}); !errors.Is(err, notify.ErrUnreachable) {
		t.Errorf("a contact with a line break: %v", err)
	}
	if len(srv.Messages()) != 1 {
		t.Errorf("the server holds %d messages, want 1", len(srv.Messages()))
	}
}

// fakeSMTP answers like a server that knows only one mailbox.
func fakeSMTP(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				say := func(s string) { c.Write([]byte(s + "\r\n")) }
				say("220 fake ESMTP")
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					switch cmd := strings.ToUpper(strings.TrimSpace(line)); {
					case strings.HasPrefix(cmd, "EHLO"):
						say("250 fake")
					case strings.HasPrefix(cmd, "MAIL"):
						say("250 ok")
					case strings.HasPrefix(cmd, "RCPT") && strings.Contains(cmd, "GONE@"):
						say("550 5.1.1 mailbox does not exist")
					case strings.HasPrefix(cmd, "RCPT") && strings.Contains(cmd, "FULL@"):
						say("452 4.2.2 mailbox full, try later")
					case strings.HasPrefix(cmd, "QUIT"):
						say("221 bye")
						return
					default:
						say("250 ok")
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestSMTPRefusals(t *testing.T) {
	s := &notify.SMTP{Addr: fakeSMTP(t), From: "registry@city.example", Timeout: 5 * time.Second}
	err := s.Send(context.Background(), notify.Message{To: "gone@example.org", Subject: "s", Text: "t"})
	if !errors.Is(err, notify.ErrUnreachable) || !errors.Is(err, notify.ErrRefused) || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("a mailbox that does not exist: %v", err)
	}
	if err := s.Send(context.Background(), notify.Message{To: "full@example.org", Subject: "s", Text: "t"}); err == nil || errors.Is(err, notify.ErrUnreachable) {
		t.Errorf("a full mailbox is worth retrying: %v", err)
	}
	for _, to := range []string{"вул. Хрещатик, 1, Київ", "+380441234567", ""} {
		if err := s.Send(context.Background(), notify.Message{To: to, Subject: "s", Text: "t"}); !errors.Is(err, notify.ErrUnreachable) {
			t.Errorf("e-mail to %q: %v", to, err)
		}
	}
	down := &notify.SMTP{Addr: "127.0.0.1:1", From: "registry@city.example", Timeout: time.Second}
	if err := down.Send(context.Background(), notify.Message{To: "a@example.org", Subject: "s", Text: "t"}); err == nil || errors.Is(err, notify.ErrUnreachable) {
		t.Errorf("a server that is down is worth retrying: %v", err)
	}
	if err := (&notify.SMTP{Addr: s.Addr, From: "registry@city.example", RequireTLS: true}).Send(context.Background(),
		notify.Message{To: "a@example.org", Subject: "s", Text: "t"}); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("TLS required from a server without it: %v", err)
	}
}

// TestSMTPServerThatTalksWithoutEnd: a server that sends an endless
// greeting is cut off, not read into memory.
func TestSMTPServerThatTalksWithoutEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		line := []byte("220-" + strings.Repeat("x", 1000) + "\r\n")
		for {
			if _, err := c.Write(line); err != nil {
				return
			}
		}
	}()
	s := &notify.SMTP{Addr: ln.Addr().String(), From: "registry@city.example", Timeout: 10 * time.Second}
	err = s.Send(context.Background(), notify.Message{To: "a@example.org", Subject: "s", Text: "t"})
	if err == nil || !strings.Contains(err.Error(), "more than") || errors.Is(err, notify.ErrUnreachable) {
		t.Errorf("an endless greeting: %v", err)
	}
}

type recorder struct{ got []string }

func (r *recorder) Send(_ context.Context, m notify.Message) error {
	r.got = append(r.got, m.To)
	return nil
}

func TestByContact(t *testing.T) {
	mail, sms := &recorder{}, &recorder{}
	b := &notify.ByContact{Email: mail, Phone: sms}
	for _, to := range []string{"a@example.org", "+380 44 123-45-67", "0441234567"} {
		if err := b.Send(context.Background(), notify.Message{To: to}); err != nil {
			t.Errorf("%q: %v", to, err)
		}
	}
	if len(mail.got) != 1 || len(sms.got) != 2 {
		t.Errorf("e-mail %v, phone %v", mail.got, sms.got)
	}
	for _, to := range []string{"вул. Хрещатик, 1", "", "Oksana <a@example.org>"} {
		if err := b.Send(context.Background(), notify.Message{To: to}); !errors.Is(err, notify.ErrUnreachable) {
			t.Errorf("%q: %v", to, err)
		}
	}
	if err := (&notify.ByContact{Phone: sms}).Send(context.Background(), notify.Message{To: "a@example.org"}); !errors.Is(err, notify.ErrUnreachable) {
		t.Errorf("e-mail without an e-mail sender: %v", err)
	}
}

// TestSMTPStartTLSAndAuth sends through a server that, like a city's
// submission server, requires STARTTLS and then a sign-in.
func TestSMTPStartTLSAndAuth(t *testing.T) {
	srv := smtptest.StartTLS(t, "registry", "s3cret-for-test")
	m := notify.Message{To: "oksana@example.org", Subject: "Пільга", Text: "текст"}
	s := &notify.SMTP{Addr: srv.Addr, From: "registry@city.example", RequireTLS: true, TLS: srv.TLS,
		Username: "registry", Password: "s3cret-for-test", Timeout: 10 * time.Second}
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := srv.Wait(1); got[0].Subject != "Пільга" || got[0].Text != "текст\n" {
		t.Errorf("stored %+v", got[0])
	}
	wrong := *s
	wrong.Password = "not it"
	if err := wrong.Send(context.Background(), m); err == nil || !strings.Contains(err.Error(), "sign in as registry") || errors.Is(err, notify.ErrUnreachable) {
		t.Errorf("a wrong password: %v", err)
	}
	// A certificate the client does not trust: nothing is sent, not even
	// the password.
	untrusted := *s
	untrusted.TLS = nil
	if err := untrusted.Send(context.Background(), m); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Errorf("an untrusted certificate: %v", err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("the server holds %d messages, want 1", n)
	}
}
