package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/registry/console"
	"github.com/citycard/transit/registry/store"
)

// newConsoleCmd is `transit console`: the web console for the desk,
// finance staff, auditors and residents, over the registry and clearing
// stores.
func newConsoleCmd() *cobra.Command {
	var (
		rf            registryFlags
		sf            storeFlags
		hf            hsmFlags
		tz, listen    string
		secureCookies bool
	)
	cmd := &cobra.Command{
		Use:   "console --registry-db URL --clearing-db URL --issuer CODE",
		Short: "Serve the web console: desk, finance statements, audit log and residents' own view",
		Long: `Serve the web console until stopped. Staff and residents sign in with their registry API token
(transit registry token create). Desk operators find residents, see their entitlements and cards, block
a card and order its replacement, stating the purpose of every read of personal data (it goes to the
audit log). Finance staff see the compensation statements of a period per carrier, benefit category and
funding source and download them as CSV or XLSX; supervisors close a period, which needs the statement
signing key (--keystore or --pkcs11-module). Residents see their own record and who read it. Pages are
in Ukrainian and English.

The console carries personal data and session cookies: outside 127.0.0.1 serve it behind a
TLS-terminating proxy and give --secure-cookies. Stop with Ctrl-C or SIGTERM.`,
		Example: `  transit console --registry-db sqlite:registry.db --clearing-db sqlite:clearing.db --issuer 1001
  TRANSIT_KEYSTORE_PASSPHRASE=... transit console --registry-db postgres://postgres@127.0.0.1/transit \
      --clearing-db postgres://postgres@127.0.0.1/transit --issuer 1001 --keystore keys.json --listen 127.0.0.1:8090`,
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
			rf.tz, sf.tz = tz, tz
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
			opt := console.Options{Registry: reg, Clearing: clr, Location: loc, Logger: slog.Default(), SecureCookies: secureCookies}
			if hf.keystore != "" || hf.module != "" {
				km, done, err := hf.open(c.ErrOrStderr())
				if err != nil {
					return err
				}
				defer done()
				opt.Statements = &statement.Service{Store: clr, Keys: km, Location: loc, Log: slog.Default()}
			}
			srv, err := console.New(opt)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w; choose another --listen address", listen, err)
			}
			if host, _, _ := net.SplitHostPort(listen); !isLoopback(host) && !secureCookies {
				slog.Warn("the console serves personal data without TLS; put a TLS-terminating proxy in front and give --secure-cookies", "listen", listen)
			}
			slog.Info("console listening", "addr", ln.Addr().String(), "closing", opt.Statements != nil)
			fmt.Fprintf(c.ErrOrStderr(), "console on http://%s/ (Ctrl-C stops)\n", ln.Addr())
			err = console.Serve(ctx, ln, srv)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&rf.db, "registry-db", "", "registry database: a PostgreSQL URL or sqlite:FILE")
	f.StringVar(&sf.db, "clearing-db", "", "clearing database: a PostgreSQL URL or sqlite:FILE")
	f.StringVar(&tz, "tz", "Europe/Kyiv", "the city's time zone: what today is, which month a ride belongs to, how times are shown")
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "address to serve the console on")
	f.Uint16Var(&rf.issuer, "issuer", 0, "the city's card issuer code, the first four digits of new card numbers")
	f.IntVar(&rf.cardYears, "card-years", store.DefaultCardYears, "how many years a new card is valid")
	f.BoolVar(&secureCookies, "secure-cookies", false, "mark cookies Secure (the console is served over HTTPS by a proxy)")
	hf.register(cmd)
	return cmd
}
