package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
)

func newReportCmd() *cobra.Command {
	var sf storeFlags
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Reports for finance staff and operators: compensation per carrier, reconciliation",
	}
	sf.register(cmd)

	var (
		period, carrier, format, out string
		byCategory                   bool
		by                           []string
	)
	comp := &cobra.Command{
		Use:   "compensation --period YYYY-MM",
		Short: "Print what the city owes each carrier for the benefit rides of a month",
		Long: `Print one line per carrier: the benefit rides booked in the month (in the city's time zone) and the
compensation owed for them, in hryvnias. Rides of an earlier, closed month that arrived late are booked
into the next open month as an adjustment, and count in that month's totals. --by-category splits each
carrier by benefit category and funding source and shows adjustments apart; --by route,day splits further.
Amounts are exact: they are sums of integer kopiyky. XLSX and PDF are binary: give --out or redirect stdout.
The PDF also shows each statement of the month: a draft, or closed with its content hash and signing key.`,
		Example: `  transit report compensation --period 2026-11 --db postgres://postgres@127.0.0.1/transit
  transit report compensation --period 2026-11 --carrier ATP-1 --by-category --format csv --db sqlite:clearing.db
  transit report compensation --period 2026-11 --by route,day --format xlsx --out november.xlsx --db sqlite:clearing.db
  transit report compensation --period 2026-11 --by-category --format pdf --out november.pdf --db sqlite:clearing.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := needPeriod(period); err != nil {
				return err
			}
			if !slices.Contains(report.Formats, format) {
				return usagef("--format %q: want one of %s", format, strings.Join(report.Formats, ", "))
			}
			d := report.Detail{Category: byCategory}
			for _, b := range by {
				switch b {
				case "category":
					d.Category = true
				case "route":
					d.Route = true
				case "day":
					d.Day = true
				default:
					return usagef("--by %q: list any of category, route, day", b)
				}
			}
			st, err := sf.open(c.Context())
			if err != nil {
				return err
			}
			defer st.Close()
			rep, err := report.BuildCompensation(c.Context(), st, period, carrier, d)
			if err != nil {
				return err
			}
			var sts []store.Statement
			if format == "pdf" {
				// The PDF is the document filed: it carries the seals.
				if sts, err = st.Statements(c.Context(), period); err != nil {
					return err
				}
			}
			w, done, err := output(c, out, format == "xlsx" || format == "pdf")
			if err != nil {
				return err
			}
			if format == "pdf" {
				err = report.WriteCompensationPDF(w, rep, sts)
			} else {
				err = report.WriteCompensation(w, format, rep)
			}
			if err != nil {
				err = fmt.Errorf("write the report: %w", err)
			}
			return done(err)
		},
	}
	comp.Flags().StringVar(&period, "period", "", "the month, YYYY-MM")
	comp.Flags().StringVar(&carrier, "carrier", "", "only this carrier")
	comp.Flags().StringVar(&format, "format", "table", "table, csv, json, xlsx or pdf")
	comp.Flags().StringVar(&out, "out", "", "write to this file instead of stdout")
	comp.Flags().BoolVar(&byCategory, "by-category", false, "one line per carrier, benefit category and funding source")
	comp.Flags().StringSliceVar(&by, "by", nil, "split lines further: category, route, day (comma-separated)")

	var recPeriod, recFormat string
	rec := &cobra.Command{
		Use:   "reconciliation --period YYYY-MM",
		Short: "Print a month's taps per device, sequence gaps, quarantined batches and anomalies",
		Long: `Print what clearing knows of a month beyond the money: taps and repeats per device; sequence gaps (taps a
device numbered but clearing never received), open or filled by late batches; batches quarantined in the
month with the reason; and anomalies: clocks running backwards or disagreeing with their batch, taps of
hotlisted cards, and cards seen on two vehicles too far apart to be one person.`,
		Example: `  transit report reconciliation --period 2026-11 --db postgres://postgres@127.0.0.1/transit
  transit report reconciliation --period 2026-11 --format json --db sqlite:clearing.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := needPeriod(recPeriod); err != nil {
				return err
			}
			if recFormat != "table" && recFormat != "json" {
				return usagef("--format %q: want table or json", recFormat)
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
			r, err := report.BuildReconciliation(c.Context(), st, recPeriod, loc)
			if err != nil {
				return err
			}
			return report.WriteReconciliation(c.OutOrStdout(), recFormat, r)
		},
	}
	rec.Flags().StringVar(&recPeriod, "period", "", "the month, YYYY-MM")
	rec.Flags().StringVar(&recFormat, "format", "table", "table or json")
	cmd.AddCommand(comp, rec, newProofReportCmd(&sf))
	return cmd
}

// needPeriod checks a --period flag.
func needPeriod(period string) error {
	if period == "" {
		return usagef("give the month: --period YYYY-MM, e.g. --period 2026-11")
	}
	if _, err := store.ParsePeriod(period); err != nil {
		return usageError{err}
	}
	return nil
}

// output returns where a report goes: the file path, or the command's
// stdout. done is told whether writing failed; it closes the file, and
// removes it after a failure so that no half report is left. A binary
// report is refused on a terminal.
func output(c *cobra.Command, path string, binary bool) (w io.Writer, done func(error) error, err error) {
	if path == "" {
		w := c.OutOrStdout()
		if f, ok := w.(*os.File); ok && binary && term.IsTerminal(int(f.Fd())) {
			return nil, nil, usagef("this format is binary: give --out FILE or redirect the output to a file")
		}
		return w, func(err error) error { return err }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("create the report file: %w", err)
	}
	return f, func(err error) error {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("write the report file %s: %w", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
		return err
	}, nil
}

// perCarrier folds lines into one per carrier, keeping the order.
func perCarrier(lines []store.Line) []store.Line { return report.PerCarrier(lines) }

// uah formats kopiyky as hryvnias with two decimals, exactly.
func uah(kop int64) string { return report.UAH(kop) }

// writeCompensation writes lines of a period as a table, CSV or JSON;
// byCategory shows the category and funding columns.
func writeCompensation(w io.Writer, format, period string, lines []store.Line, byCategory bool) error {
	c := report.Compensation{Period: period, Detail: report.Detail{Category: byCategory}, Lines: lines}
	for _, l := range lines {
		c.Total.Add(l)
	}
	return report.WriteCompensation(w, format, c)
}
