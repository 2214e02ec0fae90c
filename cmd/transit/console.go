package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/pcsc"
	"github.com/citycard/transit/clearing/health"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry/console"
	"github.com/citycard/transit/registry/desk"
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/signin"
	"github.com/citycard/transit/registry/store"
)

// newConsoleCmd is `transit console`: the web console for the desk,
// finance staff, auditors and residents, over the registry and clearing
// stores.
func newConsoleCmd() *cobra.Command {
	var (
		rf            registryFlags
		sf            storeFlags
		df            deskFlags // transit desk personalise's reader and key flags; the keys also sign statements
		tz, listen    string
		secureCookies bool
		lf            listenFlags
		af            auditFlags
		outbox        string
	)
	cmd := &cobra.Command{
		Use:   "console --registry-db URL --clearing-db URL --issuer CODE [--reader NAME --keystore FILE]",
		Short: "Serve the web console: desk, finance statements, audit log and residents' own view",
		Long: `Serve the web console until stopped. Staff sign in with their named accounts (transit registry staff
add); residents with a one-time code sent to the contact the registry holds for them (--notify-file
FILE writes those messages for delivery; without it resident sign-in is off). Failed sign-ins are
throttled per address and account, and logged with the address. Desk operators find residents, see their entitlements and cards, block
a card and order its replacement, stating the purpose of every read of personal data (it goes to the
audit log). Finance staff see the compensation statements of a period per carrier, benefit category and
funding source and download them as CSV or XLSX; supervisors close a period, which needs the statement
signing key (--keystore or --pkcs11-module). Supervisors see and revoke tokens and sessions. Residents
see their own record, and who read it and whether the audit log verified: the console verifies the
audit chain at start, refuses to serve an altered one unless --allow-broken-audit, and again every
--audit-verify-every. Pages are in Ukrainian and English.

Personalising a card from the web (the button "Personalise on this desk's reader" beside an ordered
card) needs the console to run on the desk machine, with the desk's PC/SC reader (--reader NAME, as
pcsc_scan shows it) and the desk's card keys, as transit desk personalise does: --keystore FILE (the
issuer keystore, transit hsm export-role issuer) or --pkcs11-module MODULE --pkcs11-token LABEL. The
button waits --wait for a card on the reader. Without --reader the pages offer no such button, and
cards are personalised with transit desk personalise.

The console carries personal data and session cookies: it listens on 127.0.0.1 unless given --tls-cert
and --tls-key (HTTPS; cookies are then Secure), or --behind-tls-proxy with --secure-cookies. Stop with
Ctrl-C or SIGTERM.`,
		Example: `  transit console --registry-db sqlite:registry.db --clearing-db sqlite:clearing.db --issuer 1001 --notify-file outbox.jsonl
  TRANSIT_KEYSTORE_PASSPHRASE=... transit console --registry-db postgres://postgres@127.0.0.1/transit \
      --clearing-db postgres://postgres@127.0.0.1/transit --issuer 1001 --keystore keys.json \
      --listen 0.0.0.0:8443 --tls-cert console.crt --tls-key console.key
  # on the desk machine, personalising on its reader:
  TRANSIT_KEYSTORE_PASSPHRASE=... transit console --registry-db postgres://registry/transit --clearing-db postgres://clearing/transit \
      --issuer 1001 --reader "ACS ACR122U 00 00" --keystore issuer.keys`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if rf.db == "" || sf.db == "" {
				return usagef("give both stores: --registry-db (postgres://... or sqlite:FILE) and --clearing-db")
			}
			if rf.issuer == 0 {
				return usagef("give the city's card issuer code: --issuer CODE (1 to 9999), for the replacement cards the desk orders")
			}
			if rf.cardYears < 1 || rf.cardYears > 20 {
				return usagef("--card-years %d: want 1 to 20", rf.cardYears)
			}
			hasKeys := df.hsm.keystore != "" || df.hsm.module != ""
			switch {
			case df.reader != "" && !hasKeys:
				return usagef("--reader needs the desk's card keys: --keystore FILE (the issuer keystore) or --pkcs11-module MODULE --pkcs11-token LABEL")
			case df.hsm.module != "" && df.hsm.token == "":
				return usagef("--pkcs11-module needs --pkcs11-token LABEL")
			case df.wait <= 0 || df.wait > console.MaxCardWait:
				return usagef("--wait %s: want more than 0 and at most %s", df.wait, console.MaxCardWait)
			}
			if err := af.check(); err != nil {
				return err
			}
			rf.tz, sf.tz = tz, tz
			rf.existing = true // the console serves an installed registry
			rf.dbFlag = "--registry-db"
			reg, loc, err := rf.open(ctx)
			if err != nil {
				return err
			}
			defer reg.Close()
			clr, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer clr.Close()
			opt := console.Options{Registry: reg, Clearing: clr, Location: loc, Logger: slog.Default(), SecureCookies: secureCookies || lf.tls()}
			var km hsm.KeyManager
			if hasKeys {
				var done func()
				km, done, err = df.hsm.open(c.ErrOrStderr())
				if err != nil {
					return err
				}
				defer done()
				opt.Statements = &statement.Service{Store: clr, Keys: km, Location: loc, Log: slog.Default()}
				if df.reader != "" {
					rd := pcsc.Open(df.reader)
					defer rd.Close()
					// A reader plugged in later, or pcscd started later,
					// still serves: the reader reconnects on each wait.
					if names, err := rd.Readers(); err != nil || !slices.Contains(names, df.reader) {
						slog.Warn("the card reader is not available now; personalisation waits for it", "reader", df.reader, "readers", names, "error", err)
					}
					opt.Reader, opt.CardKeys, opt.CardWait = desk.PCSC(rd), cardkey.New(km), df.wait
				}
			}
			if lf.behindProxy && !secureCookies {
				return usagef("--behind-tls-proxy: give --secure-cookies too, since the browser reaches the console over HTTPS")
			}
			so := signin.Options{Store: reg, Log: slog.Default()}
			if outbox != "" {
				so.Sender = &notify.File{Path: outbox}
			}
			if opt.SignIn, err = signin.New(so); err != nil {
				return err
			}
			if opt.Audit, err = af.start(ctx, reg, km, c.ErrOrStderr()); err != nil {
				return err
			}
			srv, err := console.New(opt)
			if err != nil {
				return err
			}
			ln, err := lf.listen("the console", listen)
			if err != nil {
				return err
			}
			slog.Info("console listening", "addr", ln.Addr().String(), "closing", opt.Statements != nil, "reader", df.reader, "tls", lf.tls())
			fmt.Fprintf(c.ErrOrStderr(), "console on %s://%s/ (Ctrl-C stops)\n", lf.scheme(), ln.Addr())
			// The registry service signs the chain's checkpoints; the
			// console watches the chain it serves.
			// /healthz and /readyz answer before sign-in.
			probes := registryProbes(ctx, reg, health.Check{Name: "clearing store", Fn: clr.Ping})
			return af.serve(ctx, nil, reg, func(ctx context.Context) error { return console.Serve(ctx, ln, probes.Wrap(srv)) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&rf.db, "registry-db", "", "registry database: a PostgreSQL URL or sqlite:FILE")
	f.StringVar(&sf.db, "clearing-db", "", "clearing database: a PostgreSQL URL or sqlite:FILE")
	f.StringVar(&tz, "tz", "Europe/Kyiv", "the city's time zone: what today is, which month a ride belongs to, how times are shown")
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "address to serve the console on")
	f.Uint16Var(&rf.issuer, "issuer", 0, "the city's card issuer code, the first four digits of new card numbers")
	f.IntVar(&rf.cardYears, "card-years", store.DefaultCardYears, "how many years a new card is valid")
	f.BoolVar(&secureCookies, "secure-cookies", false, "mark cookies Secure (the console is served over HTTPS by a proxy; implied by --tls-cert)")
	f.StringVar(&outbox, "notify-file", "", "write residents' one-time sign-in codes to this file (JSON lines, 0600) for delivery; without it resident sign-in is off")
	lf.register(cmd)
	af.register(cmd)
	// The registry service signs the chain; the console only reads it.
	cmd.Flags().MarkHidden("audit-checkpoint-every") //nolint:errcheck // the flag exists
	// The flags of transit desk personalise. The console has no
	// registry token of its own (people sign in), but keeps the desk's
	// --pkcs11-token, so one command line suits both.
	df.registerCard(cmd)
	df.wait = console.DefaultCardWait
	cmd.Flags().Lookup("wait").DefValue = console.DefaultCardWait.String()
	// The same keys close statements when they hold the signing key.
	cmd.Flags().Lookup("keystore").Usage = "keystore file: the issuer's (transit hsm export-role issuer) to personalise cards, " +
		"one with sign-statement to close periods; passphrase from TRANSIT_KEYSTORE_PASSPHRASE or a prompt"
	return cmd
}
