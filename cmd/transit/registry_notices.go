package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/registry/notices"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/store"
)

// smtpPasswordEnv holds the mail server password when no file is given.
const smtpPasswordEnv = "TRANSIT_SMTP_PASSWORD"

// noticeFlags configure how benefit-ending notices are sent.
type noticeFlags struct {
	every        time.Duration
	file         string
	days         int
	maxAttempts  int
	smtpHost     string
	smtpPort     int
	smtpFrom     string
	smtpHello    string
	smtpUser     string
	smtpPassFile string
	smtpTLS      string
}

func (f *noticeFlags) register(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
}) {
	fs.StringVar(&f.file, "notices-file", "", "write notices to this file (JSON lines, 0600) for delivery; e-mail goes by SMTP instead when --smtp-host is given")
	fs.IntVar(&f.days, "notices-days", notices.DefaultDays, "tell residents this many days before their benefit's last day")
	fs.IntVar(&f.maxAttempts, "notices-attempts", notices.DefaultMaxAttempts, "give up a notice after this many failed attempts")
	fs.StringVar(&f.smtpHost, "smtp-host", "", "send e-mail notices through this mail server")
	fs.IntVar(&f.smtpPort, "smtp-port", 587, "the mail server's port (587 submission with STARTTLS, 25 relay)")
	fs.StringVar(&f.smtpFrom, "smtp-from", "", "the notices' sender address, e.g. registry@city.example")
	fs.StringVar(&f.smtpHello, "smtp-hello", "", "the host name given in EHLO (default localhost)")
	fs.StringVar(&f.smtpUser, "smtp-user", "", "sign in to the mail server as this user (AUTH PLAIN, over TLS only); the password comes from --smtp-password-file or "+smtpPasswordEnv)
	fs.StringVar(&f.smtpPassFile, "smtp-password-file", "", "file holding the mail server password (0600)")
	fs.StringVar(&f.smtpTLS, "smtp-starttls", "require", "require: refuse a server without STARTTLS; opportunistic: use it when offered (a relay on localhost)")
}

// sender builds the notices' sender: SMTP for e-mail when configured, the
// file for every contact it does not cover. fallbackFile is the serve
// command's --notify-file, used when no --notices-file is given.
func (f *noticeFlags) sender(fallbackFile string, stderr io.Writer) (notify.Sender, func(string) bool, error) {
	if f.days < 1 || f.days > 366 {
		return nil, nil, usagef("--notices-days %d: want 1 to 366", f.days)
	}
	if f.maxAttempts < 1 || f.maxAttempts > 100 {
		return nil, nil, usagef("--notices-attempts %d: want 1 to 100", f.maxAttempts)
	}
	file := f.file
	if file == "" {
		file = fallbackFile
	}
	var fileSender notify.Sender
	if file != "" {
		fileSender = &notify.File{Path: file}
	}
	if f.smtpHost == "" {
		if f.smtpUser != "" || f.smtpFrom != "" || f.smtpPassFile != "" {
			return nil, nil, usagef("--smtp-user, --smtp-from and --smtp-password-file need --smtp-host")
		}
		if fileSender == nil {
			return nil, nil, usagef("no way to send notices: give --notices-file FILE, or --smtp-host with --smtp-from")
		}
		return fileSender, nil, nil
	}
	s, err := f.smtp(stderr)
	if err != nil {
		return nil, nil, err
	}
	// E-mail by SMTP; phone numbers to the file, if there is one.
	b := &notify.ByContact{Email: s, Phone: fileSender}
	return b, func(contact string) bool { return b.For(contact) != "" }, nil
}

func (f *noticeFlags) smtp(stderr io.Writer) (*notify.SMTP, error) {
	if strings.ContainsAny(f.smtpHost, " /:") && net.ParseIP(f.smtpHost) == nil {
		return nil, usagef("--smtp-host %q: give a host name or address, and the port with --smtp-port", f.smtpHost)
	}
	if f.smtpPort < 1 || f.smtpPort > 65535 {
		return nil, usagef("--smtp-port %d: want 1 to 65535", f.smtpPort)
	}
	if notify.Kind(f.smtpFrom) != "email" {
		return nil, usagef("--smtp-from %q: give the sender's e-mail address, e.g. registry@city.example", f.smtpFrom)
	}
	var require bool
	switch f.smtpTLS {
	case "require":
		require = true
	case "opportunistic":
	default:
		return nil, usagef("--smtp-starttls %q: want require or opportunistic", f.smtpTLS)
	}
	s := &notify.SMTP{Addr: net.JoinHostPort(f.smtpHost, strconv.Itoa(f.smtpPort)), From: f.smtpFrom, Hello: f.smtpHello,
		RequireTLS: require, TLS: &tls.Config{ServerName: f.smtpHost, MinVersion: tls.VersionTLS12}}
	if f.smtpUser == "" {
		if f.smtpPassFile != "" {
			return nil, usagef("--smtp-password-file needs --smtp-user")
		}
		return s, nil
	}
	pw := os.Getenv(smtpPasswordEnv)
	if f.smtpPassFile != "" {
		fi, err := os.Stat(f.smtpPassFile)
		if err != nil {
			return nil, usagef("--smtp-password-file: %v", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			fmt.Fprintf(stderr, "transit: warning: %s is readable by others (%s); chmod 600 it\n", f.smtpPassFile, fi.Mode().Perm())
		}
		b, err := os.ReadFile(f.smtpPassFile)
		if err != nil {
			return nil, usagef("--smtp-password-file: %v", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	if pw == "" {
		return nil, usagef("--smtp-user %s: no password; put it in a file for --smtp-password-file or in %s, never on the command line", f.smtpUser, smtpPasswordEnv)
	}
	s.Username, s.Password = f.smtpUser, pw
	return s, nil
}

// runner builds the notice runner on st.
func (f *noticeFlags) runner(st store.Store, loc *time.Location, fallbackFile string, stderr io.Writer) (*notices.Runner, error) {
	s, reaches, err := f.sender(fallbackFile, stderr)
	if err != nil {
		return nil, err
	}
	return &notices.Runner{Store: st, Sender: s, Rule: notices.Rule{Days: f.days, Location: loc, Reaches: reaches},
		MaxAttempts: f.maxAttempts, Log: slog.Default()}, nil
}

// startNotices runs the notices every --notices-every inside serve, and
// returns a stop that waits for the pass under way. Without the flag it
// does nothing.
func (f *noticeFlags) start(ctx context.Context, st store.Store, loc *time.Location, fallbackFile string, stderr io.Writer) (stop func(), err error) {
	if f.every == 0 {
		return func() {}, nil
	}
	if f.every < time.Minute {
		return nil, usagef("--notices-every %s: want a minute or more (e.g. 1h)", f.every)
	}
	r, err := f.runner(st, loc, fallbackFile, stderr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { r.Run(ctx, f.every) }) //nolint:errcheck // Run fails only on a bad interval, checked above
	slog.Info("benefit-ending notices on", "every", f.every, "days", f.days, "sender", notify.NameOf(r.Sender))
	return func() { cancel(); wg.Wait() }, nil
}

// newRegistryNoticesCmd is `transit registry notices`.
func newRegistryNoticesCmd(rf *registryFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "notices",
		Short: "Tell residents in time that their benefit is ending",
	}
	var nf noticeFlags
	run := &cobra.Command{
		Use:   "run --db URL (--notices-file FILE | --smtp-host HOST --smtp-from ADDR)",
		Short: "Queue the notices due today and send the queued ones, once (for a timer)",
		Long: `Residents whose benefit's last day is within --notices-days (30) of today, in the city's time zone,
who have not opted out and have a contact that can be reached, are sent one notice per benefit and last
day, in Ukrainian. One pass: queue what is due, send what is queued and due an attempt, and exit; run it
from a systemd timer or cron (or give transit registry serve --notices-every 1h instead).

E-mail goes through --smtp-host (STARTTLS required unless --smtp-starttls opportunistic; AUTH PLAIN with
--smtp-user, the password from --smtp-password-file or TRANSIT_SMTP_PASSWORD, never on the command line).
Other contacts (phone numbers), or all of them without --smtp-host, are written to --notices-file for a
gateway to deliver. A failed attempt is retried with doubling waits (5 min, 10 min, ... up to 6 h) until
--notices-attempts; a notice whose contact was cleared or refused, or whose resident opted out, is
dropped with the reason recorded. Delivery is at least once: a crash between the mail server accepting
a notice and the registry recording it sends it again at the next attempt (same Message-ID).`,
		Example: `  transit registry notices run --db sqlite:registry.db --notices-file notices.jsonl
  TRANSIT_SMTP_PASSWORD=... transit registry notices run --db postgres://registry@db/transit \
      --smtp-host mail.city.example --smtp-from registry@city.example --smtp-user registry`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rf.existing = true
			st, loc, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			r, err := nf.runner(st, loc, "", c.ErrOrStderr())
			if err != nil {
				return err
			}
			rep, err := r.Once(c.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "queued %d, sent %d, failed %d (tried again later), dropped %d\n", rep.Queued, rep.Sent, rep.Failed, rep.Dropped)
			return nil
		},
	}
	nf.register(run.Flags())
	cmd.AddCommand(run)
	return cmd
}
