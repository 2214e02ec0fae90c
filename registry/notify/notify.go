// Package notify sends short messages to people at the contact the
// registry holds for them: a resident's one-time sign-in code, a notice
// that their benefit ends (registry/notices). A [Sender] is one way of
// delivering: a [File] for development, tests and a gateway that
// collects messages, [SMTP] for e-mail, and [ByContact] to send each
// message the way its contact can receive it, so that the code that
// decides what to say does not know how it travels.
package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Message is one message to one person.
type Message struct {
	// To is the contact as the registry holds it: a phone number, an
	// e-mail address.
	To      string
	Subject string
	Text    string
	// ID, if set, names the message for good ("notice-12"): senders that
	// can (SMTP's Message-ID) carry it, so that a copy is recognisable.
	ID string
}

// Sender delivers messages. Send returns once the message is handed on
// durably (written, queued, accepted by a server); an error means it was
// not, and the caller may tell the person so.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// ErrUnreachable is wrapped when a contact cannot receive what a sender
// delivers (a postal address given to an e-mail sender).
var ErrUnreachable = errors.New("this contact cannot receive messages")

// File appends each message as one JSON line to a file: the sender for
// development, tests and a city that collects messages by other means.
// The file holds sign-in codes, so it is created 0600 and kept so.
type File struct {
	Path string
	// Now stamps the lines; nil means time.Now.
	Now func() time.Time

	mu sync.Mutex
}

// Line is one line of a File.
type Line struct {
	At      time.Time `json:"at"`
	To      string    `json:"to"`
	Subject string    `json:"subject"`
	Text    string    `json:"text"`
}

// Send implements Sender.
func (f *File) Send(ctx context.Context, m Message) error {
	if strings.TrimSpace(m.To) == "" {
		return fmt.Errorf("notify: %w: no contact", ErrUnreachable)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	b, err := json.Marshal(Line{At: now().UTC(), To: m.To, Subject: m.Subject, Text: m.Text})
	if err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out, err := os.OpenFile(f.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("notify: open the outbox %s: %w", f.Path, err)
	}
	defer out.Close()
	// Whatever the umask, and whatever made the file first.
	if err := out.Chmod(0o600); err != nil {
		return fmt.Errorf("notify: outbox %s: %w", f.Path, err)
	}
	if _, err := out.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("notify: write the outbox %s: %w", f.Path, err)
	}
	if err := out.Sync(); err != nil {
		return fmt.Errorf("notify: sync the outbox %s: %w", f.Path, err)
	}
	return out.Close()
}

// ReadFile returns the messages a File holds, oldest first.
func ReadFile(path string) ([]Line, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("notify: %w", err)
	}
	var out []Line
	for i, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if l == "" {
			continue
		}
		var m Line
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			return nil, fmt.Errorf("notify: %s line %d: %w", path, i+1, err)
		}
		out = append(out, m)
	}
	return out, nil
}
