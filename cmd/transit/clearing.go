package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/bus/kafka"
	"github.com/citycard/transit/clearing/ingest"
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
		Use:     "migrate",
		Short:   "Create or upgrade the clearing schema in PostgreSQL",
		Long:    "Apply every schema migration the database lacks. Safe to run again; the embedded sqlite: store migrates itself.",
		Example: `  transit clearing migrate --db postgres://postgres@127.0.0.1:5432/transit`,
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !isPostgresURL(sf.db) {
				return usagef("migrate needs --db postgres://...; the embedded sqlite: store migrates itself when opened")
			}
			n, err := postgres.Migrate(c.Context(), sf.db)
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
	)
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Consume tap batches from Kafka and store them until stopped",
		Long: `Consume tap batches from the Kafka topic as a member of a consumer group, verify, store and
commit each batch after it is stored. Stop with Ctrl-C or SIGTERM: handled batches are committed first.`,
		Example: `  TRANSIT_KEYSTORE_PASSPHRASE=... transit clearing serve --db postgres://postgres@127.0.0.1/transit \
      --brokers 127.0.0.1:9092 --keystore keys.json`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			ctx := c.Context()
			if brokers == "" {
				return usagef("no Kafka broker: give --brokers host:port[,host:port]")
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
			r := &ingest.Runner{
				Consumer:  cons,
				Processor: &ingest.Processor{Verifier: v, Store: st},
				OnBatch: func(o ingest.Outcome, t ingest.Totals) {
					slog.Info("batch", "device", o.Device, "added", o.Added, "duplicates", o.Duplicates,
						"quarantined", o.Quarantined, "total_taps", t.Added)
				},
			}
			slog.Info("clearing started", "brokers", brokers, "topic", topic, "group", group)
			err = r.Run(ctx)
			if errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		},
	}
	hf.register(serve)
	serve.Flags().StringVar(&brokers, "brokers", "", "Kafka bootstrap brokers, host:port[,host:port]")
	serve.Flags().StringVar(&topic, "topic", "taps", "Kafka topic of tap batches")
	serve.Flags().StringVar(&group, "group", "clearing", "Kafka consumer group")
	serve.Flags().StringSliceVar(&devices, "device", nil, "accept batches only from these device ids (repeatable; default: any device whose MAC verifies)")

	cmd.AddCommand(migrate, serve)
	return cmd
}
