package notify

import (
	"bytes"
	"net/mail"
	"slices"
	"testing"
)

// FuzzCompose: whatever a contact, subject or text holds, the message
// has exactly the headers the sender writes (none injected) and reads
// back as a message.
func FuzzCompose(f *testing.F) {
	f.Add("oksana@example.org", "Пільга закінчується 31.12.2026", "Текст\nрядок", "notice-1")
	f.Add("\"a\r\nBcc: x\" <a@example.org>", "x\r\nBcc: all@example.org", ".\r\n.\n", "")
	f.Add("a@example.org", "=?utf-8?q?x?=", "\r\n\r\nFrom: x", "n-2")
	s := &SMTP{From: "registry@city.example"}
	from, err := mail.ParseAddress(s.From)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, to, subject, text, id string) {
		addr, err := mail.ParseAddress(to)
		if err != nil {
			return
		}
		b, err := s.compose(from, addr, Message{To: to, Subject: subject, Text: text, ID: id})
		if err != nil {
			return
		}
		m, err := mail.ReadMessage(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("the message does not read back: %v\n%q", err, b)
		}
		var keys []string
		for k := range m.Header {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		want := []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Mime-Version", "Subject", "To"}
		if id != "" {
			want = []string{"Content-Transfer-Encoding", "Content-Type", "Date", "From", "Message-Id", "Mime-Version", "Subject", "To"}
		}
		if !slices.Equal(keys, want) {
			t.Fatalf("headers %v, want %v\n%q", keys, want, b)
		}
		for _, k := range want {
			if len(m.Header[k]) != 1 {
				t.Fatalf("header %s appears %d times\n%q", k, len(m.Header[k]), b)
			}
		}
	})
}
