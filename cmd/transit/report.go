package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/citycard/transit/clearing/register"
	"github.com/citycard/transit/clearing/report"
	"github.com/citycard/transit/clearing/store"
)

func newReportCmd() *cobra.Command {
	var (
		sf       storeFlags
		names    string
		lang     string
		register *register.Register
	)
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Reports for finance staff and operators: compensation per carrier, reconciliation, the fleet",
		PersistentPreRunE: func(c *cobra.Command, _ []string) error {
			if err := c.Root().PersistentPreRunE(c, nil); err != nil {
				return err
			}
			if lang != "uk" && lang != "en" {
				return usagef("--lang %q: want uk or en", lang)
			}
			var err error
			register, err = loadRegister(names)
			return err
		},
	}
	sf.register(cmd)
	cmd.PersistentFlags().StringVar(&names, "register", "", "the finance register directory (carriers' legal details, category names; clearing/register/FORMAT.md)")
	cmd.PersistentFlags().StringVar(&lang, "lang", "uk", "language of carrier, category and funding names in table, CSV, JSON and XLSX: uk or en")

	var (
		period, carrier, category, format, out string
		byCategory, perCarrier                 bool
		by                                     []string
	)
	comp := &cobra.Command{
		Use:   "compensation --period YYYY-MM",
		Short: "Print what the city owes each carrier for the benefit rides of a month",
		Long: `Print one line per carrier: the benefit rides booked in the month (in the city's time zone) and the
compensation owed for them, in hryvnias. Rides of an earlier, closed month that arrived late are booked
into the next open month as an adjustment, and count in that month's totals. --by-category splits each
carrier by benefit category and funding source, with each carrier's subtotal, and shows adjustments
apart; --by route,day splits further. Amounts are exact: they are sums of integer kopiyky.

With --register the finance register names carriers and categories, and a PDF for one carrier
(--carrier) or for each carrier on its own pages (--per-carrier) carries the carrier's legal details
and approval lines: the document sent to the carrier. The PDF also shows each statement of the month:
a draft, or closed, when and by whom, with its content hash, signing key and fingerprint.

A carrier or category that no ride and no register entry knows is an error (a typo), as is a database
file that does not exist. XLSX and PDF are binary: give --out (written 0600) or redirect stdout.`,
		Example: `  transit report compensation --period 2026-11 --db postgres://postgres@127.0.0.1/transit
  transit report compensation --period 2026-11 --carrier ATP-1 --by-category --format csv --db sqlite:clearing.db
  transit report compensation --period 2026-11 --by route,day --format xlsx --out november.xlsx --db sqlite:clearing.db
  transit report compensation --period 2026-11 --by-category --per-carrier --format pdf --register finance/ --out november.pdf --db sqlite:clearing.db`,
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
			if perCarrier && (format != "pdf" || carrier != "") {
				return usagef("--per-carrier puts each carrier of a PDF on its own pages: use it with --format pdf and without --carrier")
			}
			if (perCarrier || carrier != "" && format == "pdf") && register == nil {
				return usagef("a carrier's statement needs its legal details: give --register DIR (the finance register)")
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
			rep, err := report.BuildCompensation(c.Context(), st, report.Query{Period: period, Carrier: carrier, Category: category, Detail: d, Names: register})
			if err != nil {
				return err
			}
			rep.Location, rep.Lang, rep.PerCarrier = loc, lang, perCarrier
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
	comp.Flags().StringVar(&category, "category", "", "only this benefit category (its card code, e.g. 11)")
	comp.Flags().StringVar(&format, "format", "table", "table, csv, json, xlsx or pdf")
	comp.Flags().StringVar(&out, "out", "", "write to this file (0600) instead of stdout")
	comp.Flags().BoolVar(&byCategory, "by-category", false, "one line per carrier, benefit category and funding source")
	comp.Flags().BoolVar(&perCarrier, "per-carrier", false, "PDF: each carrier on pages of its own, with its legal details (needs --register)")
	comp.Flags().StringSliceVar(&by, "by", nil, "split lines further: category, route, day (comma-separated)")

	var recPeriod, recFormat, recOut string
	rec := &cobra.Command{
		Use:   "reconciliation --period YYYY-MM",
		Short: "Print a month's taps per device, sequence gaps, quarantined batches and anomalies",
		Long: `Print what clearing knows of a month beyond the money: taps and repeats per device; sequence gaps (taps a
device numbered but clearing never received), open or filled by late batches; batches quarantined in the
month with the reason; and anomalies: clocks running backwards or disagreeing with their batch, taps of
hotlisted cards, and cards seen on two vehicles too far apart to be one person. Times are in the city's
time zone (--tz). CSV has one row per finding with its section; XLSX a sheet per section; the PDF is
for filing, in Ukrainian and English.`,
		Example: `  transit report reconciliation --period 2026-11 --db postgres://postgres@127.0.0.1/transit
  transit report reconciliation --period 2026-11 --format json --db sqlite:clearing.db
  transit report reconciliation --period 2026-11 --format xlsx --out recon-2026-11.xlsx --db sqlite:clearing.db`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := needPeriod(recPeriod); err != nil {
				return err
			}
			if !slices.Contains(report.Formats, recFormat) {
				return usagef("--format %q: want one of %s", recFormat, strings.Join(report.Formats, ", "))
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
			w, done, err := output(c, recOut, recFormat == "xlsx" || recFormat == "pdf")
			if err != nil {
				return err
			}
			err = report.WriteReconciliation(w, recFormat, r)
			if err != nil {
				err = fmt.Errorf("write the report: %w", err)
			}
			return done(err)
		},
	}
	rec.Flags().StringVar(&recPeriod, "period", "", "the month, YYYY-MM")
	rec.Flags().StringVar(&recFormat, "format", "table", "table, csv, json, xlsx or pdf")
	rec.Flags().StringVar(&recOut, "out", "", "write to this file (0600) instead of stdout")
	cmd.AddCommand(comp, rec, newReportFleetCmd(&sf), newProofReportCmd(&sf))
	return cmd
}

// loadRegister loads the finance register of a --register flag; "" is
// none.
func loadRegister(dir string) (*register.Register, error) {
	if dir == "" {
		return nil, nil
	}
	r, err := register.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("--register: %w", err)
	}
	return r, nil
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
// stdout. done is told whether writing failed. A file is written beside
// path under a temporary name, 0600 (reports name carriers and amounts;
// some exports hold personal data), and renamed over path only once it is
// complete: no half report is ever left, nor one readable by others. A
// binary report is refused on a terminal.
func output(c *cobra.Command, path string, binary bool) (w io.Writer, done func(error) error, err error) {
	if path == "" {
		w := c.OutOrStdout()
		if f, ok := w.(*os.File); ok && binary && term.IsTerminal(int(f.Fd())) {
			return nil, nil, usagef("this format is binary: give --out FILE or redirect the output to a file")
		}
		return w, func(err error) error { return err }, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, nil, fmt.Errorf("create the report file: %w", err)
	}
	// CreateTemp makes it 0600 whatever the umask; say so in case.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, nil, fmt.Errorf("create the report file: %w", err)
	}
	return f, func(err error) error {
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(f.Name(), path)
		}
		if err != nil {
			os.Remove(f.Name())
			return fmt.Errorf("write the report file %s: %w", path, err)
		}
		return nil
	}, nil
}

// perCarrier folds lines into one per carrier, keeping the order.
func perCarrier(lines []store.Line) []store.Line { return report.PerCarrier(lines) }

// uah formats kopiyky as hryvnias with two decimals, exactly.
func uah(kop int64) string { return report.UAH(kop) }

// writeCompensation writes lines of a period as a table, CSV or JSON;
// byCategory shows the category and funding columns.
func writeCompensation(w io.Writer, format, period string, lines []store.Line, byCategory bool) error {
	c := report.Compensation{Period: period, Detail: report.Detail{Category: byCategory}, Lines: lines, Location: time.UTC}
	for _, l := range lines {
		c.Total.Add(l)
	}
	return report.WriteCompensation(w, format, c)
}
