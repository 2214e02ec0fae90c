package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// SMTP delivers messages to e-mail contacts through a mail server
// (RFC 5321), as one plain-text UTF-8 message each. A contact that is not
// an e-mail address, or one the server refuses as a recipient (5xx),
// fails with ErrUnreachable: sending again will not help. Anything else
// (the server down, a timeout) is an error worth retrying.
type SMTP struct {
	// Addr is the server, host:port.
	Addr string
	// From is the sender's address, on the envelope and in the header.
	From string
	// Hello is the name the client gives in EHLO; "" means "localhost".
	Hello string
	// Username and Password, if set, authenticate (PLAIN), which net/smtp
	// allows only over TLS or to localhost.
	Username, Password string
	// RequireTLS refuses a server that does not offer STARTTLS; without
	// it STARTTLS is used when offered. TLS configures it (ServerName
	// defaults to Addr's host).
	RequireTLS bool
	TLS        *tls.Config
	// Timeout bounds one message's conversation; 0 means 30 s.
	Timeout time.Duration
	// Now stamps the Date header; nil means time.Now.
	Now func() time.Time
}

// Name implements Named.
func (s *SMTP) Name() string { return "smtp" }

// Named is a Sender that says what it is, for the record of what was
// sent how.
type Named interface{ Name() string }

// NameOf returns a sender's name, or its type.
func NameOf(s Sender) string {
	if n, ok := s.(Named); ok {
		return n.Name()
	}
	return fmt.Sprintf("%T", s)
}

// Name implements Named.
func (f *File) Name() string { return "file" }

// ErrRefused is wrapped, with ErrUnreachable, when the mail server
// refuses a recipient: the mailbox does not exist (any more).
var ErrRefused = errors.New("the mail server refused the recipient")

// Send implements Sender.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	to, err := mail.ParseAddress(strings.TrimSpace(m.To))
	if err != nil || !strings.Contains(m.To, "@") {
		return fmt.Errorf("notify: %w: %q is not an e-mail address", ErrUnreachable, clip(m.To))
	}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		return fmt.Errorf("notify: the sender's address %q: %w; give an address such as registry@city.example", s.From, err)
	}
	msg, err := s.compose(from, to, m)
	if err != nil {
		return err
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("notify: reach the mail server %s: %w", s.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl) //nolint:errcheck // a conn that refuses deadlines fails its writes instead
	}
	// The conversation stops when ctx ends, not only at the deadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	host, _, _ := net.SplitHostPort(s.Addr)
	c, err := smtp.NewClient(&boundedConn{Conn: conn, left: maxReplyBytes}, host)
	if err != nil {
		return fmt.Errorf("notify: mail server %s: %w", s.Addr, err)
	}
	defer c.Close()
	hello := s.Hello
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return fmt.Errorf("notify: mail server %s: EHLO: %w", s.Addr, err)
	}
	if ok, _ := c.Extension("STARTTLS"); ok {
		cfg := s.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(cfg); err != nil {
			return fmt.Errorf("notify: mail server %s: STARTTLS: %w", s.Addr, err)
		}
	} else if s.RequireTLS {
		return fmt.Errorf("notify: mail server %s offers no STARTTLS, and TLS is required; nothing was sent", s.Addr)
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, s.Password, host)); err != nil {
			return fmt.Errorf("notify: mail server %s: sign in as %s: %w", s.Addr, s.Username, err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("notify: mail server %s: MAIL FROM: %w", s.Addr, err)
	}
	if err := c.Rcpt(to.Address); err != nil {
		var te *textproto.Error
		if errors.As(err, &te) && te.Code >= 500 {
			return fmt.Errorf("notify: %w: %w: %d %s", ErrUnreachable, ErrRefused, te.Code, clip(te.Msg))
		}
		return fmt.Errorf("notify: mail server %s: RCPT TO: %w", s.Addr, err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("notify: mail server %s: DATA: %w", s.Addr, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("notify: mail server %s: write the message: %w", s.Addr, err)
	}
	// Close waits for the server's answer: the message is its now.
	if err := w.Close(); err != nil {
		return fmt.Errorf("notify: mail server %s: the message was not accepted: %w", s.Addr, err)
	}
	// The server has the message: a failed QUIT must not make the caller
	// send it again.
	c.Quit() //nolint:errcheck // see above
	return nil
}

// compose writes the message: headers (the subject RFC 2047 encoded, so
// that no header can be injected) and a quoted-printable UTF-8 body.
func (s *SMTP) compose(from, to *mail.Address, m Message) ([]byte, error) {
	if strings.ContainsAny(m.Subject, "\r\n") {
		return nil, errors.New("notify: a subject has no line breaks")
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	var b bytes.Buffer
	h := func(k, v string) { fmt.Fprintf(&b, "%s: %s\r\n", k, v) }
	h("From", from.String())
	h("To", to.String())
	h("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	h("Date", now().Format(time.RFC1123Z))
	if m.ID != "" {
		if !messageID.MatchString(m.ID) {
			return nil, fmt.Errorf("notify: message id %q: want letters, digits, dots and dashes", clip(m.ID))
		}
		_, domain, _ := strings.Cut(from.Address, "@")
		h("Message-ID", "<"+m.ID+"@"+domain+">")
	}
	h("MIME-Version", "1.0")
	h("Content-Type", "text/plain; charset=utf-8")
	h("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	body := strings.ReplaceAll(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n", "\r\n")
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	b.WriteString("\r\n")
	return b.Bytes(), nil
}

// maxReplyBytes bounds what one conversation reads from the server: a
// few replies of a few lines each, so that a server that talks without
// end cannot fill the registry's memory before the deadline.
const maxReplyBytes = 64 << 10

// boundedConn fails reads once left bytes have been read.
type boundedConn struct {
	net.Conn
	left int64
}

func (c *boundedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("the mail server sent more than %d bytes of replies", maxReplyBytes)
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

var messageID = regexp.MustCompile(`^[A-Za-z0-9.-]{1,64}$`)

func clip(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if len(s) > 80 {
		cut := 80
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut] + "..."
	}
	return s
}

// ByContact sends each message by the kind of its contact: e-mail
// addresses through Email, phone numbers through Phone (an SMS gateway,
// or a File it reads). A contact of another kind (a postal address), or
// one whose sender is nil, fails with ErrUnreachable.
type ByContact struct {
	Email, Phone Sender
}

var phoneNumber = regexp.MustCompile(`^\+?[0-9][0-9 ()-]{5,}[0-9]$`)

// Kind says whether contact is an "email", a "phone" number or neither
// ("").
func Kind(contact string) string {
	c := strings.TrimSpace(contact)
	switch {
	case strings.Contains(c, "@"):
		if a, err := mail.ParseAddress(c); err == nil && a.Name == "" {
			return "email"
		}
	case phoneNumber.MatchString(c):
		return "phone"
	}
	return ""
}

// Send implements Sender.
func (b *ByContact) Send(ctx context.Context, m Message) error {
	var s Sender
	switch Kind(m.To) {
	case "email":
		s = b.Email
	case "phone":
		s = b.Phone
	}
	if s == nil {
		if strings.TrimSpace(m.To) == "" {
			return fmt.Errorf("notify: %w: the registry holds no contact", ErrUnreachable)
		}
		return fmt.Errorf("notify: %w: messages do not reach %q (no sender for this kind of contact)", ErrUnreachable, clip(m.To))
	}
	return s.Send(ctx, m)
}

// Name implements Named.
func (b *ByContact) Name() string {
	var parts []string
	if b.Email != nil {
		parts = append(parts, "email:"+NameOf(b.Email))
	}
	if b.Phone != nil {
		parts = append(parts, "phone:"+NameOf(b.Phone))
	}
	return strings.Join(parts, ",")
}

// For names the sender a message to contact would go through, "" for
// none.
func (b *ByContact) For(contact string) string {
	switch Kind(contact) {
	case "email":
		if b.Email != nil {
			return NameOf(b.Email)
		}
	case "phone":
		if b.Phone != nil {
			return NameOf(b.Phone)
		}
	}
	return ""
}
