package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/citycard/transit/clearing/fleet"
)

// newReportFleetCmd is `transit report fleet`: which devices went silent,
// which run an old hotlist or tariff, whose clock is off.
func newReportFleetCmd(sf *storeFlags) *cobra.Command {
	var (
		format, out  string
		offlineAfter time.Duration
		clockSkew    time.Duration
		problems     bool
	)
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Print each device's last batch, last tap, versions in force and clock, and which went silent",
		Long: `Print what clearing knows of every device it has heard from: when its last batch arrived, its last tap and
sequence number, the tariff and hotlist versions of its latest tap, and how far its clock is from
clearing's (estimated from its latest batch). A device silent for longer than --offline-after is offline;
one whose tariff or hotlist is older than the newest any device uses runs an old update. The summary
counts the devices silent for over 1 hour, 24 hours and 7 days. Times are in the city's time zone (--tz).`,
		Example: `  transit report fleet --db postgres://postgres@127.0.0.1/transit
  transit report fleet --problems --offline-after 30m --db sqlite:clearing.db
  transit report fleet --format csv --out fleet.csv --db postgres://postgres@127.0.0.1/transit`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !slices.Contains(fleet.Formats, format) {
				return usagef("--format %q: want one of %s", format, strings.Join(fleet.Formats, ", "))
			}
			if offlineAfter < time.Minute || clockSkew < time.Second {
				return usagef("--offline-after must be at least 1m and --clock-skew at least 1s")
			}
			loc, err := sf.location()
			if err != nil {
				return err
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := fleet.Read(c.Context(), st, time.Now(), fleet.Options{Offline: offlineAfter, ClockSkew: clockSkew})
			if err != nil {
				return err
			}
			w, done, err := output(c, out, false)
			if err != nil {
				return err
			}
			if err := fleet.Write(w, format, v, loc, problems); err != nil {
				return done(fmt.Errorf("write the fleet report: %w", err))
			}
			return done(nil)
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table, csv or json")
	cmd.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	cmd.Flags().DurationVar(&offlineAfter, "offline-after", fleet.DefaultOffline, "a device silent longer than this is offline")
	cmd.Flags().DurationVar(&clockSkew, "clock-skew", fleet.DefaultClockSkew, "a clock further than this from clearing's is flagged")
	cmd.Flags().BoolVar(&problems, "problems", false, "list only the devices with a problem (the summary still counts all)")
	return cmd
}
