package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/api"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/clonecheck"
	"github.com/citycard/transit/clearing/ingest"
	"github.com/citycard/transit/clearing/monitor"
	"github.com/citycard/transit/clearing/statement"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/clearing/store/sqlite"
)

// storeFlags selects the clearing database.
type storeFlags struct {
	db string
	tz string
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
	opt := store.Options{Location: loc}
	switch {
	case f.db == "":
		return nil, usagef("no database: give --db postgres://... or --db sqlite:FILE")
	case isPostgresURL(f.db):
		return postgres.Open(ctx, f.db, opt)
	case strings.HasPrefix(f.db, "sqlite:"):
		return sqlite.Open(ctx, strings.TrimPrefix(f.db, "sqlite:"), opt)
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
		Short: "Create or upgrade the clearing schema in PostgreSQL",
		Long: `Apply every schema migration the database lacks and create the partitions of taps for this month and
the next. The database is set up for the city's time zone (--tz) and refuses another one later. Safe to run
again; the embedded sqlite: store migrates itself.`,
		Example: `  transit clearing migrate --db postgres://postgres@127.0.0.1:5432/transit`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !isPostgresURL(sf.db) {
				return usagef("migrate needs --db postgres://...; the embedded sqlite: store migrates itself when opened")
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
		hf      hsmFlags
		brokers string
		topic   string
		group   string
		devices []string
		addr    string
		workers int
		pf      proofFlags
	)
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Consume tap batches from Kafka and store them until stopped; optionally serve the HTTP API",
		Long: `Consume tap batches from the Kafka topic as a member of a consumer group, verify, store and
commit each batch after it is stored. --workers stores batches of that many partitions at once (a device's
batches always stay in order). With --http, also serve the JSON API and Prometheus metrics at /metrics
(see 'transit clearing api --help'). Beside ingest runs the cloned-card check: ingest queues each batch's
benefit rides, and the check looks for the same card on another vehicle too far away too soon, recording
suspicions for the reconciliation report. Beside it too runs re-rating: each benefit ride is decided again
with clearing's own facts (the signed tariff it names, the card's previous ride and month, the registry's
records of the card) and linked to the card's own evidence; what cannot be proved is held for finance
staff ('transit clearing held'). With --registry, clearing fetches the registry's published tariff and
reads its card records (a registry token of the service role in --registry-token-file or
TRANSIT_REGISTRY_TOKEN). Stop with Ctrl-C or SIGTERM: handled batches are committed first.`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing serve --db postgres://postgres@127.0.0.1/transit \
      --brokers 127.0.0.1:9092 --keystore keys.json --http :8080 --workers 2`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if brokers == "" {
				return usagef("no Kafka broker: give --brokers host:port[,host:port]")
			}
			if workers < 1 || workers > 64 {
				return usagef("--workers %d: want 1 to 64", workers)
			}
			loc, err := sf.location()
			if err != nil {
				return err
			}
			km, done, err := hf.open(c.ErrOrStderr())
			if err != nil {
				return err
			}
			defer done()
			st, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			reg := newRegistry()
			metrics, err := ingest.NewMetrics(reg)
			if err != nil {
				return err
			}
			cons, err := kafka.NewConsumer(ctx, kafka.Config{Brokers: strings.Split(brokers, ","), Topic: topic}, group)
			if err != nil {
				return err
			}
			defer cons.Close()
			v := &ingest.KeyVerifier{Keys: km}
			if len(devices) > 0 {
				v.Devices = make(map[string]bool, len(devices))
				for _, d := range devices {
					v.Devices[d] = true
				}
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			auth, err := pf.auth()
			if err != nil {
				return err
			}
			httpDone := make(chan error, 1)
			if addr != "" {
				srv := &api.Server{Store: st, Location: loc, Gatherer: reg, Auth: auth,
					Statements: &statement.Service{Store: st, Keys: km, Location: loc}}
				stop, err := startHTTP(ctx, addr, srv, reg, st, httpDone)
				if err != nil {
					return err
				}
				defer stop()
			}
			r := &ingest.Runner{
				Consumer:  cons,
				Workers:   workers,
				Processor: &ingest.Processor{Verifier: v, Store: st, Metrics: metrics, Location: loc},
				OnBatch: func(o ingest.Outcome, t ingest.Totals) {
					slog.Debug("batch", "device", o.Device, "added", o.Added, "duplicates", o.Duplicates,
						"quarantined", o.Quarantined, "anomalies", o.Anomalies, "total_taps", t.Added)
				},
			}
			// The cloned-card check that ingest queues runs beside it
			// and ends with it.
			cm, err := clonecheck.NewMetrics(reg)
			if err != nil {
				return err
			}
			go (&clonecheck.Checker{Store: st, Metrics: cm, Log: slog.Default()}).Run(ctx) //nolint:errcheck // ends with ctx
			// So do re-rating, and the tariffs and card records it needs.
			if err := startProof(ctx, &pf, st, km, reg); err != nil {
				return err
			}
			slog.Info("clearing started", "brokers", brokers, "topic", topic, "group", group, "workers", workers, "http", addr)
			runDone := make(chan error, 1)
			go func() { runDone <- r.Run(ctx) }()
			select {
			case err = <-runDone:
			case err = <-httpDone:
				// The API failed: stop ingest too, so that the service
				// is restarted whole.
				cancel()
				err = errors.Join(err, ignoreCanceled(<-runDone))
			}
			return ignoreCanceled(err)
		},
	}
	hf.register(serve)
	serve.Flags().StringVar(&brokers, "brokers", "", "Kafka bootstrap brokers, host:port[,host:port]")
	serve.Flags().StringVar(&topic, "topic", "taps", "Kafka topic of tap batches")
	serve.Flags().StringVar(&group, "group", "clearing", "Kafka consumer group")
	serve.Flags().StringSliceVar(&devices, "device", nil, "accept batches only from these device ids (repeatable; default: any device whose MAC verifies)")
	serve.Flags().StringVar(&addr, "http", "", "also serve the HTTP API and /metrics on this address, e.g. :8080")
	serve.Flags().IntVar(&workers, "workers", 2, "batches stored at once, from different partitions")
	pf.register(serve)

	cmd.AddCommand(migrate, serve, newAPICmd(&sf), newStatementCmd(&sf))
	addProofCmds(cmd, &sf)
	return cmd
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

// startHTTP listens on addr (failing now if it cannot), serves srv's API
// and the gap gauges, and reports a failure of the server on failed. stop
// shuts the server down, letting requests under way finish.
func startHTTP(ctx context.Context, addr string, srv *api.Server, reg prometheus.Registerer, st store.Store, failed chan<- error) (stop func(), err error) {
	gaps, err := monitor.NewGaps(reg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--http %s: %w; choose a free address", addr, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 2 * time.Minute}
	wctx, cancel := context.WithCancel(ctx)
	go gaps.Watch(wctx, st, 15*time.Second, slog.Default()) //nolint:errcheck // ends with ctx
	go func() {
		if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("HTTP API on %s: %w", addr, err)
		}
	}()
	slog.Info("HTTP API listening", "addr", ln.Addr().String())
	return func() {
		cancel()
		sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer scancel()
		hs.Shutdown(sctx) //nolint:errcheck // best effort at exit
	}, nil
}

func newAPICmd(sf *storeFlags) *cobra.Command {
	var (
		hf        hsmFlags
		addr      string
		apiTokens string
	)
	cmd := &cobra.Command{
		Use:   "api --http :8080",
		Short: "Serve the clearing HTTP JSON API and /metrics, without consuming Kafka",
		Long: `Serve the JSON API for finance staff and their tools:

  GET  /v1/compensation?period=YYYY-MM[&carrier=X][&by=category,route,day][&format=json|csv|xlsx]
  GET  /v1/reconciliation?period=YYYY-MM
  GET  /v1/statements/{period}
  GET  /v1/statements/{period}/verify[?deep=true]
  POST /v1/statements/{period}/close[?early=true]
  GET  /v1/held?period=YYYY-MM[&carrier=X][&reason=R][&decided=true]   (bearer token: finance, auditor)
  POST /v1/held/decide {"rides": ["DEVICE/SEQ"], "decision": "release"|"reject", "reason": "..."}   (finance)
  GET  /v1/proof?period=YYYY-MM   (finance, auditor)
  GET  /metrics

Closing and verifying statements needs the key backend (--keystore or --pkcs11-module); without one
those two endpoints answer 503 and the rest works. Errors are JSON: {"error": "what to do"}.`,
		Example: `  transit clearing api --http 127.0.0.1:8080 --db sqlite:clearing.db
  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing api --http :8080 --db postgres://postgres@127.0.0.1/transit --keystore keys.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if addr == "" {
				return usagef("give the address to listen on: --http host:port, e.g. --http :8080")
			}
			loc, err := sf.location()
			if err != nil {
				return err
			}
			st, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			reg := newRegistry()
			pf := proofFlags{apiTokens: apiTokens}
			auth, err := pf.auth()
			if err != nil {
				return err
			}
			srv := &api.Server{Store: st, Location: loc, Gatherer: reg, Auth: auth}
			if hf.keystore != "" || hf.module != "" {
				km, done, err := hf.open(c.ErrOrStderr())
				if err != nil {
					return err
				}
				defer done()
				srv.Statements = &statement.Service{Store: st, Keys: km, Location: loc}
			}
			failed := make(chan error, 1)
			stop, err := startHTTP(ctx, addr, srv, reg, st, failed)
			if err != nil {
				return err
			}
			defer stop()
			select {
			case <-ctx.Done():
				return nil
			case err := <-failed:
				return err
			}
		},
	}
	hf.register(cmd)
	cmd.Flags().StringVar(&addr, "http", "", "address to listen on, e.g. :8080")
	cmd.Flags().StringVar(&apiTokens, "api-tokens", "", "file of bearer tokens for the held-ride endpoints (transit clearing token create)")
	return cmd
}
