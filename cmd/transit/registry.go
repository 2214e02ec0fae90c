package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry"
	"github.com/citycard/transit/registry/api"
	"github.com/citycard/transit/registry/publish"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/postgres"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/validator/hotlist"
)

// registryFlags selects the registry database.
type registryFlags struct {
	db        string
	tz        string
	issuer    uint16
	cardYears int
}

func (f *registryFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.db, "db", "", "registry database: a PostgreSQL URL (postgres://user@host:5432/transit) or sqlite:FILE for the embedded store")
	cmd.PersistentFlags().StringVar(&f.tz, "tz", "Europe/Kyiv", "the city's time zone, which decides what today is (card validity, expiring entitlements)")
}

// open opens the registry store the flags name. A PostgreSQL store must
// have been migrated first (transit registry migrate).
func (f *registryFlags) open(ctx context.Context) (store.Store, *time.Location, error) {
	loc, err := time.LoadLocation(f.tz)
	if err != nil {
		return nil, nil, usagef("--tz %q: not a known time zone (e.g. Europe/Kyiv, UTC)", f.tz)
	}
	if f.issuer > 9999 {
		return nil, nil, usagef("--issuer %d: an issuer code has at most 4 digits", f.issuer)
	}
	opt := store.Options{Issuer: f.issuer, CardYears: f.cardYears, Location: loc}
	var st store.Store
	switch {
	case f.db == "":
		return nil, nil, usagef("no database: give --db postgres://... or --db sqlite:FILE")
	case isPostgresURL(f.db):
		st, err = postgres.Open(ctx, f.db, opt)
	case strings.HasPrefix(f.db, "sqlite:"):
		st, err = sqlite.Open(ctx, strings.TrimPrefix(f.db, "sqlite:"), opt)
	default:
		return nil, nil, usagef("--db %q: want a postgres:// URL or sqlite:FILE", f.db)
	}
	if err != nil {
		return nil, nil, err
	}
	return st, loc, nil
}

// newRegistryCmd is `transit registry`: the register of residents, their
// benefits and cards, and its HTTP API.
func newRegistryCmd() *cobra.Command {
	var rf registryFlags
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "The registry: residents, benefit entitlements, cards and the audited API over them",
		Long: `The registry holds the city's only personal data: residents, their benefit entitlements and their
cards. Staff and residents use it through an HTTP JSON API with API tokens; every read of personal data
is written to an append-only audit log with who read it and why. Clearing and the hotlist get card
events without personal data.`,
	}
	rf.register(cmd)

	migrate := &cobra.Command{
		Use:     "migrate",
		Short:   "Create or upgrade the registry schema in PostgreSQL",
		Long:    "Apply every schema migration the database lacks. Safe to run again; the embedded sqlite: store migrates itself.",
		Example: `  transit registry migrate --db postgres://postgres@127.0.0.1:5432/transit`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !isPostgresURL(rf.db) {
				return usagef("migrate needs --db postgres://...; the embedded sqlite: store migrates itself when opened")
			}
			n, err := postgres.Migrate(c.Context(), rf.db)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "applied %d migration(s)\n", n)
			return nil
		},
	}

	var (
		listen string
		pf     publishFlags
	)
	serve := &cobra.Command{
		Use:   "serve --db URL --issuer CODE",
		Short: "Serve the registry's HTTP JSON API until stopped",
		Long: `Serve the registry API (see registry/api): residents, entitlements, card lifecycle, personalisation
data, card events and blocked cards, the expiring list, benefit-register imports and the audit log.
Requests need an API token (transit registry token create). The API carries personal data and tokens:
outside 127.0.0.1 put it behind a TLS-terminating proxy. Stop with Ctrl-C or SIGTERM.

With the HSM (--keystore or --pkcs11-module) and --hotlist-dir, it also publishes to validators, without a
token, under /v1/validator (the validators' updates_url): the hotlist of blocked cards, signed with
sign-hotlist, as full lists and deltas (registry/publish), and with --tariff DIR the signed tariff
directory as a zip. Those files hold card numbers and block reasons only.`,
		Example: `  transit registry serve --db postgres://postgres@127.0.0.1/transit --issuer 1001 --listen 127.0.0.1:8081
  transit registry serve --db sqlite:registry.db --issuer 1001
  TRANSIT_KEYSTORE_PASSPHRASE=... transit registry serve --db sqlite:registry.db --issuer 1001 \
      --keystore city.keys --hotlist-dir hotlists --tariff tariff`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if rf.issuer == 0 {
				return usagef("give the city's card issuer code: --issuer CODE (1 to 9999; the first four digits of card numbers)")
			}
			if rf.cardYears < 1 || rf.cardYears > 20 {
				return usagef("--card-years %d: want 1 to 20", rf.cardYears)
			}
			st, loc, err := rf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			validator, done, err := pf.open(ctx, st, c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("listen on %s: %w; choose another --listen address", listen, err)
			}
			if host, _, _ := net.SplitHostPort(listen); !isLoopback(host) {
				slog.Warn("the registry API serves personal data and tokens without TLS; put a TLS-terminating proxy in front", "listen", listen)
			}
			slog.Info("registry API listening", "addr", ln.Addr().String(), "issuer", rf.issuer)
			fmt.Fprintf(c.ErrOrStderr(), "registry API on http://%s/v1 (Ctrl-C stops)\n", ln.Addr())
			// /healthz and /readyz answer before the API's own checks.
			probes := registryProbes(ctx, st)
			err = api.Serve(ctx, ln, probes.Wrap(api.New(st, api.Options{Location: loc, Logger: slog.Default(), Validator: validator})))
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	serve.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to serve the API on")
	serve.Flags().Uint16Var(&rf.issuer, "issuer", 0, "the city's card issuer code, the first four digits of new card numbers")
	serve.Flags().IntVar(&rf.cardYears, "card-years", store.DefaultCardYears, "how many years a new card is valid")
	pf.register(serve)

	cmd.AddCommand(migrate, serve, newRegistryTokenCmd(&rf))
	return cmd
}

// publishFlags configure what the registry publishes to validators.
type publishFlags struct {
	hsm        hsmFlags
	hotlistDir string
	tariffDir  string
}

func (f *publishFlags) register(cmd *cobra.Command) {
	f.hsm.register(cmd)
	cmd.Flags().StringVar(&f.hotlistDir, "hotlist-dir", "", "directory keeping the published hotlist and the steps deltas are built from (needs the HSM)")
	cmd.Flags().StringVar(&f.tariffDir, "tariff", "", "signed tariff directory to publish to validators (needs the HSM, for the sign-tariff verify key)")
}

// open returns the handler of /v1/validator, nil when the registry
// publishes nothing, and a function that closes the HSM.
func (f *publishFlags) open(ctx context.Context, st store.Store, stderr io.Writer) (http.Handler, func(), error) {
	if f.hsm.keystore == "" && f.hsm.module == "" {
		if f.hotlistDir != "" || f.tariffDir != "" {
			return nil, nil, usagef("publishing to validators signs and verifies with the HSM: give --keystore FILE or --pkcs11-module MODULE --token LABEL")
		}
		slog.Info("publishing no hotlist or tariff to validators: no HSM given")
		return nil, func() {}, nil
	}
	if f.hotlistDir == "" {
		return nil, nil, usagef("give --hotlist-dir DIR, where the published hotlist and its deltas are kept")
	}
	km, done, err := f.hsm.open(stderr)
	if err != nil {
		return nil, nil, err
	}
	h, err := f.publishers(ctx, st, km)
	if err != nil {
		done()
		return nil, nil, err
	}
	return h, done, nil
}

func (f *publishFlags) publishers(ctx context.Context, st store.Store, km hsm.KeyManager) (http.Handler, error) {
	info, err := hsm.Resolve(ctx, km, hsm.Ref{Label: hsm.LabelSignHotlist})
	if err != nil {
		return nil, fmt.Errorf("the HSM has no %s key to sign hotlists: %w; create it (transit hsm keygen %s)", hsm.LabelSignHotlist, err, hsm.LabelSignHotlist)
	}
	signer, err := km.Signer(ctx, info.Ref)
	if err != nil {
		return nil, fmt.Errorf("hotlist signing key %s: %w", info.Ref, err)
	}
	keys, err := hotlist.HSMKeys(ctx, km)
	if err != nil {
		return nil, err
	}
	hl, err := publish.Open(ctx, st, publish.Options{Dir: f.hotlistDir, Signer: signer, KeyVersion: info.Ref.Version, Keys: keys,
		CheckEvery: publish.DefaultCheckEvery, Log: slog.Default()})
	if err != nil {
		return nil, err
	}
	// Publish now, so that a broken store or key fails the start rather
	// than the first validator's poll.
	if _, err := hl.Refresh(ctx); err != nil {
		return nil, err
	}
	h := &publish.Handler{Hotlists: hl, Log: slog.Default()}
	if f.tariffDir != "" {
		if h.Tariff, err = publish.OpenTariff(ctx, f.tariffDir, km, slog.Default()); err != nil {
			return nil, err
		}
	}
	slog.Info("publishing to validators under /v1/validator", "hotlist_version", hl.Version(), "signed_with", info.Ref.String(), "tariff", f.tariffDir)
	return h, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newRegistryTokenCmd(rf *registryFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage API tokens of the registry",
	}
	var (
		user     string
		role     string
		resident int64
	)
	create := &cobra.Command{
		Use:   "create --user NAME --role ROLE",
		Short: "Make an API token for a user and print it once",
		Long: `Make a random API token bound to a user and a role, store only its SHA-256, and print the token once
on standard output: it cannot be shown again. Roles: desk, supervisor, finance, auditor, resident,
and service for another service of the platform (clearing: card events and blocked cards only).
A resident's token also names their resident id (--resident) and shows only their own data.`,
		Example: `  transit registry token create --db postgres://postgres@127.0.0.1/transit --user olena.k --role desk
  transit registry token create --db sqlite:registry.db --user citizen-42 --role resident --resident 42
  transit registry token create --db sqlite:registry.db --user clearing --role service`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if user == "" {
				return usagef("give the user the token is for: --user NAME")
			}
			actor := registry.Actor{User: user, Role: registry.Role(role), Resident: resident}
			if !actor.Role.Valid() {
				return usagef("--role %q: want desk, supervisor, finance, auditor, resident or service", role)
			}
			if actor.Role == registry.RoleResident && resident <= 0 {
				return usagef("a resident's token needs their resident id: --resident ID")
			}
			if actor.Role != registry.RoleResident && resident != 0 {
				return usagef("--resident is only for --role resident")
			}
			secret, tok, err := registry.NewToken(actor, time.Now())
			if err != nil {
				return usageError{err}
			}
			st, _, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.AddToken(c.Context(), tok); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), secret)
			fmt.Fprintf(c.ErrOrStderr(), "token for %s (%s) stored; it is shown only this once: send it as `Authorization: Bearer <token>`\n", user, role)
			return nil
		},
	}
	create.Flags().StringVar(&user, "user", "", "who the token is for (recorded in the audit log)")
	create.Flags().StringVar(&role, "role", "", "desk, supervisor, finance, auditor, resident or service")
	create.Flags().Int64Var(&resident, "resident", 0, "for --role resident: their resident id")
	cmd.AddCommand(create)
	return cmd
}
