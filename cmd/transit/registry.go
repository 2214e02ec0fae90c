package main

import (
	"cmp"
	"context"
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
	"github.com/citycard/transit/registry/notify"
	"github.com/citycard/transit/registry/publish"
	"github.com/citycard/transit/registry/signin"
	"github.com/citycard/transit/registry/store"
	"github.com/citycard/transit/registry/store/postgres"
	"github.com/citycard/transit/registry/store/sqlite"
	"github.com/citycard/transit/validator/devauth"
	"github.com/citycard/transit/validator/hotlist"
)

// registryFlags selects the registry database.
type registryFlags struct {
	db        string
	tz        string
	issuer    uint16
	cardYears int
	// existing makes open refuse a missing sqlite: file, for commands
	// that serve an installed registry rather than set one up.
	existing bool
	// dbFlag names the database flag in messages: --db, or the
	// console's --registry-db.
	dbFlag string
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
		path, perr := sqlitePath("--db", f.db)
		if perr != nil {
			return nil, nil, perr
		}
		if f.existing {
			st, err = sqlite.OpenExisting(ctx, path, opt)
			err = missingDB(cmp.Or(f.dbFlag, "--db"), f.db, err)
		} else {
			st, err = sqlite.Open(ctx, path, opt)
		}
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
		Use:   "migrate",
		Short: "Create or upgrade the registry schema (PostgreSQL or the embedded store)",
		Long:  "Apply every schema migration the database lacks. Safe to run again. The embedded sqlite: store also migrates itself whenever it is opened; migrate creates it now.",
		Example: `  transit registry migrate --db postgres://postgres@127.0.0.1:5432/transit
  transit registry migrate --db sqlite:registry.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if strings.HasPrefix(rf.db, "sqlite:") {
				return migrateEmbedded(c, rf.db, func(ctx context.Context) (store.Store, error) {
					st, _, err := rf.open(ctx)
					return st, err
				})
			}
			if !isPostgresURL(rf.db) {
				return usagef("--db %q: want a postgres:// URL or sqlite:FILE", rf.db)
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
		lf     listenFlags
		af     auditFlags
		outbox string
		nf     noticeFlags
	)
	serve := &cobra.Command{
		Use:   "serve --db URL --issuer CODE",
		Short: "Serve the registry's HTTP JSON API until stopped",
		Long: `Serve the registry API (see registry/api): residents, entitlements, card lifecycle, personalisation
data, card events and blocked cards, the expiring list, benefit-register imports and the audit log.

Staff sign in with their named accounts (transit registry staff add) at POST /v1/auth/login; machines
and scripts use tokens that end (transit registry token create). Residents sign in with a one-time code
sent to the contact the registry holds for them: --notify-file FILE writes those messages to a file
(one JSON line each, 0600) for a gateway to deliver; without it resident sign-in is off. Failed
sign-ins are throttled per address and account and logged with the address; operators read the
counters at /metrics with their token.

The API carries personal data and tokens: it listens on 127.0.0.1 unless given --tls-cert and --tls-key
(HTTPS, the certificate reloaded when its file changes), or --behind-tls-proxy.

The audit log is a hash chain (registry/auditchain). At start the registry verifies all of it and
refuses to serve an altered log, naming the first bad entry, unless --allow-broken-audit (then it says
so loudly, and residents' access logs show it); it verifies again every --audit-verify-every and stops
if the log is found altered. With the HSM it signs a checkpoint of the chain's head every
--audit-checkpoint-every with sign-audit.

With the HSM (--keystore or --pkcs11-module) and --hotlist-dir, it also publishes to validators under
/v1/validator (the validators' updates_url): the hotlist of blocked cards, signed with sign-hotlist, as
full lists and deltas (registry/publish), and with --tariff DIR the signed tariff directory as a zip.
Each validator signs its requests with its own batch key, which the registry checks with the HSM's
batch-master. Stop with Ctrl-C or SIGTERM.`,
		Example: `  transit registry serve --db postgres://postgres@127.0.0.1/transit --issuer 1001 --listen 127.0.0.1:8081
  transit registry serve --db sqlite:registry.db --issuer 1001 --notify-file outbox.jsonl
  TRANSIT_KEYSTORE_PASSPHRASE=... transit registry serve --db sqlite:registry.db --issuer 1001 \
      --keystore city.keys --hotlist-dir hotlists --tariff tariff \
      --listen 0.0.0.0:8443 --tls-cert registry.crt --tls-key registry.key`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if rf.issuer == 0 {
				return usagef("give the city's card issuer code: --issuer CODE (1 to 9999; the first four digits of card numbers)")
			}
			if rf.cardYears < 1 || rf.cardYears > 20 {
				return usagef("--card-years %d: want 1 to 20", rf.cardYears)
			}
			if err := af.check(); err != nil {
				return err
			}
			st, loc, err := rf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			km, closeKeys, err := pf.openHSM(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeKeys()
			mon, err := af.start(ctx, st, km, c.ErrOrStderr())
			if err != nil {
				return err
			}
			validator, devices, err := pf.open(ctx, st, km)
			if err != nil {
				return err
			}
			metrics := newRegistry()
			opts := signin.Options{Store: st, Log: slog.Default(), Metrics: metrics}
			if outbox != "" {
				opts.Sender = &notify.File{Path: outbox}
			}
			si, err := signin.New(opts)
			if err != nil {
				return err
			}
			stopNotices, err := nf.start(ctx, st, loc, outbox, c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer stopNotices()
			ln, err := lf.listen("the registry API", listen)
			if err != nil {
				return err
			}
			slog.Info("registry API listening", "addr", ln.Addr().String(), "issuer", rf.issuer, "tls", lf.tls(), "resident_sign_in", outbox != "")
			fmt.Fprintf(c.ErrOrStderr(), "registry API on %s://%s/v1 (Ctrl-C stops)\n", lf.scheme(), ln.Addr())
			srv := api.New(st, api.Options{Location: loc, Logger: slog.Default(), Validator: validator, Devices: devices,
				SignIn: si, Audit: mon, Gatherer: metrics, Metrics: metrics})
			// /healthz and /readyz answer before the API's own checks.
			probes := registryProbes(ctx, st)
			return af.serve(ctx, km, st, func(ctx context.Context) error { return api.Serve(ctx, ln, probes.Wrap(srv)) })
		},
	}
	serve.Flags().StringVar(&listen, "listen", "127.0.0.1:8081", "address to serve the API on")
	serve.Flags().Uint16Var(&rf.issuer, "issuer", 0, "the city's card issuer code, the first four digits of new card numbers")
	serve.Flags().IntVar(&rf.cardYears, "card-years", store.DefaultCardYears, "how many years a new card is valid")
	serve.Flags().StringVar(&outbox, "notify-file", "", "write residents' one-time sign-in codes to this file (JSON lines, 0600) for delivery; without it resident sign-in is off")
	pf.register(serve)
	lf.register(serve)
	af.register(serve)
	serve.Flags().DurationVar(&nf.every, "notices-every", 0, "send benefit-ending notices every this often (e.g. 1h; see transit registry notices run); 0 is off")
	nf.register(serve.Flags())

	cmd.AddCommand(migrate, serve, newRegistryTokenCmd(&rf), newRegistryStaffCmd(&rf), newRegistryAuditCmd(&rf),
		newRegistryNoticesCmd(&rf), newRegistryImportCmd(&rf))
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

// openHSM opens the HSM when one is given: nil and a no-op otherwise.
func (f *publishFlags) openHSM(stderr io.Writer) (hsm.KeyManager, func(), error) {
	if f.hsm.keystore == "" && f.hsm.module == "" {
		if f.hotlistDir != "" || f.tariffDir != "" {
			return nil, nil, usagef("publishing to validators signs and verifies with the HSM: give --keystore FILE or --pkcs11-module MODULE --token LABEL")
		}
		return nil, func() {}, nil
	}
	if f.hotlistDir == "" {
		return nil, nil, usagef("give --hotlist-dir DIR, where the published hotlist and its deltas are kept")
	}
	return f.hsm.open(stderr)
}

// open returns the handler of /v1/validator and the check of validators'
// requests, both nil when the registry publishes nothing (no HSM).
func (f *publishFlags) open(ctx context.Context, st store.Store, km hsm.KeyManager) (http.Handler, *devauth.Verifier, error) {
	if km == nil {
		slog.Info("publishing no hotlist or tariff to validators: no HSM given")
		return nil, nil, nil
	}
	if _, err := hsm.Resolve(ctx, km, hsm.Ref{Label: hsm.LabelBatchMaster}); err != nil {
		return nil, nil, fmt.Errorf("the HSM has no %s key to check validators' requests with: %w; create it (transit hsm keygen %s)",
			hsm.LabelBatchMaster, err, hsm.LabelBatchMaster)
	}
	h, err := f.publishers(ctx, st, km)
	if err != nil {
		return nil, nil, err
	}
	return h, &devauth.Verifier{Keys: km}, nil
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
		Short: "Manage API tokens of the registry: create, list, revoke",
	}
	var (
		user    string
		role    string
		expires string
		note    string
	)
	create := &cobra.Command{
		Use:   "create --user NAME --role ROLE",
		Short: "Make an API token for a machine or script and print it once",
		Long: `Make a random API token bound to a user and a role, store only its SHA-256, and print the token once
on standard output: it cannot be shown again. It ends after --expires (90 days unless told, at most
366); transit registry token list shows it and its last use, and revoke ends it at once. Roles: desk,
supervisor, finance, auditor, operator (Prometheus reading /metrics), and service for another service
of the platform (clearing: card events, blocked cards, and checking its callers' tokens).

People sign in rather than use tokens: staff with their accounts (transit registry staff add),
residents with a one-time code sent to their contact. Give the token to its machine in a file (0600)
or an environment variable, never on a command line.`,
		Example: `  transit registry token create --db sqlite:registry.db --user clearing --role service --note "clearing on host c1" > clearing.token
  transit registry token create --db postgres://postgres@127.0.0.1/transit --user prometheus --role operator --expires 30d`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if user == "" {
				return usagef("give the user the token is for: --user NAME")
			}
			actor := registry.Actor{User: user, Role: registry.Role(role)}
			switch {
			case actor.Role == registry.RoleResident:
				return usagef("residents sign in themselves with a one-time code sent to their registered contact (the console's resident sign-in, or POST /v1/auth/resident/code); no token is issued for them")
			case !actor.Role.Valid():
				return usagef("--role %q: want desk, supervisor, finance, auditor, operator or service", role)
			}
			ttl, err := parseTTL(expires)
			if err != nil {
				return usagef("--expires %v", err)
			}
			if ttl > registry.MaxTokenTTL {
				return usagef("--expires %s: a token lives at most %d days", expires, int(registry.MaxTokenTTL.Hours()/24))
			}
			secret, tok, err := registry.NewToken(actor, time.Now().UTC())
			if err != nil {
				return usageError{err}
			}
			tok.Expires, tok.CreatedBy, tok.Note = tok.Created.Add(ttl), cliAccess().Actor.User, note
			st, _, err := rf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.AddToken(c.Context(), tok); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), secret)
			fmt.Fprintf(c.ErrOrStderr(), "token %s for %s (%s) stored, ending %s; it is shown only this once: send it as `Authorization: Bearer <token>`\n",
				registry.TokenID(tok.Hash), user, role, tok.Expires.Format(time.DateOnly))
			return nil
		},
	}
	create.Flags().StringVar(&user, "user", "", "who the token is for (recorded in the audit log)")
	create.Flags().StringVar(&role, "role", "", "desk, supervisor, finance, auditor, operator or service")
	create.Flags().StringVar(&expires, "expires", "90d", "how long the token works: days (90d) or a duration (12h)")
	create.Flags().StringVar(&note, "note", "", "what the token is for, shown in token list")
	cmd.AddCommand(create, newRegistryTokenListCmd(rf), newRegistryTokenRevokeCmd(rf))
	return cmd
}
