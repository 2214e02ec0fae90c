package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/bus"
	"github.com/citycard/transit/clearing/bus/inproc"
	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/clearing/store/postgres"
	"github.com/citycard/transit/clearing/store/sqlite"
	"github.com/citycard/transit/simulator/city"
	"github.com/citycard/transit/simulator/demo"
	"github.com/citycard/transit/simulator/progress"
)

// newSimCmd returns the city simulation commands.
func newSimCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate a city's cards, validators and clearing, and check clearing against the truth; present a virtual card",
	}
	cmd.AddCommand(newSimRunCmd(), newSimConfigCmd(), newSimCardCmd())
	return cmd
}

func newSimConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "config",
		Short: "Print the embedded city config, to edit and pass to 'transit sim run --config'",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := c.OutOrStdout().Write(city.DefaultConfigJSON())
			return err
		},
	}
}

// simFlags are the flags of 'transit sim run'.
type simFlags struct {
	config, fidelity, db, brokers, topic, dir, tariff string
	days, fullCards, fullVehicles, workers            int
	scale, fleetScale                                 float64
	seed                                              uint64
	keep, audit, closeAtEnd                           bool
}

func newSimRunCmd() *cobra.Command {
	var f simFlags
	cmd := &cobra.Command{
		Use:   "run [--config FILE]",
		Short: "Run a simulated city and print the truth against clearing",
		Long: `Build the city of --config (default: the embedded mid-size city, 'transit sim config' prints it), ride
its days with the configured faults, send the validators' sealed batches to clearing, close each month on
its close day, and print, per statement, what the simulator knows the city owes against what clearing books,
and whether every tap arrived exactly once and every forged batch was quarantined. With faults.dishonest in
the config (simulator/city/testdata/dishonest.json has it), some fast-lane validators inflate their benefit
rides' claims and invent rides of real benefit cards: each day says how many rides they invented, and the
comparison how clearing judged every lie (held, per reason) and that it held no honest ride. Exits 1 when
clearing differs from the truth.

--fidelity full presents virtual cards to real validators (card protocol, journals on disk, uploaders);
fast generates and seals the batches directly, for volume; mixed runs --full-cards riders on --full-vehicles
vehicles of each route at full fidelity and the rest fast.

Clearing runs in process on --db (sqlite:FILE, a postgres:// URL, migrated here, or none to only generate
and seal, for measuring, which publishes nothing and so takes no --brokers); the bus is in process unless
--brokers names Kafka, where a topic of its own is created unless --topic is given.

The keystores the simulation makes in its work directory (city.keys, topup.keys, validators/*/validator.keys)
have the passphrase "` + city.KeystorePassphrase + `": with --dir or --keep, open them with the other commands
(TRANSIT_KEYSTORE_PASSPHRASE), e.g. to verify the simulated statements.`,
		Example: `  transit sim run --config city.json --fidelity fast --days 7
  transit sim run --scale 0.01 --fidelity full --days 2 --db sqlite:clearing.db
  transit sim run --config week.json --fidelity mixed --db postgres://postgres@127.0.0.1/transit --brokers 127.0.0.1:9092`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return runSim(c, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "city config JSON (default: the embedded mid-size city)")
	fl.StringVar(&f.fidelity, "fidelity", "fast", "full, fast or mixed")
	fl.IntVar(&f.days, "days", 0, "days to simulate (default: the config's)")
	fl.Float64Var(&f.scale, "scale", 0, "scale of the population (default: the config's)")
	fl.Float64Var(&f.fleetScale, "fleet-scale", 0, "scale of the fleet (default: the config's, else --scale)")
	fl.Uint64Var(&f.seed, "seed", 0, "seed (default: the config's)")
	fl.IntVar(&f.fullCards, "full-cards", 300, "mixed: riders at full fidelity")
	fl.IntVar(&f.fullVehicles, "full-vehicles", 1, "mixed: vehicles of each route at full fidelity")
	fl.StringVar(&f.db, "db", "", "clearing database: sqlite:FILE, postgres://..., or none (default: sqlite in the work directory)")
	fl.StringVar(&f.brokers, "brokers", "", "Kafka bootstrap brokers, host:port[,host:port] (default: an in-process bus)")
	fl.StringVar(&f.topic, "topic", "", "Kafka topic (default: a new one for this run)")
	fl.IntVar(&f.workers, "workers", 2, "batches clearing stores at once")
	fl.StringVar(&f.dir, "dir", "", "work directory for keystores and journals (default: a temporary one)")
	fl.BoolVar(&f.keep, "keep", false, "keep the temporary work directory")
	fl.StringVar(&f.tariff, "tariff", "", "tariff directory (default: the embedded sample tariff)")
	fl.BoolVar(&f.audit, "audit", false, "also compare every stored tap field by field (memory grows with the taps)")
	fl.BoolVar(&f.closeAtEnd, "close-at-end", true, "close the months still open at the end, early, so all statements are signed")
	return cmd
}

func runSim(c *cobra.Command, f simFlags) error {
	ctx := c.Context()
	out := c.OutOrStdout()
	cfg := city.DefaultConfig()
	if f.config != "" {
		var err error
		if cfg, err = city.LoadConfig(f.config); err != nil {
			return usageError{err}
		}
	}
	if f.days > 0 {
		cfg.Days = f.days
	}
	if f.scale > 0 {
		cfg.Scale = f.scale
	}
	if f.fleetScale > 0 {
		cfg.FleetScale = f.fleetScale
	}
	if f.seed > 0 {
		cfg.Seed = f.seed
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	fid := city.Fidelity(f.fidelity)
	if fid != city.Full && fid != city.Fast && fid != city.Mixed {
		return usagef("--fidelity %q: want full, fast or mixed", f.fidelity)
	}
	if f.workers < 1 || f.workers > 64 {
		return usagef("--workers %d: want 1 to 64", f.workers)
	}
	if f.db == "none" && (f.brokers != "" || f.topic != "") {
		return usagef("--db none only generates and seals batches, without clearing, and publishes nothing to Kafka; " +
			"drop --brokers/--topic, or give --db sqlite:FILE or a postgres:// URL to run clearing on Kafka")
	}
	tariffFS := demo.DefaultTariff()
	if f.tariff != "" {
		tariffFS = os.DirFS(f.tariff)
	}
	dir := f.dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "transit-sim-"); err != nil {
			return fmt.Errorf("sim work directory: %w", err)
		}
		if f.keep {
			fmt.Fprintf(out, "files kept in %s\n", dir)
		} else {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("sim work directory: %w", err)
	}
	if f.keep || f.dir != "" {
		fmt.Fprintf(out, "keystores in %s (city.keys, topup.keys, validators/*/validator.keys), passphrase %q\n", dir, city.KeystorePassphrase)
	}
	zone := cfg.TimeZone
	if zone == "" {
		zone = "UTC"
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return usagef("config time_zone %q: not a known time zone", zone)
	}

	opt := city.Options{Dir: dir, Tariff: tariffFS, Fidelity: fid, FullCards: f.fullCards, FullVehicles: f.fullVehicles,
		IngestWorkers: f.workers, Audit: f.audit}
	if f.db != "none" {
		st, err := openSimStore(ctx, f.db, dir, loc)
		if err != nil {
			return err
		}
		defer st.Close()
		prod, cons, closeBus, err := openSimBus(ctx, f)
		if err != nil {
			return err
		}
		defer closeBus()
		opt.Store, opt.Producer, opt.Consumer = st, prod, cons
	}
	meter := progress.For(out)
	opt.Progress = meter.Update
	size := cfg.Size()
	fmt.Fprintf(out, "%s: %d cardholders (%d with benefits), %d validators on %d vehicles; %d days from %s at %s fidelity\n",
		cfg.Name, size.Cardholders, size.Benefits, size.Validators, size.Vehicles, cfg.Days, cfg.Start, fid)
	started := time.Now()
	sim, err := city.New(ctx, cfg, opt)
	meter.Clear()
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Fprintf(out, "set up in %v\n", time.Since(started).Round(time.Millisecond))
	riding := time.Now()
	cmp, err := sim.Run(ctx, f.closeAtEnd && opt.Store != nil, func(d city.DayReport, e city.EndReport) {
		meter.Clear()
		printDay(out, d, e)
	})
	meter.Clear()
	if err != nil {
		return err
	}
	took := time.Since(riding)
	st := sim.Stats()
	what := "clearing included"
	if opt.Store == nil {
		what = "generated and sealed, no clearing"
	}
	fmt.Fprintf(out, "%d taps in %v: %.0f taps/s, %s; %d benefit rides owed %s UAH\n",
		st.Taps, took.Round(time.Millisecond), float64(st.Taps)/took.Seconds(), what, st.BenefitRides, uah(st.OwedKop))
	if cmp == nil {
		fmt.Fprintln(out, "no clearing (--db none): nothing to compare")
		return nil
	}
	fmt.Fprintln(out)
	if err := city.WriteComparison(out, cmp); err != nil {
		return err
	}
	if !cmp.OK() {
		return errors.New("clearing differs from the truth: see the comparison above")
	}
	return nil
}

func printDay(w io.Writer, d city.DayReport, e city.EndReport) {
	fmt.Fprintf(w, "%s: %d taps (%d accepted, %d already paid, %d denied, %d hotlisted), %d torn, %d power cuts, %d top-ups; %d batches from %d validators, %d offline",
		d.Date.Format("Mon 2 Jan 2006"), d.Taps, d.Accepted, d.AlreadyPaid, d.Denied, d.Hotlisted, d.Torn, d.PowerCuts, d.TopUps,
		e.Batches, e.Uploaded, e.Offline)
	if e.Replayed+e.Forged > 0 {
		fmt.Fprintf(w, "; %d replayed, %d forged batches", e.Replayed, e.Forged)
	}
	if e.LateRides > 0 {
		fmt.Fprintf(w, "; %d late benefit rides", e.LateRides)
	}
	if e.Invented > 0 {
		fmt.Fprintf(w, "; %d rides invented by dishonest validators", e.Invented)
	}
	for _, s := range e.Closed {
		name := s.Period
		if s.Adjusts != "" {
			name += " (adjusting " + s.Adjusts + ")"
		}
		fmt.Fprintf(w, "; closed %s", name)
	}
	if e.Blocked > 0 {
		fmt.Fprintf(w, "; %d cards lost, hotlist v%d", e.Blocked, e.HotlistVersion)
	}
	fmt.Fprintln(w)
}

// openSimStore opens the clearing store of --db, migrating PostgreSQL.
func openSimStore(ctx context.Context, db, dir string, loc *time.Location) (store.Store, error) {
	opt := store.Options{Location: loc}
	switch {
	case db == "":
		return sqlite.Open(ctx, filepath.Join(dir, "clearing.db"), opt)
	case strings.HasPrefix(db, "sqlite:"):
		path, err := sqlitePath("--db", db)
		if err != nil {
			return nil, err
		}
		return sqlite.Open(ctx, path, opt)
	case isPostgresURL(db):
		if _, err := postgres.Migrate(ctx, db, loc); err != nil {
			return nil, err
		}
		return postgres.Open(ctx, db, opt)
	}
	return nil, usagef("--db %q: want sqlite:FILE, a postgres:// URL or none", db)
}

// openSimBus returns the bus of the run: Kafka when --brokers is given,
// on --topic or a new topic of its own, else in process.
func openSimBus(ctx context.Context, f simFlags) (bus.Producer, bus.Consumer, func(), error) {
	if f.brokers == "" {
		b := inproc.New(8)
		cons, err := b.Consumer("clearing")
		if err != nil {
			return nil, nil, nil, err
		}
		prod := b.Producer()
		return prod, cons, func() { cons.Close(); prod.Close() }, nil
	}
	kc := kafka.Config{Brokers: strings.Split(f.brokers, ","), Topic: f.topic}
	if kc.Topic == "" {
		// A topic of its own: an old topic's batches would be ingested too.
		kc.Topic = fmt.Sprintf("sim-%s-%04x", time.Now().UTC().Format("20060102-150405"), rand.Uint32()&0xFFFF)
		if err := kafka.CreateTopic(ctx, kc, 8); err != nil {
			return nil, nil, nil, err
		}
	}
	prod, err := kafka.NewProducer(ctx, kc)
	if err != nil {
		return nil, nil, nil, err
	}
	cons, err := kafka.NewConsumer(ctx, kc, "clearing-"+kc.Topic)
	if err != nil {
		prod.Close()
		return nil, nil, nil, err
	}
	return prod, cons, func() { cons.Close(); prod.Close() }, nil
}
