package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/registry/store/storetest"
	"github.com/citycard/transit/simulator/testenv/smtptest"
)

// TestNoticesRun sends the day's notices with `transit registry notices
// run`: e-mail to a local SMTP server (aiosmtpd), a phone number to the
// notices file, each once.
func TestNoticesRun(t *testing.T) {
	srv := smtptest.Start(t)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.db")
	loc := mustLoc(t)
	st, err := sqlite.Open(ctx, path, store.Options{Issuer: 1001, Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	desk := registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "test"}
	today := registry.Today(time.Now(), loc)
	for i, contact := range []string{"oksana@example.org", "+380441234567", "вул. Хрещатик, 1"} {
		r, err := st.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(i + 1), Name: "Оксана",
			BirthDate: registry.Date{Year: 1950, Month: 3, Day: 1}, Contact: contact})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.AddEntitlement(ctx, desk, registry.Entitlement{ResidentID: r.ID, Category: registry.CategoryPensioner,
			LegalBasis: "Law 1788-XII", Evidence: "AA 1", ValidFrom: today.AddDays(-100), ValidTo: today.AddDays(12),
			Funding: registry.FundingState}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	host, port, _ := net.SplitHostPort(srv.Addr)
	file := filepath.Join(dir, "notices.jsonl")
	args := []string{"registry", "notices", "run", "--db", "sqlite:" + path, "--notices-file", file,
		"--smtp-host", host, "--smtp-port", port, "--smtp-from", "registry@city.example", "--smtp-starttls", "opportunistic"}
	if out := transit(t, ctx, 0, args...); !strings.Contains(out, "queued 2, sent 2, failed 0 (tried again later), dropped 1") {
		t.Fatalf("first run: %s", out)
	}
	if out := transit(t, ctx, 0, args...); !strings.Contains(out, "queued 0, sent 0") {
		t.Errorf("second run: %s", out)
	}
	ms := srv.Wait(1)
	ends := today.AddDays(12)
	dmy := ends.String()[8:10] + "." + ends.String()[5:7] + "." + ends.String()[0:4]
	if len(ms) != 1 || ms[0].To != "<oksana@example.org>" || !strings.Contains(ms[0].Subject, dmy) {
		t.Errorf("the mail server holds %+v", ms)
	}
	lines, err := notify.ReadFile(file)
	if err != nil || len(lines) != 1 || lines[0].To != "+380441234567" || !strings.Contains(lines[0].Text, dmy) {
		t.Errorf("the notices file holds %+v, %v", lines, err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the notices file: %v, %v", fi.Mode(), err)
	}
}

func TestNoticesBadInputIsOneClearLine(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "registry.db")
	transit(t, context.Background(), 0, "registry", "migrate", "--db", db)
	t.Setenv(smtpPasswordEnv, "")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no sender", nil, "--notices-file"},
		{"no sender address", []string{"--smtp-host", "mail.example"}, "--smtp-from"},
		{"user without password", []string{"--smtp-host", "mail.example", "--smtp-from", "r@city.example", "--smtp-user", "r"}, smtpPasswordEnv},
		{"host with a port", []string{"--smtp-host", "mail.example:25", "--smtp-from", "r@city.example"}, "--smtp-port"},
		{"starttls what", []string{"--smtp-host", "mail.example", "--smtp-from", "r@city.example", "--smtp-starttls", "yes"}, "require or opportunistic"},
		{"days", []string{"--notices-file", "x", "--notices-days", "0"}, "--notices-days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb syncBuffer
			code := run(context.Background(), append([]string{"registry", "notices", "run", "--db", db}, tc.args...), &out, &errb)
			msg := errb.String()
			if code != 2 || !strings.Contains(msg, tc.want) || strings.Count(strings.TrimSpace(msg), "\n") != 0 {
				t.Errorf("exit %d, stderr %q; want exit 2 and one line with %q", code, msg, tc.want)
			}
		})
	}
	var out, errb syncBuffer
	if code := run(context.Background(), []string{"registry", "serve", "--db", db, "--issuer", "1001", "--notices-every", "10s", "--notices-file", "x"}, &out, &errb); code != 2 ||
		!strings.Contains(errb.String(), "--notices-every") {
		t.Errorf("serve --notices-every 10s: exit %d, %q", code, errb.String())
	}
}

// TestServeSendsNotices: `transit registry serve --notices-every` sends
// the due notices at start, to the sign-in outbox when no notices file
// is given.
func TestServeSendsNotices(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "registry.db")
	loc := mustLoc(t)
	st, err := sqlite.Open(ctx, path, store.Options{Issuer: 1001, Location: loc})
	if err != nil {
		t.Fatal(err)
	}
	desk := registry.Access{Actor: registry.Actor{User: "olena", Role: registry.RoleDesk}, Purpose: "test"}
	today := registry.Today(time.Now(), loc)
	r, err := st.AddResident(ctx, desk, registry.Resident{RegistryNumber: storetest.RegistryNumber(1), Name: "Оксана",
		BirthDate: registry.Date{Year: 1950, Month: 3, Day: 1}, Contact: "+380441234567"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddEntitlement(ctx, desk, registry.Entitlement{ResidentID: r.ID, Category: registry.CategoryVeteran,
		LegalBasis: "Law 3551-XII", Evidence: "AA 2", ValidFrom: today.AddDays(-100), ValidTo: today,
		Funding: registry.FundingState}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	outbox := filepath.Join(dir, "outbox.jsonl")
	stop, _ := background(t, ctx, "registry serve", "registry", "serve", "--db", "sqlite:"+path, "--issuer", "1001",
		"--listen", freePort(t), "--notify-file", outbox, "--notices-every", "1h")
	var lines []notify.Line
	for ctx.Err() == nil {
		if lines, err = notify.ReadFile(outbox); err == nil && len(lines) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	if len(lines) != 1 || lines[0].To != "+380441234567" || !strings.Contains(lines[0].Text, "«ветеран»") {
		t.Errorf("the outbox holds %+v", lines)
	}
}
