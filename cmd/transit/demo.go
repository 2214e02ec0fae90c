package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/simulator/demo"
)

func newDemoCmd() *cobra.Command {
	var (
		cards int
		seed  uint64
		keep  bool
		tz    string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole path in one process on embedded defaults and print the compensation report",
		Long: `Issue virtual cards with a software keystore, ride a simulated day (yesterday) on three carriers'
validators, journal every tap, send sealed batches over an in-process bus, store them exactly once in
the embedded SQLite clearing store, and print what the city owes each carrier for the benefit rides.
Needs no server and no cgo. Files go to a temporary directory, removed afterwards unless --keep.`,
		Example: `  transit demo
  transit demo --cards 200 --seed 7 --keep`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cards < 1 || cards > 100_000 {
				return usagef("--cards %d: want 1 to 100000", cards)
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return usagef("--tz %q: not a known time zone (e.g. Europe/Kyiv, UTC)", tz)
			}
			dir, err := os.MkdirTemp("", "transit-demo-")
			if err != nil {
				return fmt.Errorf("demo directory: %w", err)
			}
			if keep {
				fmt.Fprintf(c.OutOrStdout(), "files kept in %s\n", dir)
			} else {
				defer os.RemoveAll(dir)
			}
			out := c.OutOrStdout()
			res, err := demo.Run(c.Context(), demo.Options{
				Dir: dir, Out: out, Day: time.Now().In(loc).AddDate(0, 0, -1),
				Location: loc, Cards: cards, Seed: seed,
			})
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			fmt.Fprintln(out)
			if err := writeCompensation(out, "table", res.Period, perCarrier(res.Lines), false); err != nil {
				return err
			}
			fmt.Fprintln(out)
			if err := writeCompensation(out, "table", res.Period, res.Lines, true); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nThe report equals the sum of the %d benefit rides the validators recorded on cards: %s UAH.\n",
				res.Rides, uah(res.ExpectedKop))
			return nil
		},
	}
	cmd.Flags().IntVar(&cards, "cards", 40, "how many cards to issue")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the simulated day's rides")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the keystores, journals and clearing database")
	cmd.Flags().StringVar(&tz, "tz", "Europe/Kyiv", "the city's time zone")
	return cmd
}
