package notify_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/citycard/transit/registry/notify"
)

func TestFile(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	p := filepath.Join(t.TempDir(), "outbox.jsonl")
	f := &notify.File{Path: p}
	for _, to := range []string{"+380501112233", "olga@example.org"} {
		if err := f.Send(context.Background(), notify.Message{To: to, Subject: "s", Text: "code 12345678\nsecond line"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Send(context.Background(), notify.Message{To: " "}); !errors.Is(err, notify.ErrUnreachable) {
		t.Errorf("no contact: %v", err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("outbox %v, %v; want 0600 whatever the umask", fi, err)
	}
	ms, err := notify.ReadFile(p)
	if err != nil || len(ms) != 2 || ms[1].To != "olga@example.org" || ms[0].Text != "code 12345678\nsecond line" {
		t.Fatalf("ReadFile = %+v, %v", ms, err)
	}
}
