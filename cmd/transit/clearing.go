package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/clearing/api"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/cardmac"
	"github.com/citycard/transit/clearing/clonecheck"
	"github.com/citycard/transit/clearing/fleet"
	"github.com/citycard/transit/clearing/health"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/monitor"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/registry/tokencheck"
)

// storeFlags selects the clearing database.
type storeFlags struct {
	db string
	tz string
	// create lets open create a missing sqlite: file: only for the
	// commands that store taps. Reports and statements refuse a missing
	// file, so that a mistyped path is an error rather than zero.
	create bool
	// cardMACs, when set, verifies EV2/EV3 cards' Transaction MACs in
	// re-rating (useCardMACs).
	cardMACs store.CardMACKeys
}

// useCardMACs makes the store opened next verify the Transaction MAC of
// every ride of an EV2/EV3 card with km's tmac-master. Without one in km
// such rides wait (card-mac-unchecked), which is said once here.
func (f *storeFlags) useCardMACs(ctx context.Context, km hsm.KeyManager, log *slog.Logger) error {
	_, err := hsm.Resolve(ctx, km, hsm.Ref{Label: hsm.LabelTMACMaster})
	switch {
	case errors.Is(err, hsm.ErrNotFound):
		log.Warn("the HSM holds no tmac-master: rides of EV2/EV3 cards wait unverified (card-mac-unchecked); give clearing the city's key backend that holds the tmac-master cards are personalised with (transit hsm init makes it)")
		return nil
	case err != nil:
		return fmt.Errorf("look for the Transaction MAC master: %w", err)
	}
	f.cardMACs = cardmac.HSMKeys{Keys: cardkey.New(km)}
	return nil
}

func (f *storeFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.db, "db", "", "clearing database: a PostgreSQL URL (postgres://user@host:5432/transit) or sqlite:FILE for the embedded store")
	cmd.PersistentFlags().StringVar(&f.tz, "tz", "Europe/Kyiv", "the city's time zone, which decides the month a tap belongs to")
}

func (f *storeFlags) location() (*time.Location, error) {
	loc, err := time.LoadLocation(f.tz)
	if err != nil {
		return nil, usagef("--tz %q: not a known time zone (e.g. Europe/Kyiv, UTC)", f.tz)
	}
	return loc, nil
}

// open opens the clearing store the flags name. A PostgreSQL store must
// have been migrated first (transit clearing migrate).
func (f *storeFlags) open(ctx context.Context) (store.Store, error) {
	loc, err := f.location()
	if err != nil {
		return nil, err
	}
	opt := store.Options{Location: loc, CardMACKeys: f.cardMACs}
	switch {
	case f.db == "":
		return nil, usagef("no database: give --db postgres://... or --db sqlite:FILE")
	case isPostgresURL(f.db):
		return postgres.Open(ctx, f.db, opt)
	case strings.HasPrefix(f.db, "sqlite:"):
		path, err := sqlitePath("--db", f.db)
		if err != nil {
			return nil, err
		}
		if f.create {
			return sqlite.Open(ctx, path, opt)
		}
		st, err := sqlite.OpenExisting(ctx, path, opt)
		return st, missingDB("--db", f.db, err)
	}
	return nil, usagef("--db %q: want a postgres:// URL or sqlite:FILE", f.db)
}

func isPostgresURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

func newClearingCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "clearing",
		Short: "The clearing service: store every tap exactly once and keep the compensation roll-ups",
		Long: `The clearing service reads sealed tap batches from Kafka, checks each batch's MAC with the device's
batch key (derived from the batch master in the keystore or token), quarantines bad batches, and stores
taps exactly once in PostgreSQL, keeping the roll-ups that compensation reports read.`,
	}
	sf.register(cmd)

	migrate := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the clearing schema (PostgreSQL or the embedded store)",
		Long: `Apply every schema migration the database lacks and create the partitions of taps for this month and
the next. The database is set up for the city's time zone (--tz) and refuses another one later. Safe to run
again. The embedded sqlite: store also migrates itself whenever it is opened; migrate creates it now.`,
		Example: `  transit clearing migrate --db postgres://postgres@127.0.0.1:5432/transit
  transit clearing migrate --db sqlite:clearing.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if strings.HasPrefix(sf.db, "sqlite:") {
				sf.create = true // migrate is how an embedded store is made
				return migrateEmbedded(c, sf.db, sf.open)
			}
			if !isPostgresURL(sf.db) {
				return usagef("--db %q: want a postgres:// URL or sqlite:FILE", sf.db)
			}
			loc, err := sf.location()
			if err != nil {
				return err
			}
			n, err := postgres.Migrate(c.Context(), sf.db, loc)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "applied %d migration(s)\n", n)
			return nil
		},
	}

	var (
		hf            hsmFlags
		brokers       string
		topic         string
		group         string
		devices       []string
		addr          string
		metricsAddr   string
		workers       int
		instance      string
		keyCache      int
		offlineAfter  time.Duration
		allowFsyncOff bool
		session       time.Duration
		lf            listenFlags
		cf            callerFlags
		pf            proofFlags
	)
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Consume tap batches from Kafka and store them until stopped; optionally serve the HTTP API",
		Long: `Consume tap batches from the Kafka topic as a member of a consumer group, verify, store and
commit each batch after it is stored. --workers stores batches of that many partitions at once (a device's
batches always stay in order). With --http, also serve the JSON API, Prometheus metrics at /metrics and the
probes /healthz and /readyz to callers the registry vouches for (see 'transit clearing api --help'); the
probes answer anyone and reveal nothing; with --metrics, only the metrics and the
probes, on a loopback address of their own (for a local scraping agent). Beside ingest runs the cloned-card check: ingest queues each batch's
benefit rides, and the check looks for the same card on another vehicle too far away too soon, recording
suspicions for the reconciliation report.

Run several instances in one group to share the partitions; each names itself with --instance (default
host-pid) in its Kafka client id, its log lines and its metrics. Nothing on the bus stops an instance: a
batch that cannot be decoded, authenticated or stored for its content is quarantined and committed, and
a database or broker that goes away is waited for, with retries logged. On PostgreSQL every transaction
commits synchronously, and a server running with fsync off is refused: it may lose taps whose offsets
were committed.

Beside ingest runs re-rating too: each benefit ride is decided again with clearing's own facts (the signed
tariff it names, the card's previous ride and month, the registry's records of the card) and linked to the
card's own evidence; what cannot be proved is held for finance staff ('transit clearing held'). With
--registry, clearing also fetches the registry's published tariff and reads its card records, with its
service token. Stop with Ctrl-C or SIGTERM: handled batches are committed first.`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing serve --db postgres://postgres@127.0.0.1/transit \
      --brokers 127.0.0.1:9092 --keystore keys.json --workers 2 \
      --http 127.0.0.1:8080 --registry https://registry.city:8443 --registry-token-file clearing.token
  # a second instance on another machine, metrics and probes only, for the local agent
  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing serve --db postgres://postgres@db.example/transit \
      --brokers kafka1:9092,kafka2:9092 --keystore keys.json --metrics 127.0.0.1:9464 --instance clearing-b`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if brokers == "" {
				return usagef("no Kafka broker: give --brokers host:port[,host:port]")
			}
			if workers < 1 || workers > 64 {
				return usagef("--workers %d: want 1 to 64", workers)
			}
			if keyCache < 1 || keyCache > 1<<22 {
				return usagef("--key-cache %d: want 1 to %d device keys", keyCache, 1<<22)
			}
			if session < 6*time.Second || session > 5*time.Minute {
				return usagef("--kafka-session-timeout %s: want 6s to 5m (Kafka's own bounds by default)", session)
			}
			if offlineAfter < time.Minute {
				return usagef("--offline-after %s: want at least 1m", offlineAfter)
			}
			id, err := instanceID(instance)
			if err != nil {
				return err
			}
			log := slog.Default().With("instance", id)
			loc, err := sf.location()
			if err != nil {
				return err
			}
			km, done, err := hf.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			if err := sf.useCardMACs(ctx, km, log); err != nil {
				return err
			}
			sf.create = true // serve stores taps: a new installation starts here
			st, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			if err := checkDurable(ctx, st, allowFsyncOff, log); err != nil {
				return err
			}
			reg := newRegistry()
			metrics, err := ingest.NewMetrics(reg)
			if err != nil {
				return err
			}
			if err := ingest.RegisterInstance(reg, id, group, topic); err != nil {
				return err
			}
			cons, err := kafka.NewConsumer(ctx, kafka.Config{Brokers: strings.Split(brokers, ","), Topic: topic, Log: log,
				ClientID:       "transit-clearing-" + id,
				SessionTimeout: session,
				OnAssigned:     func(_ int, parts []int) { metrics.Assigned(parts) },
				OnRevoked:      func(int, []int) { metrics.Revoked() },
			}, group)
			if err != nil {
				return err
			}
			defer cons.Close()
			v := &ingest.KeyVerifier{Keys: km, CacheSize: keyCache}
			if len(devices) > 0 {
				v.Devices = make(map[string]bool, len(devices))
				for _, d := range devices {
					v.Devices[d] = true
				}
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			probes := &health.Probes{Log: log, Checks: []health.Check{
				{Name: "store", Fn: st.Ping},
				{Name: "bus", Fn: func(context.Context) error {
					if !cons.Joined() {
						return fmt.Errorf("not a member of consumer group %q yet", group)
					}
					return nil
				}},
			}}
			if err := watchStore(ctx, reg, st, loc, offlineAfter, log); err != nil {
				return err
			}
			httpDone := make(chan error, 1)
			if addr != "" {
				auth, err := cf.open(c.ErrOrStderr())
				if err != nil {
					return err
				}
				srv := &api.Server{Store: st, Location: loc, Gatherer: reg, Log: log, Auth: auth,
					Statements: &statement.Service{Store: st, Keys: km, Location: loc}}
				stop, err := startHTTP(ctx, "HTTP API", addr, &lf, probes.Wrap(srv.Handler()), httpDone, log)
				if err != nil {
					return err
				}
				defer stop()
			}
			if metricsAddr != "" {
				if host, _, err := net.SplitHostPort(metricsAddr); err != nil || !isLoopback(host) {
					return usagef("--metrics %q: the metrics listener answers without a token, so it listens on loopback only (e.g. 127.0.0.1:9464); beyond it, scrape /metrics on --http with an operator token", metricsAddr)
				}
				stop, err := startHTTP(ctx, "metrics", metricsAddr, &lf, metricsHandler(reg, probes), httpDone, log)
				if err != nil {
					return err
				}
				defer stop()
			}
			r := &ingest.Runner{
				Consumer:  cons,
				Workers:   workers,
				Log:       log,
				Processor: &ingest.Processor{Verifier: v, Store: st, Metrics: metrics, Location: loc, Log: log},
				OnBatch: func(o ingest.Outcome, t ingest.Totals) {
					log.Debug("batch", "device", o.Device, "added", o.Added, "duplicates", o.Duplicates,
						"quarantined", o.Quarantined, "anomalies", o.Anomalies, "total_taps", t.Added)
				},
			}
			// The cloned-card check that ingest queues runs beside it
			// and ends with it.
			cm, err := clonecheck.NewMetrics(reg)
			if err != nil {
				return err
			}
			go (&clonecheck.Checker{Store: st, Metrics: cm, Log: log}).Run(ctx) //nolint:errcheck // ends with ctx
			// So do re-rating, and the tariffs and card records it needs.
			if err := startProof(ctx, &pf, &cf, st, km, reg, c.ErrOrStderr(), log); err != nil {
				return err
			}
			log.Info("clearing started", "brokers", brokers, "topic", topic, "group", group, "workers", workers,
				"http", addr, "metrics", metricsAddr)
			runDone := make(chan error, 1)
			go func() { runDone <- r.Run(ctx) }()
			select {
			case err = <-runDone:
			case <-ctx.Done():
				probes.Stopping()
				log.Info("clearing stopping: committing what was handled", "reason", context.Cause(ctx))
				err = <-runDone
			case err = <-httpDone:
				// A listener failed: stop ingest too, so that the
				// service is restarted whole.
				probes.Stopping()
				log.Error("clearing stopping: a listener failed", "err", err)
				cancel()
				err = errors.Join(err, ignoreCanceled(<-runDone))
			}
			err = ignoreCanceled(err)
			if err != nil {
				log.Error("clearing stopped", "err", err)
			} else {
				log.Info("clearing stopped")
			}
			return err
		},
	}
	hf.register(serve)
	serve.Flags().StringVar(&brokers, "brokers", "", "Kafka bootstrap brokers, host:port[,host:port]")
	serve.Flags().StringVar(&topic, "topic", "taps", "Kafka topic of tap batches")
	serve.Flags().StringVar(&group, "group", "clearing", "Kafka consumer group; instances of one group share the partitions")
	serve.Flags().StringSliceVar(&devices, "device", nil, "accept batches only from these device ids (repeatable; default: any device whose MAC verifies)")
	serve.Flags().StringVar(&addr, "http", "", "also serve the HTTP API, /metrics, /healthz and /readyz on this address, e.g. 127.0.0.1:8080")
	serve.Flags().StringVar(&metricsAddr, "metrics", "", "serve /metrics, /healthz and /readyz (no API, no token) on this loopback address, e.g. 127.0.0.1:9464")
	serve.Flags().IntVar(&workers, "workers", 2, "batches stored at once, from different partitions")
	serve.Flags().StringVar(&instance, "instance", "", "this instance's name in its Kafka client id, logs and metrics (default host-pid)")
	serve.Flags().IntVar(&keyCache, "key-cache", ingest.DefaultKeyCache, "device batch keys kept in memory (least recently used go first)")
	serve.Flags().DurationVar(&offlineAfter, "offline-after", fleet.DefaultOffline, "a device silent longer than this counts as offline in the fleet metrics")
	serve.Flags().DurationVar(&session, "kafka-session-timeout", 10*time.Second, "how long the group waits for a silent instance before giving its partitions to the others")
	serve.Flags().BoolVar(&allowFsyncOff, "test-allow-fsync-off", false, "FOR TESTS ONLY: run on a PostgreSQL server with fsync off, which can lose committed taps in a crash")
	lf.register(serve)
	cf.register(serve)
	pf.register(serve)

	cmd.AddCommand(migrate, serve, newAPICmd(&sf), newStatementCmd(&sf))
	addProofCmds(cmd, &sf)
	return cmd
}

// migrateEmbedded creates or upgrades an embedded store by opening it.
func migrateEmbedded[S interface{ Close() error }](c *cobra.Command, db string, open func(context.Context) (S, error)) error {
	st, err := open(c.Context())
	if err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return err
	}
	fmt.Fprintf(c.OutOrStdout(), "%s is up to date (the embedded store migrates itself when opened)\n", db)
	return nil
}

// newRegistry returns a Prometheus registry with the process and Go
// runtime collectors, which every service exposes.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

func ignoreCanceled(err error) error {
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// callerFlags say how clearing checks its API's callers: with the
// registry, as its service.
type callerFlags struct {
	url, ca string
	token   tokenFlags
}

func (f *callerFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.url, "registry", "", "the registry API (https://host:port) that checks the API's callers' tokens")
	cmd.Flags().StringVar(&f.ca, "registry-ca", "", "PEM file of the CA that signed the registry's TLS certificate (default: the system's roots)")
	f.token.register(cmd.Flags(), "registry-token", "clearing's own service token for the registry (transit registry token create --role service)")
}

// open returns the check of callers' tokens.
func (f *callerFlags) open(stderr io.Writer) (*tokencheck.Client, error) {
	if f.url == "" {
		return nil, usagef("the HTTP API lets in only callers the registry vouches for: give --registry URL and clearing's service token (%s or --registry-token-file)", registryTokenEnv)
	}
	token, err := f.token.read("registry-token", stderr)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, usagef("no service token for the registry: set %s or give --registry-token-file (transit registry token create --role service)", registryTokenEnv)
	}
	hc, err := clientWithCA(f.ca, 10*time.Second)
	if err != nil {
		return nil, err
	}
	tc, err := tokencheck.New(f.url, token, tokencheck.Options{HTTP: hc})
	if err != nil {
		return nil, usageError{err}
	}
	return tc, nil
}

// startHTTP listens on addr as lf allows (TLS, or loopback; failing now
// if it cannot) and serves h, reporting a failure of the server on
// failed. stop shuts the server down, letting requests under way finish.
func startHTTP(ctx context.Context, what, addr string, lf *listenFlags, h http.Handler, failed chan<- error, log *slog.Logger) (stop func(), err error) {
	ln, err := lf.listen("the clearing "+what, addr)
	if err != nil {
		return nil, err
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 2 * time.Minute}
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("%s on %s: %w", what, addr, err)
		}
	}()
	log.Info(what+" listening", "addr", ln.Addr().String(), "tls", lf.tls())
	return func() {
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer scancel()
		hs.Shutdown(sctx) //nolint:errcheck // best effort at exit
	}, nil
}

// metricsHandler serves reg at /metrics and the probes, nothing else.
func metricsHandler(reg prometheus.Gatherer, probes *health.Probes) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", probes)
	mux.Handle("/readyz", probes)
	return mux
}

// watchStore registers the gauges read from the clearing store (gaps,
// fleet, statements) and keeps them current until ctx ends.
func watchStore(ctx context.Context, reg prometheus.Registerer, st store.Store, loc *time.Location, offlineAfter time.Duration, log *slog.Logger) error {
	w, err := monitor.NewWatcher(reg, fleet.Options{Offline: offlineAfter}, loc)
	if err != nil {
		return err
	}
	go w.Watch(ctx, st, 15*time.Second, log) //nolint:errcheck // ends with ctx
	return nil
}

// checkDurable refuses a PostgreSQL server that may lose acknowledged
// commits, unless allowed (a throwaway test server), and then says so.
func checkDurable(ctx context.Context, st store.Store, allow bool, log *slog.Logger) error {
	ps, ok := st.(*postgres.Store)
	if !ok {
		return nil
	}
	err := ps.CheckDurable(ctx)
	switch {
	case err == nil:
		return nil
	case allow && errors.Is(err, postgres.ErrNotDurable):
		log.Warn("running on a PostgreSQL server with fsync off (--test-allow-fsync-off): a crash of its machine can lose taps; for tests only")
		return nil
	}
	return err
}

// instanceID returns the instance's name: the flag's, or host-pid.
func instanceID(flag string) (string, error) {
	if flag != "" {
		if len(flag) > 64 || strings.ContainsFunc(flag, func(r rune) bool { return r <= ' ' || r == 0x7f || r > '~' }) {
			return "", usagef("--instance %q: want up to 64 printable ASCII characters without spaces", flag)
		}
		return flag, nil
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "clearing"
	}
	return fmt.Sprintf("%s-%d", host, os.Getpid()), nil
}

func newAPICmd(sf *storeFlags) *cobra.Command {
	var (
		hf   hsmFlags
		addr string
		lf   listenFlags
		cf   callerFlags
	)
	cmd := &cobra.Command{
		Use:   "api --registry URL",
		Short: "Serve the clearing HTTP JSON API and /metrics, without consuming Kafka",
		Long: `Serve the JSON API for finance staff, operators and their tools:

  GET  /v1/compensation?period=YYYY-MM[&carrier=X][&by=category,route,day][&format=json|csv|xlsx]   finance, supervisor
  GET  /v1/reconciliation?period=YYYY-MM                                                       finance, supervisor, operator
  GET  /v1/statements/{period}                                                                 finance, supervisor
  GET  /v1/statements/{period}/verify[?deep=true]                                              finance, supervisor
  POST /v1/statements/{period}/close?confirm={period}[&early=true][&expect=TOKEN]               supervisor
  GET  /v1/held?period=YYYY-MM[&carrier=X][&reason=R][&decided=true][&after=DEVICE/SEQ][&limit=N]  finance, auditor
  POST /v1/held/decide {"rides": ["DEVICE/SEQ"], "decision": "release"|"reject", "reason": "..."} finance
  GET  /v1/proof?period=YYYY-MM                                                                finance, auditor
  GET  /metrics                                                                                operator
  GET  /healthz, /readyz                                                                       anyone (probes: "ok" or "not ready", nothing more)

Callers send their registry token (Authorization: Bearer ...): a staff member's session from signing in
to the registry, or a machine token. Clearing asks the registry whose it is (--registry, with its own
service token from TRANSIT_REGISTRY_TOKEN or --registry-token-file) and keeps the answer 30 s, so a
revoked token stops working within that; the registry's role table decides the rest. The API listens on
127.0.0.1 unless given --tls-cert and --tls-key, or --behind-tls-proxy.

Closing and verifying statements needs the key backend (--keystore or --pkcs11-module); without one
those two endpoints answer 503 and the rest works. A close is signed with the authenticated staff
member who asks. Errors are JSON: {"error": "what to do"}.`,
		Example: `  TRANSIT_REGISTRY_TOKEN=rgt_... transit clearing api --db sqlite:clearing.db --registry http://127.0.0.1:8081
  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing api --db postgres://postgres@127.0.0.1/transit --keystore keys.json \
      --http 0.0.0.0:8443 --tls-cert clearing.crt --tls-key clearing.key \
      --registry https://registry.city:8443 --registry-ca city-ca.pem --registry-token-file clearing.token`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if addr == "" {
				return usagef("give the address to listen on: --http host:port, e.g. --http 127.0.0.1:8080")
			}
			loc, err := sf.location()
			if err != nil {
				return err
			}
			var km hsm.KeyManager
			if hf.keystore != "" || hf.module != "" {
				var done func()
				if km, done, err = hf.open(c.ErrOrStderr()); err != nil {
					return err
				}
				defer done()
				// Closing a month judges what is queued first.
				if err := sf.useCardMACs(ctx, km, slog.Default()); err != nil {
					return err
				}
			}
			st, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			auth, err := cf.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			reg := newRegistry()
			srv := &api.Server{Store: st, Location: loc, Gatherer: reg, Auth: auth}
			probes := &health.Probes{Checks: []health.Check{{Name: "store", Fn: st.Ping}}}
			if km != nil {
				srv.Statements = &statement.Service{Store: st, Keys: km, Location: loc}
			}
			if err := watchStore(ctx, reg, st, loc, fleet.DefaultOffline, slog.Default()); err != nil {
				return err
			}
			failed := make(chan error, 1)
			stop, err := startHTTP(ctx, "HTTP API", addr, &lf, probes.Wrap(srv.Handler()), failed, slog.Default())
			if err != nil {
				return err
			}
			defer stop()
			select {
			case <-ctx.Done():
				probes.Stopping()
				return nil
			case err := <-failed:
				return err
			}
		},
	}
	hf.register(cmd)
	cmd.Flags().StringVar(&addr, "http", "127.0.0.1:8080", "address to listen on")
	lf.register(cmd)
	cf.register(cmd)
	return cmd
}
