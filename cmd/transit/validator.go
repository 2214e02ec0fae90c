package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/citycard/transit/card/cardkey"
	"github.com/citycard/transit/card/pcsc"
	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/hsm"
	"github.com/citycard/transit/validator/agent"
	"github.com/citycard/transit/validator/config"
	"github.com/citycard/transit/validator/devauth"
	"github.com/citycard/transit/validator/fare"
	"github.com/citycard/transit/validator/hotlist"
	"github.com/citycard/transit/validator/journal"
	"github.com/citycard/transit/validator/tariff"
	"github.com/citycard/transit/validator/update"
	"github.com/citycard/transit/validator/upload"
)

func newValidatorCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "validator",
		Short: "The on-board validator: decide every tap offline, journal it, upload batches",
	}
	var cfgPath, eventsPath string
	var unsignedTariff bool
	run := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the validator on a PC/SC reader until stopped",
		Long: `Wait for a card on the configured PC/SC reader, read it, decide the fare offline against the tariff,
journal the tap on disk before the card is written, write the card, and show the result; then wait for
the card to leave. Journalled taps go to Kafka in sealed batches whenever the broker is reachable.
Each result is printed as a line on standard output; --events also appends it as JSON to a file (or FIFO)
for a display or buzzer driver. The keystore passphrase comes from TRANSIT_KEYSTORE_PASSPHRASE.`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit validator run --config /etc/transit/validator.json`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cfgPath == "" {
				return usagef("give the configuration file: --config FILE (a sample is testdata/validator.json)")
			}
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			var events io.Writer
			if eventsPath != "" {
				f, err := os.OpenFile(eventsPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
				if err != nil {
					return fmt.Errorf("open --events: %w", err)
				}
				defer f.Close()
				events = f
			}
			return runValidator(c.Context(), cfg, unsignedTariff, c.OutOrStdout(), events, c.ErrOrStderr())
		},
	}
	run.Flags().StringVar(&cfgPath, "config", "", "validator configuration file (JSON)")
	run.Flags().StringVar(&eventsPath, "events", "", "also write each result as a JSON line to this file or FIFO")
	run.Flags().BoolVar(&unsignedTariff, "unsigned-tariff", false, "accept a tariff without tariff.sig (development only)")
	cmd.AddCommand(run)
	return cmd
}

// errNoPCSC is the one line a validator built without cgo says before it
// exits: it could never read a card, so retrying would only hide that.
var errNoPCSC = errors.New("this transit binary was built without cgo, so it has no PC/SC and cannot read cards: " +
	"build it with CGO_ENABLED=1 and libpcsclite-dev installed (see 'transit version')")

func runValidator(ctx context.Context, cfg *config.Config, unsignedTariff bool, out, events, stderr io.Writer) error {
	if !cgoBuilt {
		return errNoPCSC
	}
	pass, err := passphrase("TRANSIT_KEYSTORE_PASSPHRASE", "validator keystore passphrase", false, stderr)
	if err != nil {
		return err
	}
	ks, err := hsm.OpenKeystore(cfg.Keystore, pass)
	if err != nil {
		return fmt.Errorf("validator keystore %s: %w", cfg.Keystore, err)
	}
	defer ks.Close()
	// The keystore's Argon2id key derivation took 64 MiB; a vehicle
	// computer should not keep it for the rest of the day.
	debug.FreeOSMemory()
	sealer, err := upload.NewKeySealer(ctx, ks)
	if err != nil {
		return err
	}
	// A tariff update cut short by a power loss is completed first.
	if err := update.RecoverDir(cfg.Tariff); err != nil {
		return fmt.Errorf("tariff directory %s: %w", cfg.Tariff, err)
	}
	// The tariff is verified with the sign-tariff keys of the role
	// keystore. An unsigned one is taken only when asked for: removing
	// tariff.sig must not be a way around the signature.
	tf, err := tariff.Load(cfg.Tariff)
	switch {
	case errors.Is(err, tariff.ErrSigned):
		tf, err = tariff.LoadSigned(ctx, cfg.Tariff, ks, 0)
	case err == nil && !unsignedTariff:
		return fmt.Errorf("tariff %s is not signed: sign it with 'transit tariff sign', or pass --unsigned-tariff in development", cfg.Tariff)
	case err == nil:
		slog.Warn("the tariff is not signed (--unsigned-tariff): for development only", "tariff", cfg.Tariff)
	}
	if err != nil {
		return err
	}
	j, err := journal.Open(ctx, cfg.Journal, cfg.Device)
	if err != nil {
		return err
	}
	defer j.Close()

	hkeys, err := hotlist.HSMKeys(ctx, ks)
	if err != nil {
		return fmt.Errorf("hotlist verify keys: %w", err)
	}
	hl, err := hotlist.Open(ctx, hotlist.Config{Dir: cfg.HotlistDir, MaxAge: time.Duration(cfg.HotlistMaxAge)}, hkeys)
	if err != nil {
		return err
	}
	if hl.Version() == 0 {
		slog.Warn("no hotlist loaded: no card is blocked until one arrives", "dir", cfg.HotlistDir)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(journal.NewCollector(j), hotlist.NewCollector(hl, time.Now), newBuildInfoGauge("transit_validator", readBuildInfo()))

	reader := pcsc.Open(cfg.Reader)
	defer reader.Close()
	cards := agent.DESFire(cardkey.New(ks), cfg.DeviceNumber, cfg.Vehicle, cfg.Location())
	cards.Carrier, cards.Route = cfg.CarrierNumber, cfg.RouteNumber
	for _, n := range cfg.VehicleDevices {
		cards.Fleet[n] = cfg.Vehicle // the vehicle's other doors
	}
	a := &agent.Agent{
		Device:  fare.Device{ID: cfg.Device, Carrier: cfg.Carrier, Route: cfg.Route, Vehicle: cfg.Vehicle},
		Tariff:  tf,
		Hotlist: hl,
		Cards:   cards,
		Journal: j,
		Metrics: agent.NewMetrics(reg),
	}
	reg.MustRegister(agent.NewTariffCollector(a))
	// The probe has a PC/SC context of its own: the loop's waits inside
	// the PC/SC layer while pcscd is away.
	probeReader := pcsc.Open(cfg.Reader)
	defer probeReader.Close()
	health := &agent.Health{Probe: func(context.Context) error { return readerPresent(probeReader, cfg.Reader) }}
	health.Register(reg)
	var mu sync.Mutex
	loop := &agent.Loop{Agent: a, Reader: agent.PCSC(reader), Health: health, Show: func(ev agent.Event) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(out, describe(ev))
		if events != nil {
			b, _ := json.Marshal(ev)
			events.Write(append(b, '\n'))
		}
	}}
	up := &upload.Uploader{
		Journal:   j,
		Sealer:    sealer,
		Publisher: &lazyKafka{cfg: kafka.Config{Brokers: cfg.Kafka.Brokers, Topic: cfg.Kafka.Topic}},
		MaxTaps:   cfg.BatchSize,
		Interval:  time.Duration(cfg.UploadInterval),
		Metrics:   upload.NewMetrics(reg),
	}
	defer up.Publisher.(*lazyKafka).Close()

	slog.Info("validator started", "device", cfg.Device, "reader", cfg.Reader, "tariff", tf.Version)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx) // each runs until ctx ends, logging its own failures
		}()
	}
	goRun(up.Run)
	goRun(health.Run)
	if cfg.UpdatesURL != "" {
		// Over TLS against the city's CA when the configuration names
		// one; each request signed with the device's batch key.
		hc, err := update.NewClient(cfg.UpdatesCAFile)
		if err != nil {
			return err
		}
		auth := &devauth.Signer{Device: cfg.Device, Keys: ks}
		goRun((&update.Fetcher{Base: cfg.UpdatesURL, Client: hc, Auth: auth, Hotlist: hl, Keys: hkeys}).Run)
		goRun((&update.TariffFetcher{Base: cfg.UpdatesURL, Client: hc, Auth: auth, Dir: cfg.Tariff, Keys: ks, User: a}).Run)
	}
	if cfg.MetricsListen != "" {
		srv, err := serveMetrics(cfg, reg, health.Handler())
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	err = loop.Run(ctx)
	cancel()
	wg.Wait()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// readerPresent reports whether pcscd answers and lists the reader called
// name.
func readerPresent(r *pcsc.Reader, name string) error {
	names, err := r.Readers()
	if err != nil {
		return err
	}
	if !slices.Contains(names, name) {
		return fmt.Errorf("reader %q is not connected; pcscd lists %q", name, names)
	}
	return nil
}

// serveMetrics serves reg's metrics at /metrics, and health's /healthz
// and /readyz, on the configuration's metrics_listen until closed: over
// TLS and, for /metrics, to the scraper's token when it names them (it
// must beyond loopback). Health reveals nothing and needs no token.
func serveMetrics(cfg *config.Config, reg *prometheus.Registry, health http.Handler) (*http.Server, error) {
	var h http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if cfg.MetricsTokenFile != "" {
		b, err := os.ReadFile(cfg.MetricsTokenFile)
		if err != nil {
			return nil, fmt.Errorf("metrics_token_file: %w", err)
		}
		want := strings.TrimSpace(string(b))
		if len(want) < 16 {
			return nil, fmt.Errorf("metrics_token_file %s: the token is shorter than 16 characters", cfg.MetricsTokenFile)
		}
		inner := h
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), []byte(want)) != 1 {
				slog.Warn("metrics request refused", "addr", r.RemoteAddr)
				w.Header().Set("WWW-Authenticate", `Bearer realm="validator"`)
				http.Error(w, "send the scraper's token: Authorization: Bearer <metrics_token_file>", http.StatusUnauthorized)
				return
			}
			inner.ServeHTTP(w, r)
		})
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w; choose another metrics_listen address", err)
	}
	if cfg.MetricsTLSCert != "" {
		tc, err := serverTLS(cfg.MetricsTLSCert, cfg.MetricsTLSKey)
		if err != nil {
			ln.Close()
			return nil, err
		}
		ln = tls.NewListener(ln, tc)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}

// describe is the terminal line for one result.
func describe(ev agent.Event) string {
	light := "RED  "
	if ev.Green {
		light = "GREEN"
	}
	s := fmt.Sprintf("%s %s card %d: %s (%s)", ev.Time.Format("15:04:05"), light, ev.Card, ev.Result, ev.Reason)
	if ev.Result == "accepted" {
		s += fmt.Sprintf(", %s, charged %s of %s UAH", ev.Product, uah(ev.ChargedKop), uah(ev.FareKop))
	}
	if ev.Category != "" {
		s += ", benefit " + ev.Category
	}
	if ev.Err != "" {
		s += ": " + ev.Err
	}
	return s
}

// lazyKafka connects to Kafka on first use and again after a failure, so
// a validator starts and takes taps while the network is down.
type lazyKafka struct {
	cfg kafka.Config
	mu  sync.Mutex
	p   *kafka.Producer
}

func (l *lazyKafka) Publish(ctx context.Context, key, value []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p == nil {
		p, err := kafka.NewProducer(ctx, l.cfg)
		if err != nil {
			return err
		}
		l.p = p
	}
	if err := l.p.Publish(ctx, bus.Message{Key: key, Value: value}); err != nil {
		l.p.Close()
		l.p = nil
		return err
	}
	return nil
}

func (l *lazyKafka) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.p == nil {
		return nil
	}
	return l.p.Close()
}
