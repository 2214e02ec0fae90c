package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
	"github.com/citycard/transit/simulator/demo"
	"github.com/citycard/transit/simulator/progress"
)

func newDemoCmd() *cobra.Command {
	var (
		cards, validators int
		seed              uint64
		keep              bool
		tz                string
	)
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "A guided tour of the whole platform in one process on embedded defaults",
		Long: `A guided tour on embedded defaults: a small city (simulator/city) issues virtual cards with a software
keystore, rides a simulated day (yesterday) on three carriers' validators with torn cards, a power cut and
forged batches, journals every tap, sends sealed batches over an in-process bus to clearing on the embedded
SQLite store, blocks a lost card with a signed hotlist and shows its next tap refused, closes the month with
a signed statement and prints what the city owes each carrier for benefit rides. It checks its own result:
the statement must equal what the simulator knows is owed. Needs no server and no cgo. Files go to a
temporary directory, removed afterwards unless --keep.`,
		Example: `  transit demo
  transit demo --cards 500 --seed 7 --keep`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if cards < 1 || cards > 100_000 {
				return usagef("--cards %d: want 1 to 100000", cards)
			}
			if validators < 1 || validators > 2_000 {
				return usagef("--validators %d: want 1 to 2000", validators)
			}
			loc, err := time.LoadLocation(tz)
			if err != nil {
				return usagef("--tz %q: not a known time zone (e.g. Europe/Kyiv, UTC)", tz)
			}
			dir, err := os.MkdirTemp("", "transit-demo-")
			if err != nil {
				return fmt.Errorf("demo directory: %w", err)
			}
			out := c.OutOrStdout()
			if keep {
				fmt.Fprintf(out, "files kept in %s\n", dir)
			} else {
				defer os.RemoveAll(dir)
			}
			meter := progress.For(out)
			res, err := demo.Run(c.Context(), demo.Options{
				Dir: dir, Out: out, Progress: meter.Update, Clear: meter.Clear,
				Day: time.Now().In(loc).AddDate(0, 0, -1), Location: loc,
				Cards: cards, Validators: validators, Seed: seed,
			})
			meter.Clear()
			if err != nil {
				return fmt.Errorf("demo: %w", err)
			}
			fmt.Fprintln(out)
			perCarrier := report.Compensation{Period: res.Period, Closed: res.Statement.Closed,
				Lines: demo.PerCarrier(res.Carriers, res.Lines), Total: res.Statement.Total()}
			if err := report.WriteCompensation(out, "table", perCarrier); err != nil {
				return err
			}
			fmt.Fprintln(out)
			if err := report.WriteStatements(out, "table", []store.Statement{res.Statement}, loc); err != nil {
				return err
			}
			fmt.Fprintf(out, "\nThe statement equals the sum of the %d benefit rides the simulator knows the city owes for: %s UAH.\n",
				res.Rides, report.UAH(res.ExpectedKop))
			return nil
		},
	}
	cmd.Flags().IntVar(&cards, "cards", 2000, "how many cardholders the city has")
	cmd.Flags().IntVar(&validators, "validators", 20, "about how many validators the city has")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed of the city and its day")
	cmd.Flags().BoolVar(&keep, "keep", false, "keep the keystores, journals and clearing database")
	cmd.Flags().StringVar(&tz, "tz", "Europe/Kyiv", "the city's time zone")
	return cmd
}
